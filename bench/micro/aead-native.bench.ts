/**
 * The native ChaCha20-Poly1305 backend (src/tun/aead.ts) in batches, as the hot path calls it:
 * sealBatch/openBatch in place over one slab with 1, 32 and 128 packets per call at 64, 1420 and
 * 65536 bytes, against node:crypto per packet. One operation is one call, so packets/s is ops/s
 * times the batch size; MB/s counts plaintext bytes.
 */
import { randomBytes } from 'node:crypto';
import { nodeAead } from '../../src/noise/aead.js';
import {
  nativeAead,
  nativeAeadAvailable,
  nativeAeadUnavailableReason,
} from '../../src/tun/aead.js';
import type { MicroCase, MicroSuite } from './harness.js';

const SIZES = [64, 1420, 65536] as const;
const BATCHES = [1, 32, 128] as const;
const TAG = 16;
const key = new Uint8Array(randomBytes(32));

/** `count` packets of `size` bytes back to back, each with room for its tag. */
function batch(size: number, count: number) {
  const stride = size + TAG;
  const slab = new Uint8Array(stride * count);
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
function openCase(size: number, count: number): () => number {
  const b = batch(size, count);
  const stride = size + TAG;
  const cipher = new Uint8Array(b.slab);
  nativeAead.sealBatch(key, cipher, b.offsets, b.plainLengths, b.counters, count);
  const plain = new Uint8Array(cipher);
  nativeAead.sealBatch(key, plain, b.offsets, b.plainLengths, b.counters, count);
  // `plain` now holds C ⊕ keystream = the original bytes, with the tag that authenticates them
  // as ciphertext; `cipher` holds C and its tag. Every size here is a multiple of 4, so the tags
  // are 32-bit aligned.
  const tags = [new Uint32Array(4 * count), new Uint32Array(4 * count)] as const;
  const tagAt = (i: number) => (i * stride + size) / 4;
  const c32 = new Uint32Array(cipher.buffer);
  const p32 = new Uint32Array(plain.buffer);
  for (let i = 0; i < count; i++) {
    tags[0].set(c32.subarray(tagAt(i), tagAt(i) + 4), 4 * i);
    tags[1].set(p32.subarray(tagAt(i), tagAt(i) + 4), 4 * i);
  }
  b.slab.set(cipher);
  const slab32 = new Uint32Array(b.slab.buffer);
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
    const n = nativeAead.openBatch(
      key,
      b.slab,
      b.offsets,
      b.sealedLengths,
      b.counters,
      count,
      b.ok,
    );
    if (n !== count) throw new Error(`aead-native: open verified ${n} of ${count}`);
    state ^= 1;
    return n;
  };
}

export const aeadNativeSuite: MicroSuite = {
  name: 'aead-native',
  check() {
    if (!nativeAeadAvailable()) {
      throw new Error(`aead-native: ${nativeAeadUnavailableReason()} (skip with --only)`);
    }
    for (const size of SIZES) {
      const b = batch(size, 4);
      const plain = new Uint8Array(b.slab);
      nativeAead.sealBatch(key, b.slab, b.offsets, b.plainLengths, b.counters, 4);
      const want = new Uint8Array(size + TAG);
      for (let i = 0; i < 4; i++) {
        const at = b.offsets[i]!;
        nodeAead.seal(key, b.counters[i]!, plain.subarray(at, at + size), null, want, 0);
        if (Buffer.compare(want, b.slab.subarray(at, at + size + TAG)) !== 0) {
          throw new Error(`aead-native: sealBatch disagrees with node at ${size} bytes`);
        }
      }
      if (
        nativeAead.openBatch(key, b.slab, b.offsets, b.sealedLengths, b.counters, 4, b.ok) !== 4
      ) {
        throw new Error(`aead-native: openBatch rejects its own packets at ${size} bytes`);
      }
      openCase(size, 2)();
      openCase(size, 2)();
    }
  },
  cases() {
    const out: MicroCase[] = [];
    for (const size of SIZES) {
      const plain = new Uint8Array(randomBytes(size));
      const sealed = new Uint8Array(size + TAG);
      const opened = new Uint8Array(size);
      let counter = 0;
      out.push({
        name: `node seal ${size} B ×1`,
        bytes: size,
        fn: () => nodeAead.seal(key, counter++, plain, null, sealed, 0),
      });
      const fixed = new Uint8Array(size + TAG);
      nodeAead.seal(key, 1, plain, null, fixed, 0);
      out.push({
        name: `node open ${size} B ×1`,
        bytes: size,
        fn: () => nodeAead.open(key, 1, fixed, null, opened, 0),
      });
      out.push({
        name: `native seal ${size} B ×1 (Aead)`,
        bytes: size,
        fn: () => nativeAead.seal(key, counter++, plain, null, sealed, 0),
      });
      for (const count of BATCHES) {
        const b = batch(size, count);
        out.push({
          name: `native sealBatch ${size} B ×${count}`,
          bytes: size * count,
          // Sealing in place again and again just re-encrypts; the cost is the same.
          fn: () => nativeAead.sealBatch(key, b.slab, b.offsets, b.plainLengths, b.counters, count),
        });
        out.push({
          name: `native openBatch ${size} B ×${count}`,
          bytes: size * count,
          fn: openCase(size, count),
        });
      }
    }
    return out;
  },
};
