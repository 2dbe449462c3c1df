/**
 * The crypto pool: batch ChaCha20-Poly1305 spread over worker_threads. It is itself a batch AEAD
 * backend, and its contract is that of the inline one: when sealBatch/openBatch returns, every
 * packet of the batch has been sealed or opened exactly once, in place. The device keeps every
 * decision: counters are assigned before the parallel seal, the replay window runs after the
 * parallel open, and packets leave and arrive in the order they were read.
 *
 * How a batch is split (fork-join, no postMessage and no allocation per packet):
 * - A batch runs as rounds of at most MAX_ITEMS packets, one after the other.
 * - A round's packet arrays are copied into one job descriptor in shared memory and announced;
 *   then the calling thread and the workers take chunks of it through one claim word
 *   (crypto-pool-chunks.ts). Whoever claims a chunk processes it; nobody else touches it. A
 *   worker that wakes late finds nothing left and does nothing, so a slow wake-up costs the
 *   round nothing but the worker's help.
 * - The calling thread returns when the round's finished count reaches its size.
 *
 * Workers can only touch memory they were given once: slabs must live in SharedArrayBuffers
 * announced with share(). allocSlab() hands out send slabs from a shared arena; the UDP bind's
 * receive slab is shared by the daemon. Batches in other memory, with more keys than the
 * descriptor holds, too small to be worth a wake-up, or sent after close() run inline.
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { Aead, BatchAead } from '../noise/aead.js';
import { nativeAead } from './aead.js';
import { workChunks } from './crypto-pool-chunks.js';
import {
  CONTROL_BYTES,
  CTL,
  layout,
  MAX_CHUNK,
  MAX_ITEMS,
  MAX_KEYS,
  MIN_CHUNK,
  OP_OPEN,
  OP_SEAL,
  OP_STOP,
  openClaims,
  tailStart,
  type JobViews,
} from './crypto-pool-layout.js';

/** Smaller batches (two minimal chunks) run inline: a wake-up costs more than it saves. */
export const MIN_PARALLEL = 2 * MIN_CHUNK;
const ARENA_BYTES = 32 * 1024 * 1024;
/** How long the caller polls for the workers' last chunks before it sleeps (a chunk is ~30 µs). */
const JOIN_SPIN_MS = 0.2;

export interface CryptoPool extends Aead, BatchAead {
  readonly workers: number;
  /** Batches that were split over the workers (the rest ran on the calling thread). */
  readonly parallelBatches: number;
  /** Packets the workers sealed or opened (the rest of the split batches: the calling thread). */
  readonly workerPackets: number;
  /** Memory for a send slab that the workers can reach (valid until ~32 MiB more is handed out). */
  allocSlab(size: number): Uint8Array;
  /** Announces a shared buffer (e.g. the UDP receive slab) so batches in it can be split. */
  share(buffer: SharedArrayBuffer): void;
  close(): Promise<void>;
}

/** One batch call as the device makes it; `ok` only for open. */
interface Batch {
  readonly op: number;
  readonly keys: Uint8Array;
  readonly slab: Uint8Array;
  readonly offsets: Int32Array;
  readonly lengths: Int32Array;
  readonly counters: Float64Array;
  readonly count: number;
  readonly ok: Uint8Array | null;
  readonly keyIdx: Int32Array | undefined;
}

export function createCryptoPool(workers: number): CryptoPool {
  return new Pool(workers);
}

/** Packets per big chunk for a round of `n` over `threads`: about four chunks per thread. */
export function chunkSize(n: number, threads: number): number {
  return Math.max(MIN_CHUNK, Math.min(MAX_CHUNK, Math.ceil(n / (4 * threads))));
}

class Pool implements CryptoPool {
  readonly name = 'native' as const;
  private splitBatches = 0;
  private packetsByWorkers = 0;
  private readonly job: JobViews;
  private readonly threads: { readonly worker: Worker; readonly port: MessagePort }[] = [];
  private readonly ids = new Map<ArrayBufferLike, number>();
  private readonly arena = new SharedArrayBuffer(ARENA_BYTES);
  private arenaPos = 0;
  private seq = 0;
  private closed = false;

  constructor(readonly workers: number) {
    const control = new SharedArrayBuffer(CONTROL_BYTES);
    this.job = layout(control);
    for (let i = 0; i < workers; i++) {
      const { port1, port2 } = new MessageChannel();
      const worker = new Worker(new URL('./crypto-worker.js', import.meta.url), {
        workerData: { control, port: port2 },
        transferList: [port2],
      });
      worker.unref();
      this.threads.push({ worker, port: port1 });
    }
    this.share(this.arena);
  }

  get parallelBatches(): number {
    return this.splitBatches;
  }

  get workerPackets(): number {
    return this.packetsByWorkers;
  }

  share(buffer: SharedArrayBuffer): void {
    if (this.ids.has(buffer)) return;
    const id = this.ids.size + 1;
    this.ids.set(buffer, id);
    for (const t of this.threads) t.port.postMessage({ id, buffer });
  }

  allocSlab(size: number): Uint8Array {
    if (size > ARENA_BYTES / 4) return new Uint8Array(size);
    if (this.arenaPos + size > ARENA_BYTES) this.arenaPos = 0;
    const slab = new Uint8Array(this.arena, this.arenaPos, size);
    this.arenaPos = (this.arenaPos + size + 7) & ~7;
    return slab;
  }

