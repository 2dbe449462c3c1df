// The crypto-pool micro-benchmark: its output check passes, it has a case per operation, batch
// size and worker count, its summary gives packets/s and the speed-up over 0 workers, and
// dispose() ends its workers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeAeadAvailable } from '../../src/tun/aead.js';
import { runSuite } from '../../bench/micro/harness.js';
import { cryptoPoolSuite, summarize } from '../../bench/micro/crypto-pool.bench.js';

const skip = nativeAeadAvailable() ? false : 'the native addon is not built';

test('crypto-pool suite: checked, 16 cases, a summary table', { skip }, () => {
  const lines: string[] = [];
  const results = runSuite(cryptoPoolSuite, 0.01, (l) => lines.push(l));
  assert.equal(results.length, 16);
  assert.ok(results.every((r) => r.opsPerSec > 0 && r.cpuCores > 0));
  const headers = lines.filter((l) => l.includes('packets/s  speed-up'));
  assert.equal(headers.length, 4);
  assert.match(
    lines.find((l) => l.startsWith('    0 workers'))!,
    /0 workers +[\d.]+M +1\.00x +[\d.]+ +[\d.]+M$/,
  );
});

test('summary: speed-up is ops/s over the 0-worker case', () => {
  const r = (name: string, opsPerSec: number, cpuCores: number) => ({
    suite: 'crypto-pool',
    name,
    opsPerSec,
    rmePercent: 1,
    samples: 5,
    mbPerSec: null,
    cpuCores,
  });
  const lines = summarize([
    r('seal 1420 B ×512, 0 workers', 1000, 1),
    r('seal 1420 B ×512, 1 worker', 1800, 2),
    r('seal 1420 B ×512, 2 workers', 2500, 3),
    r('seal 1420 B ×512, 3 workers', 500, 0.5),
  ]);
  assert.deepEqual(lines, [
    'seal 1420 B ×512    packets/s  speed-up  cores  per core-second',
    '  0 workers            0.51M     1.00x   1.00            0.51M',
    '  1 worker             0.92M     1.80x   2.00            0.46M',
    '  2 workers            1.28M     2.50x   3.00            0.43M',
    '  3 workers            0.26M     0.50x   0.50            0.51M',
  ]);
});
