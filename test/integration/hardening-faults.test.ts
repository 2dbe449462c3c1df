/**
 * Faults on a live wireguard-ts pair (issue 6 §6): the peer daemon killed (SIGKILL) and started
 * again with the same configuration, the underlay link going down and up, the wg link going
 * down and up, and the underlay address of one end changing (roaming). Each time the tunnel
 * must carry traffic again without any manual step. (The clock stepped backwards and the queue
 * bounds are in-memory tests: test/fuzz/hardening-memory.test.ts.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  Lab,
  implSkipReason,
  keyFile,
  labSkipReason,
  makePair,
  ping,
  showEndpoint,
  startDaemon,
  waitFor,
  waitPing,
  wg,
  type Pair,
} from '../../src/lab/index.js';

const skip = labSkipReason(['ip', 'wg', 'ping']) ?? implSkipReason('ts');

describe('hardening: faults', { skip: skip ?? false }, () => {
  const lab = new Lab('wgth');
  let p: Pair;
  before(async () => {
    p = await makePair(lab, 'ts', 'ts');
    await waitPing(lab, p.a.ns, p.b.inner4, 10_000);
  });
  after(() => lab.dispose());

  it('peer daemon killed and restarted: traffic resumes within REKEY_TIMEOUT', async (t) => {
    await p.b.daemon.stop('SIGKILL');
    assert.equal(await ping(lab, p.a.ns, p.b.inner4, { count: 1 }), false, 'B is down');
    const d = await startDaemon(lab, p.b.ns, 'ts', p.b.ifname);
    const up = Date.now();
    // The restarted end is configured as before; a persistent keepalive (as deployments that
    // must come back on their own use) makes it handshake at once.
    await wg(lab, p.b.ns, [
      'set',
      p.b.ifname,
      'private-key',
      keyFile(lab, p.b.privateKey),
      'listen-port',
      `${p.b.port}`,
      'peer',
      p.a.publicKey,
      'allowed-ips',
      `${p.a.inner4}/32,${p.a.inner6}/128`,
      'endpoint',
      p.a.endpoint,
      'persistent-keepalive',
      '25',
    ]);
    await lab.addr(p.b.ns, p.b.ifname, `${p.b.inner4}/24`);
    await lab.exec(p.b.ns, 'ip', ['link', 'set', p.b.ifname, 'up']);
    await waitPing(lab, p.a.ns, p.b.inner4, 5000);
    t.diagnostic(
      `traffic A->B again ${((Date.now() - up) / 1000).toFixed(1)} s after the new daemon (pid ${d.pid}) was up`,
    );
  });

  it('underlay link down and up: the tunnel comes back', async () => {
    await lab.exec(p.a.ns, 'ip', ['link', 'set', p.a.veth, 'down']);
    assert.equal(await ping(lab, p.a.ns, p.b.inner4, { count: 1 }), false);
    await lab.exec(p.a.ns, 'ip', ['link', 'set', p.a.veth, 'up']);
    await waitPing(lab, p.a.ns, p.b.inner4, 10_000);
    assert.ok(p.a.daemon.alive());
  });

  it('wg link down and up: the daemon survives and traffic resumes', async () => {
    await lab.exec(p.a.ns, 'ip', ['link', 'set', p.a.ifname, 'down']);
    await lab.exec(p.a.ns, 'ip', ['link', 'set', p.a.ifname, 'up']);
    // Addresses on a link that went down keep; routes via it come back with it.
    await waitPing(lab, p.a.ns, p.b.inner4, 10_000);
    assert.ok(p.a.daemon.alive());
  });

  it('underlay address change of A: B follows A to its new address', async (t) => {
    await lab.exec(p.a.ns, 'ip', ['addr', 'del', `${p.a.under4}/24`, 'dev', p.a.veth]);
    await lab.addr(p.a.ns, p.a.veth, '192.168.241.50/24');
    const t0 = Date.now();
    await waitPing(lab, p.a.ns, p.b.inner4, 10_000);
    await waitFor(
      async () =>
        (await showEndpoint(lab, p.b, p.a.publicKey))?.startsWith('192.168.241.50:') ?? false,
      5000,
      'B to roam to the new address',
    );
    assert.ok(await ping(lab, p.b.ns, p.a.inner4, { count: 2 }), 'B reaches A at its new address');
    t.diagnostic(`roamed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });
});
