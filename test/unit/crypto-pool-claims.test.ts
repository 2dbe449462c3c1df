// Who processes which packets: the claim word hands out each chunk of a round once, a claim for
// an old round (a worker waking late) gets nothing, and a batch that fails in one chunk leaves
// that chunk untouched and every other packet sealed once, never twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { nativeAead, nativeAeadAvailable } from '../../src/tun/aead.js';
import { chunkSize, createCryptoPool } from '../../src/tun/crypto-pool.js';
import {
  chunkCount,
  chunkStart,
  claimChunk,
  CONTROL_BYTES,
  CTL,
  layout,
  MAX_CHUNK,
  MAX_ITEMS,
  MIN_CHUNK,
  openClaims,
  tailStart,
} from '../../src/tun/crypto-pool-layout.js';

test('each chunk of a round is claimed once; an old round claims nothing', () => {
  const { ctl } = layout(new SharedArrayBuffer(CONTROL_BYTES));
  for (const [seq, chunks] of [
    [1, 1],
    [2, 13],
    [3, MAX_ITEMS / MIN_CHUNK],
    [(1 << 21) + 3, 40], // a generation that wrapped
  ] as const) {
    Atomics.store(ctl, CTL.claim, openClaims(seq));
    const claimed: number[] = [];
    for (let k = claimChunk(ctl, seq, chunks); k >= 0; k = claimChunk(ctl, seq, chunks)) {
      claimed.push(k);
    }
    assert.deepEqual(
      claimed,
      Array.from({ length: chunks }, (_, i) => i),
    );
    assert.equal(claimChunk(ctl, seq, chunks), -1, 'nothing left');
    Atomics.store(ctl, CTL.claim, openClaims(seq + 1));
    assert.equal(claimChunk(ctl, seq, chunks), -1, 'a late claim for the old round');
    assert.equal(claimChunk(ctl, seq + 1, chunks), 0, 'the new round starts at 0');
  }
});

test('the chunks of a round cover every packet once, small ones at the end', () => {
  for (const threads of [2, 3, 4]) {
    for (const count of [16, 17, 100, 511, 512, 513, 1100, 2880, MAX_ITEMS]) {
      const big = chunkSize(count, threads);
      const head = tailStart(count, big, threads);
      const chunks = chunkCount(count, big, head);
      assert.ok(chunks <= MAX_ITEMS / MIN_CHUNK, `${count}: ${chunks} chunks fit the claim word`);
      let next = 0;
      for (let k = 0; k < chunks; k++) {
        const at = chunkStart(k, count, big, head);
        const end = chunkStart(k + 1, count, big, head);
        assert.equal(at, next, `${count} over ${threads}: chunk ${k} starts where ${k - 1} ended`);
        assert.ok(end > at, `chunk ${k} is not empty`);
        assert.ok(end - at <= (at < head ? big : MIN_CHUNK));
        next = end;
      }
      assert.equal(next, count, `${count} over ${threads}: every packet`);
      // The tail leaves each thread about one big chunk's worth in small chunks.
      assert.ok(
        count - head >= Math.min(count, threads * big) && count - head < (threads + 1) * big,
      );
    }
  }
});

test('big chunks: about four per thread, between the minimum and the maximum', () => {
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
      const big = chunkSize(n, 3);
      const head = tailStart(n, big, 3);
      let k = 0;
      while (chunkStart(k + 1, n, big, head) <= bad) k++;
      const [first, last] = [chunkStart(k, n, big, head), chunkStart(k + 1, n, big, head)];
      lengths[bad] = size;
      const sealed = Uint8Array.from(plain);
      nativeAead.sealBatch(key, sealed, offsets, lengths, counters, n);
      for (let i = 0; i < n; i++) {
        const a = offsets[i]!;
        const want = i >= first && i < last ? plain : sealed;
        if (!Buffer.from(slab.subarray(a, a + stride)).equals(want.subarray(a, a + stride))) {
          assert.fail(`packet ${i}: ${want === plain ? 'touched' : 'not sealed exactly once'}`);
        }
      }
    } finally {
      await pool.close();
    }
  },
);
