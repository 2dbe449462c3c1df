// The pooled CSPRNG (src/noise/random.ts): draws of every size, no repeats across refills, and
// byte values spread evenly (a stuck or zeroed pool would fail all three).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomPool } from '../../src/noise/random.js';

test('draws have the asked length, never repeat, and cross refills', () => {
  const draw = randomPool(256);
  const seen = new Set<string>();
  for (let i = 0; i < 5000; i++) {
    const n = 1 + (i % 40);
    const b = draw(n);
    assert.equal(b.length, n);
    if (n >= 16) {
      const k = Buffer.from(b).toString('hex');
      assert.equal(seen.has(k), false, `repeat at draw ${i}`);
      seen.add(k);
    }
  }
  assert.equal(draw(0).length, 0);
  assert.equal(draw(1000).length, 1000, 'larger than a quarter pool: drawn directly');
});

test('byte values are spread evenly', () => {
  const draw = randomPool();
  const counts = new Array<number>(256).fill(0);
  for (let i = 0; i < 4096; i++) for (const v of draw(24)) counts[v]!++;
  const mean = (4096 * 24) / 256; // 384
  // Chi-square with 255 degrees of freedom: the 99.99th percentile is about 360.
  const chi = counts.reduce((s, c) => s + (c - mean) ** 2 / mean, 0);
  assert.ok(chi < 360, `chi-square ${chi.toFixed(0)}`);
});
