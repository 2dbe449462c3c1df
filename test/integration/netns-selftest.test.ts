/**
 * The checks of the kernel's WireGuard selftest (tools/testing/selftests/wireguard/netns.sh) that
 * other files do not already make, run the way that script runs them (with `wg`), against
 * wireguard-ts and every other implementation selected in WG_TS_IMPLS (wireguard-go shows the
 * test itself is right):
 * - byte counters after 10 pings: `wg show transfer` is 1372 received and 1428 or 1460 sent on
 *   the initiating side (the handshake and ten 128-byte data messages, maybe one keepalive);
 * - a private-key change followed at once by a ping: the handshake goes out without waiting for
 *   the 5 s initiation rate limit;
 * - peers with low-order public keys, persistent keepalive 1 and an endpoint: not one datagram;
 * - a routing loop (the peer's endpoint inside its own allowed IPs): pings fail, the daemon lives
 *   and the tunnel works again once the endpoint is fixed;
 * - split UAPI answers: 29 peers without allowed IPs then one with two, a peer with 197 IPv6
 *   allowed IPs; key edge cases: a private key of /dev/null, a key with `+` and `/`, setting our
 *   private key to a peer's (that peer goes, and is not added again), `wg show doesnotexist`.
 * Not reproducible from user space, so not checked: the TUN link's own byte counters (the kernel
 * counts encrypted bytes on its wg0; a TUN device counts the inner packets written to it).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  Lab,
  genkey,
  implSkipReason,
  keyFile,
  labSkipReason,
  makePair,
  pairSkipReason,
  ping,
  pubkey,
  selectedImpls,
  showPeers,
  sleep,
  startDaemon,
  waitPing,
  wg,
  type Daemon,
  type Netns,
  type Pair,
} from '../../src/lab/index.js';

const TOOLS = ['ip', 'wg', 'ping', 'ncat'];
const LOW_ORDER = [
  'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
  'AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
  '4Ot6fDtBuK4WVuP68Z/EatoJjeucMrH9hmIFFl9JuAA=',
  'X5yVvKNQjCSx0LFVnIPvWwREXMRYHI6G2CJO3dCfEVc=',
  '7P///////////////////////////////////////38=',
  '7f///////////////////////////////////////38=',
  '7v///////////////////////////////////////38=',
];

for (const impl of selectedImpls()) {
  const skip = labSkipReason(TOOLS) ?? pairSkipReason([impl, impl]);

  describe(`netns.sh checks against ${impl}`, { skip: skip ?? false }, () => {
    const lab = new Lab('wgtk');
    after(() => lab.dispose());
    let p: Pair;

    before(async () => {
      p = await makePair(lab, impl, impl, { stem: 'k' });
    });

    it('10 pings: transfer 1372 received, 1428 or 1460 sent by the initiator', async () => {
      const r = await lab.tryExec(p.b.ns, 'ping', ['-c', '10', '-f', '-W', '1', p.a.inner4]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const [b] = await showPeers(lab, p.b);
      const [a] = await showPeers(lab, p.a);
      assert.equal(b!.rxBytes, 1372);
      assert.ok(b!.txBytes === 1428 || b!.txBytes === 1460, `B sent ${b!.txBytes}`);
      assert.equal(a!.txBytes, 1372);
      assert.ok(a!.rxBytes === 1428 || a!.rxBytes === 1460, `A received ${a!.rxBytes}`);
      assert.ok(a!.latestHandshake > 0);
    });

    it('a private-key change is followed by a handshake at once', async () => {
      assert.ok(await ping(lab, p.a.ns, p.b.inner4, { waitS: 1 }));
      const key3 = await genkey(lab);
      const pub3 = await pubkey(lab, key3);
      await wg(lab, p.a.ns, ['set', p.a.ifname, 'private-key', keyFile(lab, key3)]);
      await wg(lab, p.b.ns, [
        ...['set', p.b.ifname, 'peer', pub3, 'allowed-ips', `${p.a.inner4}/32,${p.a.inner6}/128`],
        ...['peer', p.a.publicKey, 'remove'],
      ]);
      assert.ok(await ping(lab, p.a.ns, p.b.inner4, { waitS: 1 }), 'first ping, 1 s');
    });

    it('a routing loop fails pings without taking the daemon down', async (t) => {
      // B's endpoint for A inside A's own allowed IPs on B: B's datagrams go into B's tunnel.
      const [peer] = await showPeers(lab, p.b);
      const aKey = peer!.publicKey;
      const loop = `${p.a.inner4}:${p.a.port}`;
      await wg(lab, p.b.ns, ['set', p.b.ifname, 'peer', aKey, 'endpoint', loop]);
      const tx0 = peer!.txBytes;
      const r = await lab.tryExec(p.b.ns, 'ping', ['-c', '10', '-f', '-W', '1', p.a.inner4]);
      assert.notEqual(r.code, 0, 'no reply through a loop');
      await sleep(1000);
      // netns.sh's bound: each pass through the loop grows the datagram until it no longer fits
      // the MTU, so ten pings cost well under 70,000 bytes instead of spinning forever.
      // wireguard-go does not keep that bound (measured: 225-250 MB in the second after ten
      // pings, its socket lets the kernel fragment), so it is held to wireguard-ts and the kernel.
      const [looped] = await showPeers(lab, p.b);
      const spent = looped!.txBytes - tx0;
      t.diagnostic(`${impl} sent ${spent} bytes into the loop`);
      if (impl === 'ts') assert.ok(spent < 70_000, `sent ${spent} bytes into the loop`);
      assert.ok(p.b.daemon.alive(), 'daemon alive');
      await wg(lab, p.b.ns, ['set', p.b.ifname, 'peer', aKey, 'endpoint', p.a.endpoint]);
      // wireguard-go measured here took up to 17 s to come back (its retries are REKEY_TIMEOUT
      // apart when the loop ate an initiation); wireguard-ts is back within about a second.
      const t0 = Date.now();
      await waitPing(lab, p.b.ns, p.a.inner4, 30_000);
      if (impl === 'ts') assert.ok(Date.now() - t0 < 10_000, `back after ${Date.now() - t0} ms`);
    });
  });

  describe(
    `netns.sh UAPI and key checks against ${impl}`,
    {
      skip: labSkipReason(TOOLS) ?? implSkipReason(impl) ?? false,
    },
    () => {
      const lab = new Lab('wgtu');
      after(() => lab.dispose());
      let ns: Netns;
      let d: Daemon;
      const set = (...args: string[]) => wg(lab, ns, ['set', d.ifname, ...args]);
      const show = (what: string) => wg(lab, ns, ['show', d.ifname, what]);

      before(async () => {
        ns = await lab.netns(lab.next('u'));
        d = await startDaemon(lab, ns, impl, lab.name(lab.next('u')));
      });

      it('low-order public keys with keepalive and an endpoint send nothing', async () => {
        const listener = lab.spawn(ns, 'ncat', ['-l', '-u', '-p', '1111']);
        await sleep(300);
        await set('private-key', keyFile(lab, await genkey(lab)));
        for (const key of LOW_ORDER) {
          await set('peer', key, 'persistent-keepalive', '1', 'endpoint', '127.0.0.1:1111');
        }
        assert.notEqual((await show('peers')).trim(), '');
        await lab.exec(ns, 'ip', ['link', 'set', d.ifname, 'up']);
        await sleep(2500);
        assert.equal(listener.output(), '', 'no datagram reached 127.0.0.1:1111');
        assert.equal(listener.exitStatus(), null, 'the listener was up all along');
        for (const key of LOW_ORDER) await set('peer', key, 'remove');
        listener.kill();
      });

      it('split answers: 29 bare peers then one with two IPs; 197 allowed IPs of one peer', async () => {
        const keys = await Promise.all(
          Array.from({ length: 31 }, async () => pubkey(lab, await genkey(lab))),
        );
        for (const k of keys.slice(0, 29)) await set('peer', k);
        await set('peer', keys[29]!, 'allowed-ips', '255.2.3.4/32,abcd::255/128');
        const conf = await wg(lab, ns, ['showconf', d.ifname]);
        assert.equal(conf.match(/^\[Peer\]$/gm)?.length, 30);
        assert.match(conf, /AllowedIPs = 255\.2\.3\.4\/32, abcd::255\/128/);
        for (const k of keys.slice(0, 30)) await set('peer', k, 'remove');

        const many = Array.from({ length: 197 }, (_, i) => `abcd::${i + 1}`).join(',');
        await set('peer', keys[30]!, 'allowed-ips', many);
        const line = (await show('allowed-ips')).trim().split('\t');
        assert.equal(line[0], keys[30]);
        assert.equal(line[1]!.split(' ').length, 197);
        assert.equal(line[1]!.split(' ')[196], 'abcd::197/128', 'in the order given');
        await set('peer', keys[30]!, 'remove');
      });

      it('key edge cases: /dev/null, + and /, our private key equal to a peer’s', async () => {
        const key1 = await genkey(lab);
        const key2 = await genkey(lab);
        const pub2 = await pubkey(lab, key2);
        await set('private-key', keyFile(lab, key1), 'peer', pub2);
        assert.equal((await show('private-key')).trim(), key1);
        await set('private-key', '/dev/null', 'peer', pub2, 'preshared-key', '/dev/null');
        assert.equal((await show('private-key')).trim(), '(none)');
        assert.equal((await show('preshared-keys')).trim(), `${pub2}\t(none)`);
        // Our key becomes the peer's: the peer goes, and adding it again is ignored.
        await set('private-key', keyFile(lab, key2));
        assert.equal((await show('public-key')).trim(), pub2);
        assert.equal((await show('peers')).trim(), '');
        await set('peer', pub2);
        assert.equal((await show('peers')).trim(), '');
        await set('private-key', keyFile(lab, key1));
        await set('peer', pub2);
        assert.equal((await show('peers')).trim(), pub2);
        // '/' first: a valid base64 key; `wg` prints the clamped key ('+' for '/' in the first byte).
        await set('private-key', keyFile(lab, `/${key1.slice(1)}`));
        assert.equal((await show('private-key')).trim(), `+${key1.slice(1)}`);
        for (const ips of [
          '0.0.0.0/0,10.0.0.0/8,100.0.0.0/10,172.16.0.0/12,192.168.0.0/16',
          '0.0.0.0/0',
          '::/0,1700::/111,5000::/4,e000::/37,9000::/75',
          '::/0',
        ]) {
          await set('peer', pub2, 'allowed-ips', ips);
          assert.equal((await show('allowed-ips')).trim(), `${pub2}\t${ips.split(',').join(' ')}`);
        }
        await set('peer', pub2, 'remove');
        const r = await lab.tryExec(ns, 'wg', ['show', 'doesnotexist']);
        assert.notEqual(r.code, 0);
      });
    },
  );
}
