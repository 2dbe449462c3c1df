/**
 * Sticky source addresses against real namespaces, for wireguard-ts (side A, the one with several
 * underlay addresses) and each peer implementation selected in WG_TS_IMPLS (side B):
 *
 * - reply-to-sender: A's veth has a second IPv4 and IPv6 address (`nodad`); B sets its endpoint
 *   to each of A's four addresses in turn and pings through the tunnel; `wg show B endpoints`
 *   must still show the address B chose (an answer from another address would make B roam);
 * - a TCP transfer over the tunnel while B reaches A at a secondary address: sha256 intact, and
 *   the endpoint still the one chosen;
 * - address changes under a session stuck to an address (IPv4 and IPv6): the address removed and
 *   another added; the primary removed and a secondary promoted; the link's only address
 *   replaced. Each time the first ping from A goes through without reconfiguration (the send
 *   falls over to the route's address at once, no retransmit needed), B then sees A at an address
 *   that exists, and A's `stats=1` counts the fall-overs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  Lab,
  labSkipReason,
  makePair,
  pairSkipReason,
  ping,
  selectedImpls,
  showEndpoint,
  socketPath,
  tcpTransfer,
  waitPing,
  wg,
  type Pair,
} from '../../src/lab/index.js';
import { uapiStats } from '../../src/control/uapi-client.js';

const TOOLS = ['ip', 'wg', 'ping', 'ncat', 'sysctl', 'ss'];

/** Peers B implementations to run against; A is always wireguard-ts. */
const peerImpls = selectedImpls();

for (const implB of peerImpls) {
  const skip = labSkipReason(TOOLS) ?? pairSkipReason(['ts', implB]);

  describe(
    `sticky sources: wireguard-ts with several addresses, ${implB} peer`,
    {
      skip: skip ?? false,
    },
    () => {
      const lab = new Lab('wgte');
      let p: Pair;
      after(() => lab.dispose());

      const addA = (addr: string) =>
        lab.exec(p.a.ns, 'ip', ['addr', 'add', addr, 'dev', p.a.veth, 'nodad']);
      const delA = (addr: string) => lab.exec(p.a.ns, 'ip', ['addr', 'del', addr, 'dev', p.a.veth]);
      const bSees = () => showEndpoint(lab, p.b, p.a.publicKey);
      const fallovers = async () =>
        (await uapiStats(socketPath(p.a.ifname))).get('source_fallovers');
      /** B's endpoint for A set to `ep`, then a ping from B through the tunnel. */
      const bPingsVia = async (ep: string) => {
        await wg(lab, p.b.ns, ['set', p.b.ifname, 'peer', p.a.publicKey, 'endpoint', ep]);
        await waitPing(lab, p.b.ns, p.a.inner4, 10_000);
        assert.equal(await bSees(), ep, `B keeps the endpoint it chose (${ep})`);
      };
      /** The first ping from A (one packet, 3 s) must get through. */
      const aPingsOnce = async (what: string) => {
        assert.ok(await ping(lab, p.a.ns, p.b.inner4, { waitS: 3 }), `first ping after ${what}`);
      };

      before(async () => {
        p = await makePair(lab, 'ts', implB, { stem: 's' });
        // Deleting a primary address keeps (promotes) its secondaries instead of deleting them.
        await lab.exec(p.a.ns, 'sysctl', [
          '-qw',
          `net.ipv4.conf.${p.a.veth}.promote_secondaries=1`,
        ]);
        await addA('192.168.241.11/24');
        await addA('fd00:241::11/64');
        await waitPing(lab, p.b.ns, p.a.inner4, 15_000);
      });

      it('answers from the address the peer chose, each of two per family', async () => {
        for (const ep of [
          `192.168.241.11:${p.a.port}`,
          `192.168.241.1:${p.a.port}`,
          `[fd00:241::11]:${p.a.port}`,
          `[fd00:241::1]:${p.a.port}`,
          `192.168.241.11:${p.a.port}`,
        ]) {
          await bPingsVia(ep);
        }
        assert.equal(await fallovers(), 0);
      });

      it('a TCP transfer to a secondary address arrives intact and keeps the endpoint', async () => {
        const ep = `[fd00:241::11]:${p.a.port}`;
        await bPingsVia(ep);
        const t = await tcpTransfer(lab, p.b.ns, p.a.ns, p.a.inner4, { bytes: 8 << 20 });
        assert.equal(t.receivedBytes, t.bytes);
        assert.equal(t.receivedSha256, t.sentSha256);
        assert.equal(await bSees(), ep);
      });

      it('IPv4: the stuck address removed, the primary removed, the only address replaced', async () => {
        await bPingsVia(`192.168.241.11:${p.a.port}`);
        const before = (await fallovers()) ?? 0;

        // The address A answers from is removed and another added.
        await delA('192.168.241.11/24');
        await addA('192.168.241.12/24');
        await aPingsOnce('removing the stuck address');
        assert.equal(await bSees(), `192.168.241.1:${p.a.port}`, "the route's address");
        assert.equal(await fallovers(), before + 1);

        // A is now stuck to .1 (B's answer arrived there); removing it promotes .12.
        await delA('192.168.241.1/24');
        await aPingsOnce('removing the primary address');
        assert.equal(await bSees(), `192.168.241.12:${p.a.port}`, 'the promoted address');
        assert.equal(await fallovers(), before + 2);

        // .12 is the link's only IPv4 address; it is replaced.
        await delA('192.168.241.12/24');
        await addA('192.168.241.13/24');
        await aPingsOnce('replacing the only address');
        assert.equal(await bSees(), `192.168.241.13:${p.a.port}`);
        assert.equal(await fallovers(), before + 3);
        await waitPing(lab, p.b.ns, p.a.inner4, 5000);
      });

      it('IPv6: the stuck address removed, then the only address replaced', async () => {
        await bPingsVia(`[fd00:241::11]:${p.a.port}`);
        const before = (await fallovers()) ?? 0;

        await delA('fd00:241::11/64');
        await addA('fd00:241::12/64');
        await aPingsOnce('removing the stuck IPv6 address');
        const seen = await bSees();
        assert.ok(
          seen === `[fd00:241::1]:${p.a.port}` || seen === `[fd00:241::12]:${p.a.port}`,
          `B sees A at an address A has: ${seen}`,
        );
        assert.equal(await fallovers(), before + 1);

        await delA('fd00:241::1/64');
        await delA('fd00:241::12/64');
        await addA('fd00:241::13/64');
        await aPingsOnce('replacing the only IPv6 address');
        assert.equal(await bSees(), `[fd00:241::13]:${p.a.port}`);
        assert.equal(await fallovers(), before + 2);
        await waitPing(lab, p.b.ns, p.a.inner6, 5000);
      });
    },
  );
}
