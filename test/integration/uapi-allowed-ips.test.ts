/**
 * Allowed IPs through real UAPI clients, per implementation in WG_TS_IMPLS:
 * - `wg show <if> allowed-ips` lists each peer's prefixes in the order they were added, with a
 *   re-added prefix moved last (the kernel's and wireguard-go's list order), the same output for
 *   wireguard-ts and wireguard-go after the same `wg set` commands;
 * - `allowed_ip=-PREFIX` through our UAPI client (uapiSet; the Debian `wg` predates the `-`
 *   syntax): removes the prefix only from the peer in the section, a prefix the peer does not hold
 *   (or another peer holds) is no error and stays, host bits are masked, and the `-` inside a
 *   `remove` section does nothing. wireguard-go learned `-` in 0.0.20250522, so this part runs
 *   against wireguard-ts (and against wireguard-go only when its UAPI accepts it).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import {
  Lab,
  genkey,
  implSkipReason,
  labSkipReason,
  pubkey,
  selectedImpls,
  socketPath,
  startDaemon,
  uapi,
  uapiErrno,
  wg,
  type Daemon,
} from '../../src/lab/index.js';
import { uapiSet } from '../../src/control/uapi-client.js';
import { keyFromBase64 } from '../../src/noise/keys.js';
import { parsePrefix } from '../../src/tunnel/ip.js';

const ORDER = [
  '10.0.0.3/32',
  'fd00:1::/64',
  '10.0.0.0/24',
  '192.168.0.0/16',
  '::/0',
  '10.1.0.0/16',
];

describe('allowed IPs through UAPI clients', { skip: labSkipReason() ?? false }, () => {
  const lab = new Lab('wgta');
  after(() => lab.dispose());
  const listings = new Map<string, string>();
  let keys: { p: string; q: string } | null = null;

  const peerKeys = async () => {
    keys ??= { p: await pubkey(lab, await genkey(lab)), q: await pubkey(lab, await genkey(lab)) };
    return keys;
  };

  /** `wg show allowed-ips` of peer `key` as a list. */
  const listOf = async (d: Daemon, key: string) => {
    const out = await wg(lab, d.ns, ['show', d.ifname, 'allowed-ips']);
    const line = out.split('\n').find((l) => l.startsWith(`${key}\t`)) ?? '';
    return line.split('\t')[1]!.split(' ');
  };

  for (const impl of selectedImpls()) {
    it(
      `${impl}: wg show lists allowed IPs in insertion order`,
      {
        skip: implSkipReason(impl) ?? false,
      },
      async () => {
        const { p, q } = await peerKeys();
        const ns = await lab.netns(lab.next(impl));
        const d = await startDaemon(lab, ns, impl, lab.name(`${impl}w`));
        await wg(lab, ns, ['set', d.ifname, 'peer', p, 'allowed-ips', ORDER.join(',')]);
        assert.deepEqual(await listOf(d, p), ORDER);
        // `wg set` replaces the list; the order given is kept (not sorted).
        const second = [...ORDER].reverse();
        await wg(lab, ns, ['set', d.ifname, 'peer', p, 'allowed-ips', second.join(',')]);
        assert.deepEqual(await listOf(d, p), second);
        // A prefix taken by another peer leaves this list; taken back, it comes last.
        await wg(lab, ns, ['set', d.ifname, 'peer', q, 'allowed-ips', '10.0.0.0/24']);
        await wg(lab, ns, [
          'set',
          d.ifname,
          'peer',
          p,
          'allowed-ips',
          [...second, '10.0.0.0/24'].join(','),
        ]);
        const out = await wg(lab, ns, ['show', d.ifname, 'allowed-ips']);
        assert.deepEqual(await listOf(d, p), [
          ...second.filter((x) => x !== '10.0.0.0/24'),
          '10.0.0.0/24',
        ]);
        assert.deepEqual(await listOf(d, q), ['(none)']);
        listings.set(impl, out.split('\n').sort().join('\n'));
        if (listings.size === 2) assert.equal(listings.get('ts'), listings.get('go'));

        // allowed_ip=-PREFIX, through our UAPI client.
        const probe = await uapi(
          d.ifname,
          `set=1\npublic_key=${hexKey(q)}\nallowed_ip=-10.9.9.9/32\n\n`,
        );
        if (uapiErrno(probe) !== 0) {
          assert.equal(impl, 'go', 'only a wireguard-go older than 0.0.20250522 refuses `-`');
          return;
        }
        await wg(lab, ns, ['set', d.ifname, 'peer', q, 'allowed-ips', '10.9.0.0/16']);
        await uapiSet(socketPath(d.ifname), [
          { key: 'public_key', value: keyFromBase64(p) },
          { key: 'allowed_ip', value: parsePrefix('10.0.0.3/32'), remove: true },
          { key: 'allowed_ip', value: parsePrefix('10.9.0.0/16'), remove: true }, // q's: stays
          { key: 'allowed_ip', value: parsePrefix('172.16.0.0/12'), remove: true }, // nobody's
          { key: 'allowed_ip', value: parsePrefix('fd00:1::77/64'), remove: true }, // host bits
          { key: 'allowed_ip', value: parsePrefix('10.1.0.0/24'), remove: true }, // not exact
        ]);
        assert.deepEqual(await listOf(d, q), ['10.9.0.0/16']);
        await uapiSet(socketPath(d.ifname), [
          { key: 'public_key', value: keyFromBase64(q) },
          { key: 'remove' },
          { key: 'allowed_ip', value: parsePrefix('10.0.0.0/24'), remove: true }, // dummy section
        ]);
        assert.deepEqual(
          await listOf(d, p),
          [...second.filter((x) => x !== '10.0.0.0/24'), '10.0.0.0/24'].filter(
            (x) => x !== '10.0.0.3/32' && x !== 'fd00:1::/64',
          ),
        );
        const peers = await wg(lab, ns, ['show', d.ifname, 'peers']);
        assert.ok(!peers.includes(q), 'q removed');
      },
    );
  }
});

function hexKey(base64: string): string {
  return Buffer.from(base64, 'base64').toString('hex');
}
