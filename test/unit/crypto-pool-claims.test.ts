// Who processes which packets: the claim word hands out each chunk of a round once, a claim for
// an old round (a worker waking late) gets nothing, and a batch that fails in one chunk leaves
// that chunk untouched and every other packet sealed once, never twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { nativeAead, nativeAeadAvailable } from '../../src/tun/aead.js';
import { chunkSize, createCryptoPool } from '../../src/tun/crypto-pool.js';
import {
  claimChunk,
  CONTROL_BYTES,
  CTL,
  layout,
  MAX_CHUNK,
  MAX_ITEMS,
  MIN_CHUNK,
  openClaims,
} from '../../src/tun/crypto-pool-layout.js';

test('each chunk of a round is claimed once; an old round claims nothing', () => {
  const { ctl } = layout(new SharedArrayBuffer(CONTROL_BYTES));
  for (const [seq, count, chunk] of [
    [1, 1, 8],
    [2, 100, 8],
    [3, MAX_ITEMS, MIN_CHUNK],
    [(1 << 21) + 3, 513, 32], // a generation that wrapped
  ] as const) {
    Atomics.store(ctl, CTL.claim, openClaims(seq));
    const starts: number[] = [];
    for (let at = claimChunk(ctl, seq, count, chunk); at >= 0;) {
      starts.push(at);
      at = claimChunk(ctl, seq, count, chunk);
    }
    assert.deepEqual(
      starts,
      Array.from({ length: Math.ceil(count / chunk) }, (_, i) => i * chunk),
    );
    assert.equal(claimChunk(ctl, seq, count, chunk), -1, 'nothing left');
    Atomics.store(ctl, CTL.claim, openClaims(seq + 1));
    assert.equal(claimChunk(ctl, seq, count, chunk), -1, 'a late claim for the old round');
    assert.equal(claimChunk(ctl, seq + 1, count, chunk), 0, 'the new round starts at 0');
  }
});

test('chunks: about four per thread, between the minimum and the maximum', () => {
  assert.equal(chunkSize(16, 2), MIN_CHUNK);
  assert.equal(chunkSize(512, 2), MAX_CHUNK);
  assert.equal(chunkSize(200, 2), 25);
  assert.equal(chunkSize(MAX_ITEMS, 4), MAX_CHUNK);
});

const skip = nativeAeadAvailable() ? false : 'the native addon is not built';

test(
  'a chunk that fails is left untouched, the rest sealed once; it throws',
  { skip },
  async () => {
    const pool = createCryptoPool(2);
    try {
      const n = 1000;
      const size = 1420;
      const stride = size + 16;
      const slab = pool.allocSlab(n * stride);
      slab.set(randomBytes(slab.length));
      const offsets = Int32Array.from({ length: n }, (_, i) => i * stride);
      const lengths = new Int32Array(n).fill(size);
      const counters = Float64Array.from({ length: n }, (_, i) => i);
      const bad = 700;
      lengths[bad] = slab.length; // runs past the slab: its chunk is refused
      const plain = Uint8Array.from(slab);
      const key = new Uint8Array(randomBytes(32));
      assert.throws(
        () => pool.sealBatch(key, slab, offsets, lengths, counters, n),
        /a chunk of the batch failed/,
      );
      const chunk = chunkSize(n, 3);
      const first = bad - (bad % chunk);
      lengths[bad] = size;
      const sealed = Uint8Array.from(plain);
      nativeAead.sealBatch(key, sealed, offsets, lengths, counters, n);
      for (let i = 0; i < n; i++) {
        const a = offsets[i]!;
        const want = i >= first && i < first + chunk ? plain : sealed;
        if (!Buffer.from(slab.subarray(a, a + stride)).equals(want.subarray(a, a + stride))) {
          assert.fail(`packet ${i}: ${want === plain ? 'touched' : 'not sealed exactly once'}`);
        }
      }
    } finally {
      await pool.close();
    }
  },
);
