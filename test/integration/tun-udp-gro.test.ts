/**
 * UDP receive coalescing on TUN writes (WG_TS_TUN_UDP_GRO, on by default where the kernel has
 * USO): bursts of one UDP flow through a wireguard-ts pair reach the receiving kernel as
 * GSO_UDP_L4 super-packets (the wg link's average received frame is larger than its MTU), and
 * every datagram the receiving socket gets is byte for byte what was sent, over IPv4 and IPv6,
 * also when forwarded to a pod behind the node. With WG_TS_TUN_UDP_GRO=0 every frame is at most
 * the MTU and the bytes are the same.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import {
  Lab,
  implSkipReason,
  labSkipReason,
  linkStats,
  makePair,
  waitFor,
  waitPing,
  wg,
  type Netns,
} from '../../src/lab/index.js';
import { native } from '../../src/tun/native.js';
import { TUN_F } from '../../src/tun/linux.js';

const UDP_PATTERN = fileURLToPath(new URL('../../src/lab/udp-pattern.js', import.meta.url));
const MTU = 1420;
const COUNT = 4000;
const BURST = 64;

/** USO on a TUN needs Linux >= 6.2: without it our daemon never coalesces UDP (by design). */
function usoSkipReason(): string | undefined {
  try {
    const addon = native();
    const t = addon.tunOpen('', false, true);
    addon.closeFd(t.fd);
    return (t.offload & TUN_F.USO4) !== 0 ? undefined : 'kernel without TUN USO (< 6.2)';
  } catch (err) {
    return `cannot open a TUN device: ${(err as Error).message}`;
  }
}

const skip =
  labSkipReason(['ip', 'wg', 'ping']) ??
  implSkipReason('ts') ??
  (process.getuid?.() === 0 ? usoSkipReason() : undefined);

interface Received {
  received: number;
  corrupt: number;
  duplicates: number;
  reordered: number;
}

async function blast(lab: Lab, from: Netns, to: Netns, addr: string, size: number) {
  const port = 7300 + Math.floor(Math.random() * 500);
  const bind = addr.includes(':') ? '::' : '0.0.0.0';
  const rx = lab.spawn(to, process.execPath, [
    UDP_PATTERN,
    'recv',
    bind,
    `${port}`,
    `${COUNT}`,
    `${size}`,
    '8000',
  ]);
  await waitFor(() => rx.output().includes('ready'), 5000, 'the UDP receiver', 20);
  await lab.exec(from, process.execPath, [
    UDP_PATTERN,
    'send',
    addr,
    `${port}`,
    `${COUNT}`,
    `${size}`,
    `${BURST}`,
  ]);
  await rx.exited;
  const lines = rx.output().trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as Received;
}

for (const gro of ['1', '0']) {
  describe(`TUN UDP write coalescing, WG_TS_TUN_UDP_GRO=${gro}`, { skip: skip ?? false }, () => {
    const lab = new Lab('wgtu');
    after(() => lab.dispose());

    it('UDP bursts arrive byte for byte; frames are super-packets only with coalescing', async (t) => {
      const p = await makePair(lab, 'ts', 'ts', { daemonEnv: { WG_TS_TUN_UDP_GRO: gro } });
      await waitPing(lab, p.a.ns, p.b.inner4, 8000);
      // Datagrams that fill the MTU exactly, and odd-sized ones (a short tail per run is legal).
      for (const [addr, size] of [
        [p.b.inner4, MTU - 28],
        [p.b.inner6, MTU - 48],
        [p.b.inner4, 333],
      ] as const) {
        const before = await linkStats(lab, p.b.ns, p.b.ifname);
        const r = await blast(lab, p.a.ns, p.b.ns, addr, size);
        const afterStats = await linkStats(lab, p.b.ns, p.b.ifname);
        const frames = afterStats.rxPackets - before.rxPackets;
        const avg = (afterStats.rxBytes - before.rxBytes) / frames;
        t.diagnostic(
          `${addr} ${size} B: ${JSON.stringify(r)}, ${frames} frames, ${avg.toFixed(0)} B on average`,
        );
        assert.equal(r.corrupt, 0, `${addr}: corrupt datagrams`);
        assert.equal(r.duplicates, 0, `${addr}: duplicates`);
        assert.equal(r.reordered, 0, `${addr}: reordered`);
        // UDP may lose datagrams (uncoalesced bursts overflow the kernel's backlog of 1,000
        // packets per CPU); enough must arrive for the byte checks to mean something.
        assert.ok(r.received >= COUNT / 10, `${addr}: only ${r.received} of ${COUNT} arrived`);
        const ipSize = size + (addr.includes(':') ? 48 : 28);
        if (gro === '1') assert.ok(avg > ipSize * 1.5, `average frame ${avg} B: few super-packets`);
        else assert.ok(avg <= ipSize, `average frame ${avg} B with coalescing off`);
      }

      // Forwarded, as to a pod behind a Kubernetes node: the super-packets leave B's kernel
      // through a veth into another namespace, and the pod's socket gets the same datagrams.
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
      const r = await blast(lab, p.a.ns, pod, '10.250.0.2', MTU - 28);
      t.diagnostic(`forwarded: ${JSON.stringify(r)}`);
      assert.equal(r.corrupt, 0, 'forwarded: corrupt datagrams');
      assert.equal(r.reordered, 0, 'forwarded: reordered');
      assert.ok(r.received >= COUNT / 10, `forwarded: only ${r.received} of ${COUNT} arrived`);
    });
  });
}
