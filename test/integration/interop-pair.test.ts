/**
 * Interop scenarios between two daemons (wireguard-ts and/or wireguard-go, pairs chosen with
 * WG_TS_IMPLS, default ts-go,go-ts,ts-ts) in two namespaces joined by a veth. One topology per
 * pair carries the scenarios that can share it (handshake from A, inner v4/v6, TCP/UDP integrity
 * both ways, crypto-key source filter, roaming, switch to an IPv6 underlay, jumbo MTU); fresh
 * pairs cover the handshake from B over IPv6 with a PSK and the mismatched PSK.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  Lab,
  genkey,
  genpsk,
  labSkipReason,
  latestHandshake,
  linkStats,
  makePair,
  pairSkipReason,
  ping,
  pubkey,
  selectedPairs,
  showEndpoint,
  showPeers,
  tcpTransfer,
  udpTransfer,
  waitFor,
  waitPing,
  wg,
  type Pair,
} from '../../src/lab/index.js';

const TOOLS = ['ip', 'wg', 'ping', 'ncat', 'ss'];

for (const impls of selectedPairs()) {
  const label = impls.join('-');
  const skip = labSkipReason(TOOLS) ?? pairSkipReason(impls);

  describe(`interop ${label}: shared topology`, { skip: skip ?? false }, () => {
    const lab = new Lab('wgti');
    let p: Pair;
    before(async () => {
      p = await makePair(lab, impls[0], impls[1]);
    });
    after(() => lab.dispose());

    it('handshake initiated by A: ping over inner IPv4', async () => {
      assert.equal(
        await latestHandshake(lab, p.a, p.b.publicKey),
        0,
        'no handshake before traffic',
      );
      await waitPing(lab, p.a.ns, p.b.inner4, 8000);
      assert.ok((await latestHandshake(lab, p.a, p.b.publicKey)) > 0, 'A records the handshake');
      await waitFor(
        async () => (await latestHandshake(lab, p.b, p.a.publicKey)) > 0,
        3000,
        'B to record the handshake',
      );
    });

    it('ping over inner IPv6 both ways', async () => {
      assert.ok(await ping(lab, p.a.ns, p.b.inner6, { count: 2 }), 'A -> B fd99::2');
      assert.ok(await ping(lab, p.b.ns, p.a.inner6, { count: 2 }), 'B -> A fd99::1');
    });

    it('TCP transfer both ways, sha256 checked at the far end', async () => {
      const ab = await tcpTransfer(lab, p.a.ns, p.b.ns, p.b.inner4, { bytes: 3 << 20 });
      assert.equal(ab.receivedBytes, ab.bytes);
      assert.equal(ab.receivedSha256, ab.sentSha256);
      const ba = await tcpTransfer(lab, p.b.ns, p.a.ns, p.a.inner6, { bytes: 3 << 20 });
      assert.equal(ba.receivedBytes, ba.bytes);
      assert.equal(ba.receivedSha256, ba.sentSha256);
    });

    it('UDP transfer both ways, sha256 checked at the far end', async (t) => {
      const ab = await udpTransfer(lab, p.a.ns, p.b.ns, p.b.inner4, { bytes: 1 << 20 });
      assert.equal(ab.receivedSha256, ab.sentSha256);
      const ba = await udpTransfer(lab, p.b.ns, p.a.ns, p.a.inner6, { bytes: 1 << 20 });
      assert.equal(ba.receivedSha256, ba.sentSha256);
      t.diagnostic(`resent A->B ${ab.resent}/${ab.datagrams}, B->A ${ba.resent}/${ba.datagrams}`);
      // Some loss under CPU contention is normal UDP; losing most datagrams is a broken path.
      const sent = ab.datagrams + ba.datagrams;
      assert.ok(ab.resent + ba.resent < sent / 2, 'loss under 50%');
    });

    it('crypto-key routing: a more specific allowed IP of another peer blocks that source', async () => {
      const other = await pubkey(lab, await genkey(lab));
      await lab.addr(p.a.ns, p.a.ifname, '10.241.0.11/32');
      await wg(lab, p.b.ns, [
        'set',
        p.b.ifname,
        'peer',
        p.a.publicKey,
        'allowed-ips',
        '10.241.0.0/24,fd99::1/128',
      ]);
      await wg(lab, p.b.ns, ['set', p.b.ifname, 'peer', other, 'allowed-ips', '10.241.0.11/32']);
      try {
        const s0 = await linkStats(lab, p.b.ns, p.b.ifname);
        // Control: A's own address (inside A's /24 on B) gets through and reaches B's kernel.
        assert.ok(
          await ping(lab, p.a.ns, p.b.inner4, { count: 2, intervalS: 0.1 }),
          'from 10.241.0.1',
        );
        const s1 = await linkStats(lab, p.b.ns, p.b.ifname);
        assert.ok(s1.rxPackets >= s0.rxPackets + 2, 'control packets reach B’s link');
        const spoofed = await lab.tryExec(p.a.ns, 'ping', [
          ...['-n', '-c', '3', '-i', '0.1', '-W', '1', '-I', '10.241.0.11', p.b.inner4],
        ]);
        assert.notEqual(spoofed.code, 0, 'ping from 10.241.0.11 must fail');
        const s2 = await linkStats(lab, p.b.ns, p.b.ifname);
        assert.equal(s2.rxPackets, s1.rxPackets, 'no packet from 10.241.0.11 reaches B’s link');
      } finally {
        await wg(lab, p.b.ns, ['set', p.b.ifname, 'peer', other, 'remove']);
        await wg(lab, p.b.ns, [
          'set',
          p.b.ifname,
          'peer',
          p.a.publicKey,
          'allowed-ips',
          `${p.a.inner4}/32,${p.a.inner6}/128`,
        ]);
        await lab.exec(p.a.ns, 'ip', ['addr', 'del', '10.241.0.11/32', 'dev', p.a.ifname]);
      }
    });

    it('roaming: A changes its listen port, B follows to the new endpoint', async () => {
      assert.equal(await showEndpoint(lab, p.b, p.a.publicKey), `${p.a.under4}:${p.a.port}`);
      await wg(lab, p.a.ns, ['set', p.a.ifname, 'listen-port', '51900']);
      await waitPing(lab, p.a.ns, p.b.inner4, 5000);
      await waitFor(
        async () => (await showEndpoint(lab, p.b, p.a.publicKey)) === `${p.a.under4}:51900`,
        3000,
        'B to show A at port 51900',
      );
      assert.ok(await ping(lab, p.b.ns, p.a.inner4), 'B reaches A at its new port');
    });

    it('IPv6 underlay: both ends switch endpoints to fd00:241::/64', async () => {
      await wg(lab, p.a.ns, [
        'set',
        p.a.ifname,
        'peer',
        p.b.publicKey,
        'endpoint',
        `[${p.b.under6}]:${p.b.port}`,
      ]);
      await waitPing(lab, p.a.ns, p.b.inner4, 5000);
      await waitFor(
        async () => (await showEndpoint(lab, p.b, p.a.publicKey)) === `[${p.a.under6}]:51900`,
        3000,
        'B to learn A’s IPv6 endpoint',
      );
      const t = await tcpTransfer(lab, p.b.ns, p.a.ns, p.a.inner4, { bytes: 1 << 20 });
      assert.equal(t.receivedSha256, t.sentSha256);
    });

    it('jumbo MTU: veth 9000, wg 8920, ping -s 8000 -M do', async () => {
      for (const e of [p.a, p.b]) {
        await lab.exec(e.ns, 'ip', ['link', 'set', e.veth, 'mtu', '9000']);
        await lab.exec(e.ns, 'ip', ['link', 'set', e.ifname, 'mtu', '8920']);
      }
      // The daemons follow the link MTU asynchronously (netlink): poll briefly.
      await waitPing(lab, p.a.ns, p.b.inner4, 5000, { size: 8000, dontFragment: true });
      assert.ok(
        await ping(lab, p.b.ns, p.a.inner6, { size: 8000, dontFragment: true }),
        'B -> A 8000 B over v6',
      );
      const t = await tcpTransfer(lab, p.a.ns, p.b.ns, p.b.inner4, { bytes: 2 << 20 });
      assert.equal(t.receivedSha256, t.sentSha256);
    });
  });

  describe(`interop ${label}: fresh pairs`, { skip: skip ?? false }, () => {
    const lab = new Lab('wgti');
    after(() => lab.dispose());

    it('handshake initiated by B over an IPv6 underlay with a PSK; A learns B’s endpoint', async () => {
      const psk = await genpsk(lab);
      const p = await makePair(lab, impls[0], impls[1], { outer: 6, psk, endpoints: 'b' });
      assert.equal(await showEndpoint(lab, p.a, p.b.publicKey), '(none)');
      await waitPing(lab, p.b.ns, p.a.inner4, 8000);
      assert.ok((await latestHandshake(lab, p.b, p.a.publicKey)) > 0);
      assert.equal(await showEndpoint(lab, p.a, p.b.publicKey), `[${p.b.under6}]:${p.b.port}`);
      assert.ok(await ping(lab, p.a.ns, p.b.inner6), 'A answers over the learned endpoint');
      for (const [self, peer] of [
        [p.a, p.b],
        [p.b, p.a],
      ] as const) {
        const [entry] = (await showPeers(lab, self)).filter((x) => x.publicKey === peer.publicKey);
        assert.equal(entry?.presharedKey, psk, `${self.side} has the PSK`);
      }
    });

    it('mismatched PSKs never complete a handshake', async () => {
      const p = await makePair(lab, impls[0], impls[1], {
        psk: [await genpsk(lab), await genpsk(lab)],
      });
      assert.equal(
        await ping(lab, p.a.ns, p.b.inner4, { count: 3, intervalS: 0.3, waitS: 1 }),
        false,
      );
      assert.equal(await latestHandshake(lab, p.a, p.b.publicKey), 0, 'A: no handshake');
      assert.equal(await latestHandshake(lab, p.b, p.a.publicKey), 0, 'B: no handshake');
    });
  });
}
