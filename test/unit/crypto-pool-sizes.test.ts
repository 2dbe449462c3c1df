// The crypto pool touches every packet exactly once at every batch size: batches of 1 to 5,000
// packets (below, at and above one share and one round of the job descriptor, and the ~2,880
// datagrams one UDP receive call hands over) for 1, 2 and 3 workers, sealed and then opened by
// the pool, give byte for byte what the inline engine gives. A packet sealed twice or opened
// twice would differ from the inline ciphertext or fail its tag. Sizes are mixed (1 to 1420
// bytes, many at 1420) and the last packet ends on the last byte of its slab.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { nativeAead, nativeAeadAvailable } from '../../src/tun/aead.js';
import { createCryptoPool } from '../../src/tun/crypto-pool.js';

const skip = nativeAeadAvailable() ? false : 'the native addon is not built';
const SIZES = [1, 511, 512, 513, 1100, 3000, 5000];
const TAG = 16;

interface Batch {
  readonly offsets: Int32Array;
  readonly lengths: Int32Array;
  readonly sealedLengths: Int32Array;
  readonly counters: Float64Array;
  readonly keyIdx: Int32Array;
}

/** Packet lengths: every third one 1420 bytes, the rest spread over 1..1419. */
function lengthOf(i: number): number {
  return i % 3 === 0 ? 1420 : 1 + ((i * 97) % 1419);
}

/** Lays `n` packets out so that the last one's tag ends on the slab's last byte. */
function layoutBatch(n: number, keys: number): Batch & { bytes: number } {
  const offsets = new Int32Array(n);
  const lengths = new Int32Array(n);
  const counters = new Float64Array(n);
  const keyIdx = new Int32Array(n);
  let off = 0;
  for (let i = 0; i < n; i++) {
    off += 16; // room for the header the device keeps in front of each packet
    offsets[i] = off;
    lengths[i] = lengthOf(i);
    counters[i] = 2 ** 33 + i;
    keyIdx[i] = i % keys;
    off += lengths[i]! + TAG;
  }
  const sealedLengths = lengths.map((l) => l + TAG);
  return { offsets, lengths, sealedLengths, counters, keyIdx, bytes: off };
}

for (const workers of [1, 2, 3]) {
  test(`pool of ${workers}: every batch size seals and opens exactly once`, { skip }, async () => {
    const pool = createCryptoPool(workers);
    try {
      const keys = new Uint8Array(randomBytes(32 * 3));
      for (const n of SIZES) {
        const b = layoutBatch(n, 3);
        // The shared receive buffer's case: the slab is the whole shared buffer.
        const sab = new SharedArrayBuffer(b.bytes);
        pool.share(sab);
        const slab = new Uint8Array(sab);
        slab.set(randomBytes(b.bytes));
        const plain = Uint8Array.from(slab);
        const inline = Uint8Array.from(slab);
        nativeAead.sealBatch(keys, inline, b.offsets, b.lengths, b.counters, n, b.keyIdx);
        pool.sealBatch(keys, slab, b.offsets, b.lengths, b.counters, n, b.keyIdx);
        assert.ok(Buffer.from(slab).equals(inline), `${n} packets: sealed bytes differ`);
        const ok = new Uint8Array(n);
        const good = pool.openBatch(
          keys,
          slab,
          b.offsets,
          b.sealedLengths,
          b.counters,
          n,
          ok,
          b.keyIdx,
        );
        assert.equal(good, n, `${n} packets: opened`);
        assert.equal(
          ok.reduce((s, x) => s + x, 0),
          n,
          `${n} packets: ok[]`,
        );
        for (let i = 0; i < n; i++) {
          const a = b.offsets[i]!;
          const e = a + b.lengths[i]!;
          if (!Buffer.from(slab.subarray(a, e)).equals(plain.subarray(a, e))) {
            assert.fail(`${n} packets: packet ${i} did not open to its plaintext`);
          }
        }
      }
      // Send slabs from the pool's arena, with single-key batches as the send path makes them.
      const key = new Uint8Array(randomBytes(32));
      for (const n of [513, 2880]) {
        const b = layoutBatch(n, 1);
        const slab = pool.allocSlab(b.bytes);
        slab.set(randomBytes(b.bytes));
        const inline = Uint8Array.from(slab);
        nativeAead.sealBatch(key, inline, b.offsets, b.lengths, b.counters, n);
        pool.sealBatch(key, slab, b.offsets, b.lengths, b.counters, n);
        assert.ok(Buffer.from(slab).equals(inline), `arena, ${n} packets: sealed bytes differ`);
        const ok = new Uint8Array(n);
        assert.equal(pool.openBatch(key, slab, b.offsets, b.sealedLengths, b.counters, n, ok), n);
      }
      assert.ok(pool.parallelBatches > 0, 'some batches were split over the workers');
    } finally {
      await pool.close();
    }
  });
}
