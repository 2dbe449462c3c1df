// The smoke share of `npm run fuzz`: every target for a few thousand cases from a fixed seed
// plus a random one (printed), so CI catches regressions without the million-case run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TARGETS } from '../fuzz/targets.js';

const BUDGET = 20_000;
const randomSeed = (Date.now() % 2 ** 31) | 0;

for (const t of TARGETS) {
  test(`fuzz smoke: ${t.name}`, (ctx) => {
    const n = Math.max(200, Math.round(BUDGET / t.cost));
    for (const seed of [42, randomSeed]) {
      const r = t.run(n, seed);
      assert.equal(r.cases, n);
      ctx.diagnostic(`seed ${seed}: ${n} cases in ${r.ms} ms ${JSON.stringify(r.tally)}`);
    }
  });
}
