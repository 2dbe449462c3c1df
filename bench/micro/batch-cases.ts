/**
 * Batch AEAD cases shared by the micro-benchmarks of the native batch calls and of the crypto
 * pool: a slab of equal packets, and a repeatable in-place open that verifies on every call.
 */
import { randomBytes } from 'node:crypto';
import type { BatchAead } from '../../src/noise/aead.js';

export const TAG = 16;

/** Where a case's slab lives (the pool can only split batches in memory it shares). */
export type SlabAlloc = (size: number) => Uint8Array;
const plainAlloc: SlabAlloc = (size) => new Uint8Array(size);

/** `count` packets of `size` bytes back to back, each with room for its tag. */
export function batch(size: number, count: number, alloc: SlabAlloc = plainAlloc) {
  const stride = size + TAG;
  const slab = alloc(stride * count);
  slab.set(randomBytes(slab.length));
  const offsets = Int32Array.from({ length: count }, (_, i) => i * stride);
  const plainLengths = new Int32Array(count).fill(size);
  const sealedLengths = new Int32Array(count).fill(stride);
  const counters = Float64Array.from({ length: count }, (_, i) => 2 ** 32 + i);
  return { slab, offsets, plainLengths, sealedLengths, counters, ok: new Uint8Array(count) };
}

/**
 * Opening in place turns ciphertext C into plaintext P = C ⊕ keystream; opening P in turn gives
 * C back. With the tags of both states at hand, each timed open verifies: only the 16-byte tags
 * are swapped between calls (four 32-bit stores per packet), not the packets re-sealed.
 */
export function openCase(
  engine: BatchAead,
  key: Uint8Array,
  size: number,
  count: number,
  alloc: SlabAlloc = plainAlloc,
): () => number {
  const b = batch(size, count, alloc);
  const stride = size + TAG;
  const cipher = new Uint8Array(b.slab);
  engine.sealBatch(key, cipher, b.offsets, b.plainLengths, b.counters, count);
  const plain = new Uint8Array(cipher);
  engine.sealBatch(key, plain, b.offsets, b.plainLengths, b.counters, count);
  // `plain` now holds C ⊕ keystream = the original bytes, with the tag that authenticates them
  // as ciphertext; `cipher` holds C and its tag. Every size here is a multiple of 4 and slabs
  // are 8-aligned, so the tags are 32-bit aligned.
  const tags = [new Uint32Array(4 * count), new Uint32Array(4 * count)] as const;
  const tagAt = (i: number) => (i * stride + size) / 4;
  const c32 = new Uint32Array(cipher.buffer);
  const p32 = new Uint32Array(plain.buffer);
  for (let i = 0; i < count; i++) {
    tags[0].set(c32.subarray(tagAt(i), tagAt(i) + 4), 4 * i);
    tags[1].set(p32.subarray(tagAt(i), tagAt(i) + 4), 4 * i);
  }
  b.slab.set(cipher);
  const slab32 = new Uint32Array(b.slab.buffer, b.slab.byteOffset, b.slab.length >> 2);
  let state = 0;
  return () => {
    const t = tags[state]!;
    for (let i = 0; i < count; i++) {
      const at = tagAt(i);
      slab32[at] = t[4 * i]!;
      slab32[at + 1] = t[4 * i + 1]!;
      slab32[at + 2] = t[4 * i + 2]!;
      slab32[at + 3] = t[4 * i + 3]!;
    }
    const n = engine.openBatch(key, b.slab, b.offsets, b.sealedLengths, b.counters, count, b.ok);
    if (n !== count) throw new Error(`open verified ${n} of ${count}`);
    state ^= 1;
    return n;
  };
}
