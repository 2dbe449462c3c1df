/**
 * The crypto pool: batch ChaCha20-Poly1305 spread over worker_threads. It is itself a batch AEAD
 * backend: each sealBatch/openBatch call is split into shares, the workers take theirs through
 * a descriptor in shared memory (no postMessage per batch, no allocation per packet), the
 * calling thread does its own share, then waits for the others (fork-join). So the device keeps
 * every decision: counters are assigned before the parallel seal, the replay window runs after
 * the parallel open, and packets leave and arrive in the order they were read.
 *
 * Workers can only touch memory they were given once: slabs must live in SharedArrayBuffers
 * announced with share(). allocSlab() hands out send slabs from a shared arena; the UDP bind's
 * receive slab is shared by the daemon. Batches in other memory, or too small to be worth a
 * wake-up, run on the calling thread.
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { Aead, BatchAead } from '../noise/aead.js';
import { nativeAead } from './aead.js';
import {
  CONTROL_BYTES,
  CTL,
  layout,
  MAX_ITEMS,
  MAX_KEYS,
  OP_OPEN,
  OP_SEAL,
  OP_STOP,
  type ControlViews,
} from './crypto-pool-layout.js';

/** Below this many packets per share a worker's wake-up costs more than it saves. */
export const MIN_SHARE = 8;
const ARENA_BYTES = 32 * 1024 * 1024;

interface PoolWorker {
  readonly worker: Worker;
  readonly port: MessagePort;
  readonly v: ControlViews;
  seq: number;
}

export interface CryptoPool extends Aead, BatchAead {
  readonly workers: number;
  /** Batches that were split over the workers (the rest ran on the calling thread). */
  readonly parallelBatches: number;
  /** Memory for a send slab that the workers can reach (valid until ~32 MiB more is handed out). */
  allocSlab(size: number): Uint8Array;
  /** Announces a shared buffer (e.g. the UDP receive slab) so batches in it can be split. */
  share(buffer: SharedArrayBuffer): void;
  close(): Promise<void>;
}

