// The crypto-pool micro-benchmark: its output check passes, it has a case per operation, batch
// size and worker count, its summary gives packets/s and the speed-up over 0 workers, and
// dispose() ends its workers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeAeadAvailable } from '../../src/tun/aead.js';
import { runSuite } from '../../bench/micro/harness.js';
import { cryptoPoolSuite, summarize } from '../../bench/micro/crypto-pool.bench.js';

const skip = nativeAeadAvailable() ? false : 'the native addon is not built';

test('crypto-pool suite: checked, 16 cases, a speed-up summary', { skip }, () => {
  const lines: string[] = [];
  const results = runSuite(cryptoPoolSuite, 0.01, (l) => lines.push(l));
  assert.equal(results.length, 16);
  assert.ok(results.every((r) => r.opsPerSec > 0 && r.cpuCores > 0));
  const summary = lines.filter((l) => l.includes('packets/s by workers'));
  assert.equal(summary.length, 4);
  assert.match(summary[0]!, /seal ×512 .*0: [\d.]+M 1\.00x on [\d.]+ cores, 1: /);
});

test('summary: speed-up is ops/s over the 0-worker case', () => {
  const r = (name: string, opsPerSec: number) => ({
    suite: 'crypto-pool',
    name,
    opsPerSec,
    rmePercent: 1,
    samples: 5,
    mbPerSec: null,
    cpuCores: 1,
  });
  const lines = summarize([
    r('seal 1420 B ×512, 0 workers', 1000),
    r('seal 1420 B ×512, 1 worker', 1800),
    r('seal 1420 B ×512, 2 workers', 2500),
    r('seal 1420 B ×512, 3 workers', 500),
  ]);
  assert.deepEqual(lines, [
    'seal ×512 packets/s by workers — 0: 0.51M 1.00x on 1.00 cores, 1: 0.92M 1.80x on 1.00 cores, ' +
      '2: 1.28M 2.50x on 1.00 cores, 3: 0.26M 0.50x on 1.00 cores',
  ]);
});
