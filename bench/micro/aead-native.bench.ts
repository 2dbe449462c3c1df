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
import { batch, openCase, TAG } from './batch-cases.js';
import type { MicroCase, MicroSuite } from './harness.js';

const SIZES = [64, 1420, 65536] as const;
const BATCHES = [1, 32, 128] as const;
const key = new Uint8Array(randomBytes(32));

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
      openCase(nativeAead, key, size, 2)();
      openCase(nativeAead, key, size, 2)();
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
          fn: openCase(nativeAead, key, size, count),
        });
      }
    }
    return out;
  },
};
