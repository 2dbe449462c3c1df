// The short native share of `npm run fuzz`: every libFuzzer harness (test/fuzz/native) built
// with ASan + UBSan and run for 10 s from the seed corpus, side by side. Skips, saying why,
// without clang and libFuzzer (scripts/setup.sh installs them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  HARNESSES,
  formatNativeReport,
  nativeFuzzUnavailable,
  runNativeFuzz,
} from '../fuzz/native.js';

const why = nativeFuzzUnavailable();

test(
  'native fuzz harnesses: 10 s each, no crash',
  { skip: why ?? false, timeout: 180_000 },
  async (t) => {
    const reports = await runNativeFuzz(10);
    assert.deepEqual(reports.map((r) => r.harness).sort(), Object.keys(HARNESSES).sort());
    for (const r of reports) {
      t.diagnostic(formatNativeReport(r));
      assert.equal(r.crashes, 0, `${r.harness}: ${r.failure ?? ''}`);
      assert.ok(r.executions > 0 && r.cov > 0, `${r.harness} ran`);
    }
  },
);
