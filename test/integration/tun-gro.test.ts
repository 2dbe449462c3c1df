/**
 * Receive coalescing on TUN writes (WG_TS_TUN_GRO, on by default) in real daemons: a TCP stream
 * through a wireguard-ts pair reaches the receiving kernel as super-packets (the wg link's
 * average received frame is larger than its MTU), intact over IPv4 and IPv6; with
 * WG_TS_TUN_GRO=0 every frame is at most the MTU. The bytes are checked by sha256.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import {
  Lab,
  implSkipReason,
  labSkipReason,
  makePair,
  tcpTransfer,
  waitPing,
  wg,
  type Netns,
} from '../../src/lab/index.js';

const skip = labSkipReason(['ip', 'wg', 'ping', 'ncat']) ?? implSkipReason('ts');
const MTU = 1420;

async function rxStats(
  lab: Lab,
  ns: Netns,
  ifname: string,
): Promise<{ bytes: number; packets: number }> {
  const out = (await lab.exec(ns, 'ip', ['-s', '-j', 'link', 'show', ifname])).stdout;
  const rx = (JSON.parse(out) as { stats64: { rx: { bytes: number; packets: number } } }[])[0]!
    .stats64.rx;
  return { bytes: rx.bytes, packets: rx.packets };
}

for (const gro of ['1', '0']) {
  describe(`TUN write coalescing, WG_TS_TUN_GRO=${gro}`, { skip: skip ?? false }, () => {
    const lab = new Lab('wgtr');
    after(() => lab.dispose());

    it('a TCP stream arrives intact; frames are super-packets only with coalescing', async (t) => {
      const p = await makePair(lab, 'ts', 'ts', { daemonEnv: { WG_TS_TUN_GRO: gro } });
      await waitPing(lab, p.a.ns, p.b.inner4, 8000);
      for (const addr of [p.b.inner4, p.b.inner6]) {
        const before = await rxStats(lab, p.b.ns, p.b.ifname);
        const r = await tcpTransfer(lab, p.a.ns, p.b.ns, addr, { bytes: 16 * 1024 * 1024 });
        assert.equal(r.receivedBytes, r.bytes, addr);
        assert.equal(r.receivedSha256, r.sentSha256, addr);
        const after = await rxStats(lab, p.b.ns, p.b.ifname);
        const avg = (after.bytes - before.bytes) / (after.packets - before.packets);
        t.diagnostic(
          `${addr}: ${after.packets - before.packets} frames, ${avg.toFixed(0)} B on average`,
        );
        if (gro === '1') assert.ok(avg > MTU, `average frame ${avg} B: no super-packets`);
        else assert.ok(avg <= MTU, `average frame ${avg} B with coalescing off`);
      }

      // Forwarded, as to a pod behind a Kubernetes node: the super-packets leave B's kernel
      // through a veth into another namespace, and still arrive intact.
      const pod = await lab.netns('pod');
      const v = await lab.veth(p.b.ns, pod, { names: [lab.name('pv'), lab.name('pp')] });
      await lab.addr(p.b.ns, v.a, '10.250.0.1/24');
      await lab.addr(pod, v.b, '10.250.0.2/24');
      await lab.exec(pod, 'ip', ['route', 'add', 'default', 'via', '10.250.0.1']);
      await lab.exec(p.b.ns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
      await lab.exec(p.a.ns, 'ip', ['route', 'add', '10.250.0.0/24', 'dev', p.a.ifname]);
      await wg(lab, p.a.ns, [
        'set',
        p.a.ifname,
        'peer',
        p.b.publicKey,
        'allowed-ips',
        `${p.b.inner4}/32,${p.b.inner6}/128,10.250.0.0/24`,
      ]);
      const r = await tcpTransfer(lab, p.a.ns, pod, '10.250.0.2', { bytes: 16 * 1024 * 1024 });
      assert.equal(r.receivedBytes, r.bytes, 'forwarded to the pod');
      assert.equal(r.receivedSha256, r.sentSha256, 'forwarded to the pod');
    });
  });
}
