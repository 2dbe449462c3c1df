/**
 * The shared-memory job descriptor of the crypto pool (crypto-pool.ts) and its workers
 * (crypto-worker.ts): a control block, the per-packet arrays of one round of a batch, then the
 * keys. Every thread builds the same views, and every thread takes chunks of the round through
 * the one claim word (claimChunk), so "who processes which packets" has exactly one owner.
 */

/** Packets per round: a larger batch runs as several rounds, one after the other. */
export const MAX_ITEMS = 4096;
export const MAX_KEYS = 64;
/** Packets per claim, at most: small enough to balance the tail, large enough to pay the claim. */
export const MAX_CHUNK = 32;
export const MIN_CHUNK = 8;

/** Control words (Int32). */
export const CTL = {
  seq: 0, // bumped by the pool to announce a round (workers sleep on it)
  claim: 1, // generation << CLAIM_SHIFT | next chunk index (see claimChunk)
  finished: 2, // packets processed (or failed) in the current round; the pool sleeps on it
  op: 3,
  count: 4,
  buffer: 5, // id of the shared slab
  base: 6, // byte offset of the slab view in its buffer
  keys: 7, // number of keys
  error: 8, // 1 when a chunk of the current round threw (its packets are left untouched)
  length: 9, // byte length of the slab view
  chunk: 10, // packets per big chunk in the current round
  head: 11, // where the round's small chunks start (see tailStart)
} as const;

export const OP_SEAL = 1;
export const OP_OPEN = 2;
export const OP_STOP = 3;

const CLAIM_SHIFT = 10; // MAX_ITEMS / MIN_CHUNK = 512 chunks per round fit below it
const CLAIM_CHUNKS = (1 << CLAIM_SHIFT) - 1;
/** Generations wrap at 2^21: only a worker 2 million rounds late could claim by mistake. */
const GEN_MASK = (1 << (31 - CLAIM_SHIFT)) - 1;

const CTL_BYTES = 64;
const OFFSETS = CTL_BYTES;
const LENGTHS = OFFSETS + 4 * MAX_ITEMS;
const KEY_IDX = LENGTHS + 4 * MAX_ITEMS;
const COUNTERS = KEY_IDX + 4 * MAX_ITEMS; // 8-aligned: 64 + 3 * 4 * MAX_ITEMS
const OK = COUNTERS + 8 * MAX_ITEMS;
const KEYS = OK + MAX_ITEMS;
export const CONTROL_BYTES = KEYS + 32 * MAX_KEYS;

export interface JobViews {
  readonly ctl: Int32Array;
  readonly offsets: Int32Array;
  readonly lengths: Int32Array;
  readonly keyIdx: Int32Array;
  readonly counters: Float64Array;
  readonly ok: Uint8Array;
  readonly keys: Uint8Array;
}

export function layout(sab: SharedArrayBuffer): JobViews {
  return {
    ctl: new Int32Array(sab, 0, CTL_BYTES / 4),
    offsets: new Int32Array(sab, OFFSETS, MAX_ITEMS),
    lengths: new Int32Array(sab, LENGTHS, MAX_ITEMS),
    keyIdx: new Int32Array(sab, KEY_IDX, MAX_ITEMS),
    counters: new Float64Array(sab, COUNTERS, MAX_ITEMS),
    ok: new Uint8Array(sab, OK, MAX_ITEMS),
    keys: new Uint8Array(sab, KEYS, 32 * MAX_KEYS),
  };
}

/** The generation a round's seq stands for in the claim word. */
export function generationOf(seq: number): number {
  return seq & GEN_MASK;
}

/** The claim word that opens a round: its generation, nothing claimed yet. */
export function openClaims(seq: number): number {
  return generationOf(seq) << CLAIM_SHIFT;
}

/**
 * How a round is cut: chunks of `big` packets up to `head`, then chunks of MIN_CHUNK for the
 * last ~`threads` big chunks' worth, so the threads run out of work at nearly the same time
 * and the join waits for at most one small chunk.
 */
export function tailStart(count: number, big: number, threads: number): number {
  return big * Math.max(0, Math.floor((count - threads * big) / big));
}

/** Chunks in a round cut as tailStart() says. */
export function chunkCount(count: number, big: number, head: number): number {
  return head / big + Math.ceil((count - head) / MIN_CHUNK);
}

/** First packet of chunk `k` (count for k past the last chunk). */
export function chunkStart(k: number, count: number, big: number, head: number): number {
  const at = k * big <= head ? k * big : head + (k - head / big) * MIN_CHUNK;
  return Math.min(at, count);
}

/**
 * Takes the next chunk of round `seq`: returns its index, or -1 when the round has no chunk left
 * or is no longer the current one. A worker that wakes late for an old round fails here and
 * touches nothing, because the generation is part of the word it must swap.
 */
export function claimChunk(ctl: Int32Array, seq: number, chunks: number): number {
  const gen = generationOf(seq);
  for (let w = Atomics.load(ctl, CTL.claim); ;) {
    const next = w & CLAIM_CHUNKS;
    if (w >>> CLAIM_SHIFT !== gen || next >= chunks) return -1;
    const seen = Atomics.compareExchange(ctl, CTL.claim, w, w + 1);
    if (seen === w) return next;
    w = seen;
  }
}
