/**
 * Persistent keepalive holding a NAT mapping open, for each selected implementation pair:
 * A — R — B, where R masquerades A behind its address on B's side and B has no route to A. B
 * only reaches A through R's conntrack mapping, whose UDP timeouts are cut to 2 s in R's
 * namespace. Without keepalive the mapping expires during a 3.5 s pause and B cannot reach A
 * (the control); with persistent-keepalive 1 on A it stays open and B can.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  Lab,
  genkey,
  keyFile,
  labSkipReason,
  pairSkipReason,
  ping,
  pubkey,
  selectedPairs,
  showEndpoint,
  sleep,
  startDaemon,
  waitFor,
  waitPing,
  wg,
  type Daemon,
  type Netns,
} from '../../src/lab/index.js';

const TOOLS = ['ip', 'wg', 'ping', 'nft', 'sysctl'];
const CT_TIMEOUT_S = 2;
const PAUSE_MS = CT_TIMEOUT_S * 1000 + 1500;

interface NatEnd {
  ns: Netns;
  daemon: Daemon;
  ifname: string;
  publicKey: string;
}

for (const impls of selectedPairs()) {
  const label = impls.join('-');
  const skip = labSkipReason(TOOLS) ?? pairSkipReason(impls);

  describe(`interop ${label}: NAT and persistent keepalive`, { skip: skip ?? false }, () => {
    const lab = new Lab('wgti');
    let a: NatEnd;
    let b: NatEnd;
    after(() => lab.dispose());

    before(async () => {
      const stem = lab.next('n');
      const nsA = await lab.netns(`${stem}a`);
      const nsR = await lab.netns(`${stem}r`);
      const nsB = await lab.netns(`${stem}b`);
      const ar = await lab.veth(nsA, nsR);
      const rb = await lab.veth(nsR, nsB);
      await lab.addr(nsA, ar.a, '192.168.1.2/24');
      await lab.addr(nsR, ar.b, '192.168.1.1/24');
      await lab.addr(nsR, rb.a, '192.168.2.1/24');
      await lab.addr(nsB, rb.b, '192.168.2.2/24');
      await lab.exec(nsA, 'ip', ['route', 'add', 'default', 'via', '192.168.1.1']);
      await lab.exec(nsR, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
      await lab.exec(nsR, 'nft', ['-f', '-'], {
        input: [
          'table ip nat {',
          '  chain post { type nat hook postrouting priority 100; policy accept;',
          `    oifname "${rb.a}" masquerade`,
          '  }',
          '}',
        ].join('\n'),
      });
      // Per-namespace conntrack timeouts; "stream" applies once both directions were seen.
      await lab.exec(nsR, 'sysctl', [
        '-qw',
        `net.netfilter.nf_conntrack_udp_timeout=${CT_TIMEOUT_S}`,
        `net.netfilter.nf_conntrack_udp_timeout_stream=${CT_TIMEOUT_S}`,
      ]);
      const ends: NatEnd[] = [];
      for (const [ns, impl, side] of [
        [nsA, impls[0], 'a'],
        [nsB, impls[1], 'b'],
      ] as const) {
        const daemon = await startDaemon(lab, ns, impl, lab.name(`${stem}w${side}`));
        const priv = await genkey(lab);
        ends.push({ ns, daemon, ifname: daemon.ifname, publicKey: await pubkey(lab, priv) });
        const port = side === 'a' ? '51820' : '51821';
        await wg(lab, ns, [
          'set',
          daemon.ifname,
          'private-key',
          keyFile(lab, priv),
          'listen-port',
          port,
        ]);
      }
      [a, b] = ends as [NatEnd, NatEnd];
      await wg(lab, a.ns, [
        ...['set', a.ifname, 'peer', b.publicKey, 'allowed-ips', '10.241.0.2/32'],
        ...['endpoint', '192.168.2.2:51821'],
      ]);
      await wg(lab, b.ns, ['set', b.ifname, 'peer', a.publicKey, 'allowed-ips', '10.241.0.1/32']);
      for (const [e, ip] of [
        [a, '10.241.0.1/24'],
        [b, '10.241.0.2/24'],
      ] as const) {
        await lab.addr(e.ns, e.ifname, ip);
        await lab.exec(e.ns, 'ip', ['link', 'set', e.ifname, 'up']);
      }
    });

    it('topology: B has no route to A except through R’s mapping', async () => {
      assert.equal(await ping(lab, b.ns, '192.168.1.2', { waitS: 1 }), false);
      assert.ok(await ping(lab, a.ns, '192.168.2.2'), 'A reaches B through R');
    });

    it('control: without keepalive the mapping expires and B cannot reach A', async () => {
      await waitPing(lab, a.ns, '10.241.0.2', 8000);
      // B saw A behind R's address (masquerade), not A's own.
      const ep = await showEndpoint(lab, b, a.publicKey);
      assert.match(ep ?? '', /^192\.168\.2\.1:\d+$/);
      assert.ok(await ping(lab, b.ns, '10.241.0.1'), 'B reaches A while the mapping lives');
      await sleep(PAUSE_MS);
      assert.equal(await ping(lab, b.ns, '10.241.0.1', { count: 2, waitS: 1 }), false);
    });

    it('persistent-keepalive 1 on A keeps the mapping open across the pause', async () => {
      await wg(lab, a.ns, ['set', a.ifname, 'peer', b.publicKey, 'persistent-keepalive', '1']);
      // 0 -> N sends a keepalive at once, which re-creates the mapping and moves B's endpoint.
      await waitFor(async () => ping(lab, b.ns, '10.241.0.1'), 5000, 'B to reach A again');
      await sleep(PAUSE_MS);
      assert.ok(
        await ping(lab, b.ns, '10.241.0.1', { count: 1, waitS: 2 }),
        'B reaches A after the pause',
      );
    });
  });
}
