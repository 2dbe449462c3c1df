// WG_TS_WORKERS: an explicit whole number wins; unset, the worker count follows the cores (none
// up to 2, where the pair bench lost throughput with workers; a quarter of the cores above, at
// most 2); anything else is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cryptoWorkers, defaultCryptoWorkers } from '../../src/daemon.js';

test('the default worker count by cores', () => {
  const table: [number, number][] = [
    [1, 0],
    [2, 0],
    [3, 1],
    [4, 1],
    [7, 1],
    [8, 2],
    [16, 2],
    [64, 2],
    [256, 2],
  ];
  for (const [cores, workers] of table) {
    assert.equal(defaultCryptoWorkers(cores), workers, `${cores} cores`);
  }
});

test('WG_TS_WORKERS: unset or empty takes the default; numbers 0..64 win', () => {
  assert.equal(cryptoWorkers(undefined, 2), 0);
  assert.equal(cryptoWorkers('', 16), 2);
  assert.equal(cryptoWorkers(undefined, 4), 1);
  assert.equal(cryptoWorkers('0', 64), 0);
  assert.equal(cryptoWorkers('3', 2), 3);
  assert.equal(cryptoWorkers('64', 2), 64);
  for (const bad of ['-1', '65', '1.5', 'two', ' 2x']) {
    assert.throws(() => cryptoWorkers(bad, 8), /WG_TS_WORKERS must be a whole number/, bad);
  }
});
