/**
 * The ~20 s smoke share of `npm run soak` (bench/soak.ts): a wireguard-ts pair with a 3 s
 * REKEY_AFTER_TIME under back-to-back TCP transfers; data intact, rekeys happen, descriptors
 * stable. RSS is reported (a 20 s run is mostly warm-up; the 10-minute soak judges growth).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { implSkipReason, labSkipReason } from '../../src/lab/index.js';
import { runSoak } from '../../bench/soak.js';

const skip = labSkipReason(['ip', 'wg', 'ping', 'ncat', 'ss']) ?? implSkipReason('ts');

describe('hardening: soak smoke', { skip: skip ?? false }, () => {
  it('20 s of traffic with rekeys every 3 s', async (t) => {
    const r = await runSoak({
      minutes: 20 / 60,
      rekeyMs: 3000,
      sampleS: 2,
      chunkBytes: 4 << 20,
      outDir: null,
    });
    t.diagnostic(
      `${r.transfers} transfers, ${(r.bytes / 2 ** 20).toFixed(0)} MiB, ${r.handshakesSeen} handshakes, RSS ${r.samples[0]?.rssKiB.join('/')} -> ${r.samples.at(-1)?.rssKiB.join('/')} KiB, fds ${r.samples[0]?.fds.join('/')} -> ${r.samples.at(-1)?.fds.join('/')}`,
    );
    assert.ok(r.transfers >= 2, 'transfers completed');
    assert.equal(r.corrupted, 0, 'every transfer kept its sha256');
    assert.ok(r.handshakesSeen >= 3, `rekeys happened (${r.handshakesSeen} handshake times)`);
    assert.ok(
      r.fdGrowth.every((g) => g <= 2),
      `descriptors grew ${r.fdGrowth.join('/')}`,
    );
  });
});
