/**
 * Padding stops at the route's MTU, not only the link's (the kernel selftest netns.sh, "route
 * MTUs work with the padding"): both wg links at MTU 1300, a route to the peer's inner address
 * through the link with MTU 1299, and each namespace dropping underlay datagrams of exactly 1360
 * bytes (IP). A 1297-byte inner packet (ping -s 1269) padded to the link MTU would be 1300 bytes
 * and travel in a 1360-byte datagram; padded to the route's 1299 it travels in 1359 and passes.
 * Without the route the same ping fails (the control). wireguard-go pads to the link MTU, so
 * this runs for wireguard-ts pairs only.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  Lab,
  labSkipReason,
  makePair,
  pairSkipReason,
  ping,
  waitFor,
  waitPing,
  type Pair,
} from '../../src/lab/index.js';

const TOOLS = ['ip', 'wg', 'ping', 'nft'];
const skip = labSkipReason(TOOLS) ?? pairSkipReason(['ts', 'ts']);

describe('padding respects route MTUs (ts-ts)', { skip: skip ?? false }, () => {
  const lab = new Lab('wgtm');
  let p: Pair;
  after(() => lab.dispose());

  before(async () => {
    p = await makePair(lab, 'ts', 'ts', { stem: 'm', wgMtu: 1300 });
    for (const end of [p.a, p.b]) {
      await lab.exec(end.ns, 'nft', ['-f', '-'], {
        input: [
          'table ip wgtm {',
          '  chain in { type filter hook input priority 0; ip length 1360 drop; }',
          '}',
        ].join('\n'),
      });
    }
    await waitPing(lab, p.b.ns, p.a.inner4, 10_000);
  });

  it('control: padded to the link MTU, the 1360-byte datagram is dropped', async () => {
    assert.equal(await ping(lab, p.b.ns, p.a.inner4, { size: 1269, waitS: 1 }), false);
  });

  /** Adds (with MTU 1299) or deletes the route to the other end's inner address, on both ends. */
  const routes = async (op: 'add' | 'del') => {
    for (const [self, other] of [
      [p.a, p.b],
      [p.b, p.a],
    ] as const) {
      const mtu = op === 'add' ? ['mtu', '1299'] : [];
      await lab.exec(self.ns, 'ip', [
        'route',
        op,
        `${other.inner4}/32`,
        'dev',
        self.ifname,
        ...mtu,
      ]);
    }
  };

  it('with a 1299 route MTU on both ends the ping passes', async () => {
    await routes('add');
    // The daemons read the routes on the route change notification.
    await waitPing(lab, p.b.ns, p.a.inner4, 3000, { size: 1269 });
    // And without them again: back to the link MTU.
    await routes('del');
    await waitFor(
      async () => !(await ping(lab, p.b.ns, p.a.inner4, { size: 1269, waitS: 1 })),
      5000,
      'padding back at the link MTU',
    );
  });
});
