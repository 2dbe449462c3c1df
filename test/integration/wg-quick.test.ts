/**
 * `wg-quick up/down` with WG_QUICK_USERSPACE_IMPLEMENTATION pointing at each selected
 * implementation (wireguard-go, or this repository's bin/wireguard-ts), inside a namespace.
 * There is no wireguard kernel module here, so wg-quick's `ip link add type wireguard` fails and
 * it falls back to the userspace daemon, then configures it over the UAPI socket. The peer is a
 * wireguard-go daemon in a second namespace.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  Lab,
  implCommand,
  implSkipReason,
  keyFile,
  labSkipReason,
  linkStats,
  pidAlive,
  ping,
  selectedImpls,
  socketPath,
  startDaemon,
  waitFor,
  waitPing,
  wg,
  x25519Keypair,
} from '../../src/lab/index.js';

for (const impl of selectedImpls()) {
  const skip =
    labSkipReason(['ip', 'wg', 'wg-quick', 'ping']) ?? implSkipReason(impl) ?? implSkipReason('go');

  describe(`wg-quick with ${impl}`, { skip: skip ?? false }, () => {
    const lab = new Lab('wgti');
    after(() => lab.dispose());

    it('up configures a working tunnel; down removes it and the daemon exits', async () => {
      const stem = lab.next('q');
      const nsA = await lab.netns(`${stem}a`);
      const nsB = await lab.netns(`${stem}b`);
      const veth = await lab.veth(nsA, nsB);
      await lab.addr(nsA, veth.a, '192.168.241.1/24');
      await lab.addr(nsB, veth.b, '192.168.241.2/24');
      const ka = x25519Keypair();
      const kb = x25519Keypair();
      const b = await startDaemon(lab, nsB, 'go', lab.name(`${stem}wb`));
      await wg(lab, nsB, [
        ...['set', b.ifname, 'private-key', keyFile(lab, kb.privateKey), 'listen-port', '51821'],
        ...[
          'peer',
          ka.publicKey,
          'allowed-ips',
          '10.241.0.1/32',
          'endpoint',
          '192.168.241.1:51820',
        ],
      ]);
      await lab.addr(nsB, b.ifname, '10.241.0.2/24');
      await lab.exec(nsB, 'ip', ['link', 'set', b.ifname, 'up']);

      const ifname = lab.name(`${stem}wa`);
      const conf = join(lab.tmpdir(), `${ifname}.conf`);
      writeFileSync(
        conf,
        [
          '[Interface]',
          `PrivateKey = ${ka.privateKey}`,
          'ListenPort = 51820',
          'Address = 10.241.0.1/24',
          'MTU = 1380',
          '',
          '[Peer]',
          `PublicKey = ${kb.publicKey}`,
          'AllowedIPs = 10.241.0.2/32',
          'Endpoint = 192.168.241.2:51821',
          '',
        ].join('\n'),
        { mode: 0o600 },
      );
      const impl_ = `WG_QUICK_USERSPACE_IMPLEMENTATION=${implCommand(impl)}`;
      lab.defer(`wg-quick down ${ifname}`, async () => {
        if (existsSync(socketPath(ifname)))
          await lab.tryExec(nsA, 'env', [impl_, 'wg-quick', 'down', conf]);
      });
      const up = await lab.tryExec(nsA, 'env', [impl_, 'wg-quick', 'up', conf]);
      assert.equal(up.code, 0, `wg-quick up failed: ${up.stderr}`);
      assert.match(up.stderr, /Falling back to slow userspace implementation/);

      assert.equal((await wg(lab, nsA, ['show', ifname, 'listen-port'])).trim(), '51820');
      assert.equal((await wg(lab, nsA, ['show', ifname, 'public-key'])).trim(), ka.publicKey);
      assert.equal((await linkStats(lab, nsA, ifname)).mtu, 1380, 'MTU from the config');
      const addrs = (await lab.exec(nsA, 'ip', ['-br', 'addr', 'show', 'dev', ifname])).stdout;
      assert.match(addrs, /10\.241\.0\.1\/24/);
      await waitPing(lab, nsA, '10.241.0.2', 8000);
      assert.ok(await ping(lab, nsB, '10.241.0.1'), 'B reaches A');

      const pids = lab.netnsPidsSync(nsA.name).filter((pid) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(ifname);
        } catch {
          return false;
        }
      });
      assert.equal(pids.length, 1, 'one daemon for the interface');

      const down = await lab.tryExec(nsA, 'env', [impl_, 'wg-quick', 'down', conf]);
      assert.equal(down.code, 0, `wg-quick down failed: ${down.stderr}`);
      await waitFor(() => !pidAlive(pids[0]!), 5000, 'daemon exit after wg-quick down');
      await waitFor(
        async () => (await lab.tryExec(nsA, 'ip', ['link', 'show', 'dev', ifname])).code !== 0,
        3000,
        'link removed',
      );
      assert.equal(existsSync(socketPath(ifname)), false, 'socket file removed');
    });
  });
}