  readonly sealBatch: BatchAead['sealBatch'] = (
    keys,
    slab,
    offsets,
    lengths,
    counters,
    count,
    keyIdx,
  ) => {
    const b = { op: OP_SEAL, keys, slab, offsets, lengths, counters, count, ok: null, keyIdx };
    if (this.splittable(b)) this.runRounds(b);
    else nativeAead.sealBatch(keys, slab, offsets, lengths, counters, count, keyIdx);
  };

  readonly openBatch: BatchAead['openBatch'] = (
    keys,
    slab,
    offsets,
    lengths,
    counters,
    count,
    ok,
    keyIdx,
  ) => {
    const b = { op: OP_OPEN, keys, slab, offsets, lengths, counters, count, ok, keyIdx };
    if (this.splittable(b)) return this.runRounds(b);
    return nativeAead.openBatch(keys, slab, offsets, lengths, counters, count, ok, keyIdx);
  };

  /** Whether the workers can take part (else the batch runs inline, as one call). */
  private splittable(b: Batch): boolean {
    if (this.closed || this.workers === 0 || b.count < MIN_PARALLEL) return false;
    return b.keys.length / 32 <= MAX_KEYS && this.ids.has(b.slab.buffer);
  }

  /** Every packet of the batch, round after round; returns the packets verified (open). */
  private runRounds(b: Batch): number {
    this.splitBatches++;
    let verified = 0;
    for (let from = 0; from < b.count; from += MAX_ITEMS) {
      verified += this.runRound(b, from, Math.min(MAX_ITEMS, b.count - from));
    }
    return verified;
  }

  /** Packets from..from+n of the batch, shared with the workers; returns those verified. */
  private runRound(b: Batch, from: number, n: number): number {
    const seq = this.announce(b, from, n);
    const mine = workChunks(this.job, seq, b.slab);
    this.join(n);
    this.packetsByWorkers += n - mine;
    const { ctl, ok } = this.job;
    if (ctl[CTL.error]) {
      throw new Error('crypto pool: a chunk of the batch failed (left as it was)');
    }
    if (!b.ok) return 0;
    b.ok.set(ok.subarray(0, n), from);
    let verified = 0;
    for (let i = 0; i < n; i++) verified += ok[i]!;
    return verified;
  }

  /** Fills the job descriptor with packets from..from+n and wakes the workers. */
  private announce(b: Batch, from: number, n: number): number {
    const v = this.job;
    const end = from + n;
    v.offsets.set(b.offsets.subarray(from, end));
    v.lengths.set(b.lengths.subarray(from, end));
    v.counters.set(b.counters.subarray(from, end));
    if (b.keyIdx) v.keyIdx.set(b.keyIdx.subarray(from, end));
    else v.keyIdx.fill(0, 0, n);
    if (b.ok) v.ok.fill(0, 0, n);
    v.keys.set(b.keys);
    const { ctl } = v;
    ctl[CTL.op] = b.op;
    ctl[CTL.count] = n;
    const big = chunkSize(n, this.workers + 1);
    ctl[CTL.chunk] = big;
    ctl[CTL.head] = tailStart(n, big, this.workers + 1);
    ctl[CTL.buffer] = this.ids.get(b.slab.buffer)!;
    ctl[CTL.base] = b.slab.byteOffset;
    ctl[CTL.length] = b.slab.byteLength;
    ctl[CTL.keys] = b.keys.length / 32;
    ctl[CTL.error] = 0;
    ctl[CTL.finished] = 0;
    this.seq = (this.seq + 1) & 0x7fffffff;
    // The claim word opens before seq moves: a worker that sees the new seq finds chunks.
    Atomics.store(ctl, CTL.claim, openClaims(this.seq));
    Atomics.store(ctl, CTL.seq, this.seq);
    Atomics.notify(ctl, CTL.seq);
    return this.seq;
  }

  /** Waits until all n packets of the round are finished (the workers' last chunks). */
  private join(n: number): void {
    const { ctl } = this.job;
    let f = Atomics.load(ctl, CTL.finished);
    for (const until = performance.now() + JOIN_SPIN_MS; f !== n && performance.now() < until;) {
      f = Atomics.load(ctl, CTL.finished);
    }
    // Wait on the value just read, never on a fresh load: a chunk finishing between the two
    // would leave us asleep until the timeout (a one-second stall of the whole data plane).
    while (f !== n) {
      Atomics.wait(ctl, CTL.finished, f, 1000);
      f = Atomics.load(ctl, CTL.finished);
    }
  }

  // Single packets (handshake fields, cookie replies) never pay a hand-off.
  readonly seal = nativeAead.seal.bind(nativeAead);
  readonly open = nativeAead.open.bind(nativeAead);
  readonly sealWithNonce = nativeAead.sealWithNonce.bind(nativeAead);
  readonly openWithNonce = nativeAead.openWithNonce.bind(nativeAead);

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const { ctl } = this.job;
    ctl[CTL.op] = OP_STOP;
    this.seq = (this.seq + 1) & 0x7fffffff;
    Atomics.store(ctl, CTL.seq, this.seq);
    Atomics.notify(ctl, CTL.seq);
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
    for (const t of this.threads) t.port.close();
  }
}
