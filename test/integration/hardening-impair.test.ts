/**
 * Impaired underlay (issue 6 §5) through our seeded relay (src/lab/relay.ts; the kernel here has
 * no netem): A's endpoint for B is a relay in A's namespace that forwards to B and back. A
 * handshake completes under 30% loss (each direction), and a TCP transfer through the tunnel
 * keeps its sha256 under 5% loss with 1% duplication and 1% reordering.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  Lab,
  implSkipReason,
  labSkipReason,
  latestHandshake,
  makePair,
  ping,
  startRelay,
  tcpTransfer,
  waitFor,
  wg,
  type Pair,
  type RelayOptions,
} from '../../src/lab/index.js';

const skip = labSkipReason(['ip', 'wg', 'ping', 'ncat', 'ss']) ?? implSkipReason('ts');

describe('hardening: impaired underlay', { skip: skip ?? false }, () => {
  const lab = new Lab('wgth');
  let p: Pair;
  const relayTo = async (port: number, imp: Partial<RelayOptions>) => {
    const r = await startRelay(lab, p.a.ns, {
      listen: `127.0.0.1:${port}`,
      target: `${p.b.under4}:${p.b.port}`,
      ...imp,
    });
    await wg(lab, p.a.ns, ['set', p.a.ifname, 'peer', p.b.publicKey, 'endpoint', r.listen]);
    return r;
  };
  before(async () => {
    p = await makePair(lab, 'ts', 'ts', { endpoints: 'a' });
  });
  after(() => lab.dispose());

  it('a handshake completes under 30% loss (a lost attempt is retried)', async (t) => {
    const relay = await relayTo(40000, { loss: 0.3, seed: 6 });
    const t0 = Date.now();
    void ping(lab, p.a.ns, p.b.inner4, { count: 1 });
    await waitFor(
      async () => (await latestHandshake(lab, p.a, p.b.publicKey)) > 0,
      30_000,
      'handshake under 30% loss',
      100,
    );
    const s = await relay.stop();
    t.diagnostic(
      `handshake after ${((Date.now() - t0) / 1000).toFixed(1)} s; relay ${JSON.stringify(s)}`,
    );
    // Seed 6 loses the first attempt's message; the retry (REKEY_TIMEOUT later) gets through.
    assert.ok(s.forward.dropped + s.reverse.dropped >= 1, 'the relay did drop handshake messages');
  });

  it('TCP keeps its sha256 under 5% loss, 1% duplication, 1% reordering', async (t) => {
    const relay = await relayTo(40001, {
      loss: 0.05,
      duplicate: 0.01,
      reorder: 0.01,
      reorderMs: 3,
      seed: 11,
    });
    await waitFor(() => ping(lab, p.a.ns, p.b.inner4, { count: 1 }), 10_000, 'tunnel via relay', 0);
    const r = await tcpTransfer(lab, p.a.ns, p.b.ns, p.b.inner4, {
      bytes: 2 << 20,
      timeoutMs: 60_000,
    });
    const s = await relay.stop();
    t.diagnostic(
      `${r.receivedBytes} B at ${r.mbitPerSec.toFixed(1)} Mbit/s; relay ${JSON.stringify(s)}`,
    );
    assert.equal(r.receivedBytes, r.bytes);
    assert.equal(r.receivedSha256, r.sentSha256);
    const all = s.forward.received + s.reverse.received;
    const dropped = s.forward.dropped + s.reverse.dropped;
    assert.ok(dropped > all * 0.03 && dropped < all * 0.07, `loss applied: ${dropped}/${all}`);
    assert.ok(s.forward.duplicated + s.reverse.duplicated > 0, 'duplicates applied');
    assert.ok(s.forward.reordered + s.reverse.reordered > 0, 'reordering applied');
  });
});