export function createCryptoPool(workers: number): CryptoPool {
  const pool: PoolWorker[] = [];
  const ids = new Map<ArrayBufferLike, number>();
  const arena = new SharedArrayBuffer(ARENA_BYTES);
  let arenaPos = 0;
  let closed = false;
  let parallelBatches = 0;
  for (let i = 0; i < workers; i++) {
    const control = new SharedArrayBuffer(CONTROL_BYTES);
    const { port1, port2 } = new MessageChannel();
    const worker = new Worker(new URL('./crypto-worker.js', import.meta.url), {
      workerData: { control, port: port2 },
      transferList: [port2],
    });
    worker.unref();
    pool.push({ worker, port: port1, v: layout(control), seq: 0 });
  }

  function share(buffer: SharedArrayBuffer): void {
    if (ids.has(buffer)) return;
    const id = ids.size + 1;
    ids.set(buffer, id);
    for (const w of pool) w.port.postMessage({ id, buffer });
  }
  share(arena);

  /** Splits a batch; returns false when it must run on the calling thread alone. */
  function run(
    op: number,
    keys: Uint8Array,
    slab: Uint8Array,
    offsets: Int32Array,
    lengths: Int32Array,
    counters: Float64Array,
    count: number,
    ok: Uint8Array | null,
    keyIdx: Int32Array | undefined,
  ): boolean {
    const id = ids.get(slab.buffer);
    const nKeys = keys.length / 32;
    const shares = Math.min(pool.length + 1, Math.floor(count / MIN_SHARE));
    if (closed || id === undefined || shares < 2 || nKeys > MAX_KEYS) return false;
    const per = Math.min(MAX_ITEMS, Math.ceil(count / shares));
    const started: PoolWorker[] = [];
    // Shares 1.. go to workers; share 0 stays here.
    let start = per;
    for (let w = 0; w < pool.length && start < count; w++, start += per) {
      const p = pool[w]!;
      const n = Math.min(per, count - start);
      p.v.offsets.set(offsets.subarray(start, start + n));
      p.v.lengths.set(lengths.subarray(start, start + n));
      p.v.counters.set(counters.subarray(start, start + n));
      if (keyIdx) p.v.keyIdx.set(keyIdx.subarray(start, start + n));
      else p.v.keyIdx.fill(0, 0, n);
      p.v.keys.set(keys);
      p.v.ctl[CTL.op] = op;
      p.v.ctl[CTL.count] = n;
      p.v.ctl[CTL.buffer] = id;
      p.v.ctl[CTL.base] = slab.byteOffset;
      p.v.ctl[CTL.keys] = nKeys;
      p.seq++;
      Atomics.store(p.v.ctl, CTL.seq, p.seq);
      Atomics.notify(p.v.ctl, CTL.seq);
      started.push(p);
    }
    if (start < count) {
      // More than the workers can take in one round (huge batch): the rest stays here too.
      for (const p of started) waitFor(p);
      return false;
    }
    const mine = Math.min(per, count);
    const k = keyIdx?.subarray(0, mine);
    if (op === OP_SEAL) nativeAead.sealBatch(keys, slab, offsets, lengths, counters, mine, k);
    else nativeAead.openBatch(keys, slab, offsets, lengths, counters, mine, ok!, k);
    let failed = false;
    start = per;
    for (const p of started) {
      waitFor(p);
      if (p.v.ctl[CTL.error]) failed = true;
      const n = p.v.ctl[CTL.count]!;
      if (ok) ok.set(p.v.ok.subarray(0, n), start);
      start += n;
    }
    if (failed) throw new Error('crypto pool: a worker failed its share');
    parallelBatches++;
    return true;
  }

  function waitFor(p: PoolWorker): void {
    // Wait on the value just checked, never on a fresh load: a worker finishing between the
    // check and a second load would leave us asleep on the new value until the timeout (a
    // one-second stall of the whole data plane, seen as TUN queue drops).
    for (let done = Atomics.load(p.v.ctl, CTL.done); done !== p.seq;) {
      Atomics.wait(p.v.ctl, CTL.done, done, 1000);
      done = Atomics.load(p.v.ctl, CTL.done);
    }
  }

  return {
    name: 'native',
    workers,
    get parallelBatches() {
      return parallelBatches;
    },
    seal: (key, counter, plaintext, ad, dst, off) =>
      nativeAead.seal(key, counter, plaintext, ad, dst, off),
    open: (key, counter, sealed, ad, dst, off) =>
      nativeAead.open(key, counter, sealed, ad, dst, off),
    sealWithNonce: (key, nonce, plaintext, ad, dst, off) =>
      nativeAead.sealWithNonce(key, nonce, plaintext, ad, dst, off),
    openWithNonce: (key, nonce, sealed, ad, dst, off) =>
      nativeAead.openWithNonce(key, nonce, sealed, ad, dst, off),
    sealBatch(keys, slab, offsets, lengths, counters, count, keyIdx) {
      if (!run(OP_SEAL, keys, slab, offsets, lengths, counters, count, null, keyIdx)) {
        nativeAead.sealBatch(keys, slab, offsets, lengths, counters, count, keyIdx);
      }
    },
    openBatch(keys, slab, offsets, lengths, counters, count, ok, keyIdx) {
      if (!run(OP_OPEN, keys, slab, offsets, lengths, counters, count, ok, keyIdx)) {
        return nativeAead.openBatch(keys, slab, offsets, lengths, counters, count, ok, keyIdx);
      }
      let n = 0;
      for (let i = 0; i < count; i++) n += ok[i]!;
      return n;
    },
    allocSlab(size) {
      if (size > ARENA_BYTES / 4) return new Uint8Array(size);
      if (arenaPos + size > ARENA_BYTES) arenaPos = 0;
      const slab = new Uint8Array(arena, arenaPos, size);
      arenaPos = (arenaPos + size + 7) & ~7;
      return slab;
    },
    share,
    async close() {
      if (closed) return;
      closed = true;
      for (const p of pool) {
        p.v.ctl[CTL.op] = OP_STOP;
        p.seq++;
        Atomics.store(p.v.ctl, CTL.seq, p.seq);
        Atomics.notify(p.v.ctl, CTL.seq);
      }
      await Promise.all(pool.map((p) => p.worker.terminate()));
      for (const p of pool) p.port.close();
    },
  };
}
