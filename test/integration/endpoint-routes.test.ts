/**
 * Sticky sources and routes, the kernel selftest's (netns.sh) last two sticky-socket cases, with
 * wireguard-ts on side A and each selected implementation on side B:
 * - the address B contacts is on another interface (another link) than the one its packets arrive
 *   on: A still answers from it;
 * - another interface's route takes precedence over the one A's session uses: A's next packet
 *   leaves by the new route with that route's source address (the kernel drops the sticky source
 *   when the route's interface differs from the one it was received on; wireguard-go watches
 *   rtnetlink for the same), so B sees A at the new address.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  Lab,
  labSkipReason,
  makePair,
  pairSkipReason,
  selectedImpls,
  showEndpoint,
  waitFor,
  waitPing,
  wg,
  type Pair,
} from '../../src/lab/index.js';

const TOOLS = ['ip', 'wg', 'ping', 'sysctl'];

for (const implB of selectedImpls()) {
  const skip = labSkipReason(TOOLS) ?? pairSkipReason(['ts', implB]);

  describe(
    `sticky sources and routes: wireguard-ts, ${implB} peer`,
    { skip: skip ?? false },
    () => {
      const lab = new Lab('wgtr');
      let p: Pair;
      after(() => lab.dispose());
      const ipA = (...args: string[]) => lab.exec(p.a.ns, 'ip', args);
      const ipB = (...args: string[]) => lab.exec(p.b.ns, 'ip', args);
      const bSees = () => showEndpoint(lab, p.b, p.a.publicKey);

      before(async () => {
        p = await makePair(lab, 'ts', implB, { stem: 'r' });
        await waitPing(lab, p.a.ns, p.b.inner4, 15_000);
      });

      it('answers from an address of another interface than the one packets arrive on', async () => {
        // A second link of A's (a veth with both ends in A: no dummy driver everywhere).
        const other: [string, string] = [lab.name('rd1'), lab.name('rd2')];
        await lab.veth(p.a.ns, p.a.ns, { names: other });
        await ipA('addr', 'add', '10.50.0.1/24', 'dev', other[0]);
        await ipB('route', 'add', '10.50.0.0/24', 'dev', p.b.veth);
        const ep = `10.50.0.1:${p.a.port}`;
        await wg(lab, p.b.ns, ['set', p.b.ifname, 'peer', p.a.publicKey, 'endpoint', ep]);
        await waitPing(lab, p.b.ns, p.a.inner4, 10_000);
        assert.equal(await bSees(), ep);
        // Back to A's veth address for the next case.
        await wg(lab, p.b.ns, ['set', p.b.ifname, 'peer', p.a.publicKey, 'endpoint', p.a.endpoint]);
        await waitPing(lab, p.b.ns, p.a.inner4, 10_000);
      });

      it("a route by another interface taking precedence moves A's source to it", async () => {
        const names: [string, string] = [lab.name('r3'), lab.name('r4')];
        await lab.veth(p.a.ns, p.b.ns, { names });
        const [veth3, veth4] = names;
        // A reaches B's subnet by its first veth, from .1, at metric 2 only.
        await ipA('route', 'del', '192.168.241.0/24', 'dev', p.a.veth);
        await ipA(
          'route',
          'add',
          '192.168.241.0/24',
          'dev',
          p.a.veth,
          'src',
          '192.168.241.1',
          'metric',
          '2',
        );
        await ipA('addr', 'add', '192.168.241.3/24', 'dev', veth3, 'noprefixroute');
        for (const [ns, dev] of [
          [p.a.ns, p.a.veth],
          [p.b.ns, veth4],
          [p.a.ns, 'all'],
          [p.b.ns, 'all'],
        ] as const) {
          await lab.exec(ns, 'sysctl', ['-qw', `net.ipv4.conf.${dev}.rp_filter=0`]);
        }
        await wg(lab, p.a.ns, ['set', p.a.ifname, 'peer', p.b.publicKey, 'endpoint', p.b.endpoint]);
        await waitPing(lab, p.a.ns, p.b.inner4, 10_000);
        assert.equal(await bSees(), `192.168.241.1:${p.a.port}`);

        await ipA(
          'route',
          'add',
          '192.168.241.0/24',
          'dev',
          veth3,
          'src',
          '192.168.241.3',
          'metric',
          '1',
        );
        await waitPing(lab, p.a.ns, p.b.inner4, 10_000);
        // B may need the ping's reply round to roam: wait briefly for its endpoint to settle.
        await waitFor(
          async () => (await bSees()) === `192.168.241.3:${p.a.port}`,
          3000,
          'B roams to .3',
        );
      });
    },
  );
}
