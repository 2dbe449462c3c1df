/**
 * The work loop of one round that the pool's calling thread and every worker run alike: claim a
 * chunk, seal or open it in place with the native batch AEAD, count it as finished, repeat until
 * the round has no chunk left. Whoever claims a chunk is the only one to touch its packets, so a
 * batch is processed exactly once however many threads join (or none but the caller).
 */
import { nativeAead } from './aead.js';
import {
  chunkCount,
  chunkStart,
  claimChunk,
  CTL,
  OP_SEAL,
  type JobViews,
} from './crypto-pool-layout.js';

/** Runs chunks of round `seq` over `slab` until none is left; returns the packets it did. */
export function workChunks(v: JobViews, seq: number, slab: Uint8Array): number {
  const { ctl } = v;
  const op = ctl[CTL.op]!;
  const count = ctl[CTL.count]!;
  const big = ctl[CTL.chunk]!;
  const head = ctl[CTL.head]!;
  const chunks = chunkCount(count, big, head);
  const keys = v.keys.subarray(0, 32 * ctl[CTL.keys]!);
  let done = 0;
  for (let k = claimChunk(ctl, seq, chunks); k >= 0; k = claimChunk(ctl, seq, chunks)) {
    const at = chunkStart(k, count, big, head);
    const n = chunkStart(k + 1, count, big, head) - at;
    try {
      processChunk(v, op, keys, slab, at, n);
    } catch {
      // The native batch checks every packet before touching one: a chunk that throws is left
      // as it was, and the pool reports the round as failed.
      Atomics.store(ctl, CTL.error, 1);
    }
    done += n;
    if (Atomics.add(ctl, CTL.finished, n) + n === count) Atomics.notify(ctl, CTL.finished);
  }
  return done;
}

function processChunk(
  v: JobViews,
  op: number,
  keys: Uint8Array,
  slab: Uint8Array,
  at: number,
  n: number,
): void {
  const end = at + n;
  const offsets = v.offsets.subarray(at, end);
  const lengths = v.lengths.subarray(at, end);
  const counters = v.counters.subarray(at, end);
  const keyIdx = v.keyIdx.subarray(at, end);
  if (op === OP_SEAL) nativeAead.sealBatch(keys, slab, offsets, lengths, counters, n, keyIdx);
  else
    nativeAead.openBatch(keys, slab, offsets, lengths, counters, n, v.ok.subarray(at, end), keyIdx);
}
