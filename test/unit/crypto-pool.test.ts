// The crypto pool: batches split over worker threads give exactly the bytes of the inline
// backend (seal and open, several keys per batch, tampered packets), per-packet order is the
// caller's, memory the workers cannot reach falls back to inline, and close() stops the workers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { nativeAead, nativeAeadAvailable } from '../../src/tun/aead.js';
import { createCryptoPool } from '../../src/tun/crypto-pool.js';

const skip = nativeAeadAvailable() ? false : 'the native addon is not built';

function batch(slab: Uint8Array, n: number) {
  const offsets = new Int32Array(n);
  const lengths = new Int32Array(n);
  const counters = new Float64Array(n);
  const keyIdx = new Int32Array(n);
  let off = 0;
  for (let i = 0; i < n; i++) {
    const len = 1 + ((i * 97) % 1400);
    offsets[i] = off + 16;
    lengths[i] = len;
    counters[i] = 1000 + i;
    keyIdx[i] = i % 3;
    slab.set(randomBytes(len), off + 16);
    off += 16 + len + 16;
  }
  return { offsets, lengths, counters, keyIdx, size: off };
}

for (const workers of [1, 3]) {
  test(`pool of ${workers}: seal and open match the inline backend`, { skip }, (t) => {
    const pool = createCryptoPool(workers);
    t.after(() => pool.close());
    const keys = new Uint8Array(randomBytes(96));
    for (const n of [1, 7, 16, 64, 200]) {
      const slab = pool.allocSlab(n * 1500);
      const b = batch(slab, n);
      const plain = Uint8Array.from(slab.subarray(0, b.size));
      const inline = Uint8Array.from(plain);
      nativeAead.sealBatch(keys, inline, b.offsets, b.lengths, b.counters, n, b.keyIdx);
      pool.sealBatch(keys, slab, b.offsets, b.lengths, b.counters, n, b.keyIdx);
      assert.deepEqual(slab.subarray(0, b.size), inline, `sealed bytes, batch of ${n}`);
      // Open: lengths now include the tag; tamper with one packet.
      const sealedLengths = b.lengths.map((l) => l + 16);
      if (n > 5) slab[b.offsets[5]!] = slab[b.offsets[5]!]! ^ 1;
      const ok = new Uint8Array(n);
      const good = pool.openBatch(
        keys,
        slab,
        b.offsets,
        sealedLengths,
        b.counters,
        n,
        ok,
        b.keyIdx,
      );
      assert.equal(good, n > 5 ? n - 1 : n);
      for (let i = 0; i < n; i++) {
        assert.equal(ok[i], i === 5 && n > 5 ? 0 : 1, `ok[${i}]`);
        if (ok[i]) {
          const a = b.offsets[i]!;
          assert.deepEqual(
            slab.subarray(a, a + b.lengths[i]!),
            plain.subarray(a, a + b.lengths[i]!),
          );
        }
      }
    }
    // Batches of 16, 64 and 200 were split (seal and open); 1 and 7 were too small.
    assert.equal(pool.parallelBatches, 6);
  });
}

test('memory the workers cannot reach is sealed inline, with the same result', { skip }, (t) => {
  const pool = createCryptoPool(2);
  t.after(() => pool.close());
  const keys = new Uint8Array(randomBytes(32));
  const slab = new Uint8Array(64 * 1500);
  const b = batch(slab, 64);
  const inline = Uint8Array.from(slab);
  nativeAead.sealBatch(keys, inline, b.offsets, b.lengths, b.counters, 64);
  pool.sealBatch(keys, slab, b.offsets, b.lengths, b.counters, 64);
  assert.deepEqual(slab, inline);
  assert.equal(pool.parallelBatches, 0);
});

test('a shared receive buffer is split too; close() ends the workers', { skip }, async () => {
  const pool = createCryptoPool(2);
  const sab = new SharedArrayBuffer(64 * 1600);
  pool.share(sab);
  const slab = new Uint8Array(sab);
  const keys = new Uint8Array(randomBytes(32));
  const b = batch(slab, 48);
  const inline = Uint8Array.from(slab);
  nativeAead.sealBatch(keys, inline, b.offsets, b.lengths, b.counters, 48);
  pool.sealBatch(keys, slab, b.offsets, b.lengths, b.counters, 48);
  assert.deepEqual(slab, inline);
  assert.equal(pool.parallelBatches, 1);
  await pool.close();
  // After close every batch runs inline.
  pool.sealBatch(keys, slab, b.offsets, b.lengths, b.counters, 48);
  assert.equal(pool.parallelBatches, 1);
});
