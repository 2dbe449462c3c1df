/**
 * `up` / `down` end to end (root): two namespaces joined by a veth, a config file on each side,
 * `cmdUp` with each daemon (WG_TS_DAEMON=wireguard-go, and our own bin/wireguard-ts when the
 * native addon is built), a ping through the tunnel, `cmdDown`, and checks that links, sockets
 * and policy rules are gone. Also the UAPI client against a real wireguard-go daemon.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isUapiLive, uapiGet, uapiSet } from '../../src/control/uapi-client.js';
import { EINVAL, UapiErrnoError, socketPath } from '../../src/control/uapi.js';
import { formatPrefix, parseEndpoint, parsePrefix } from '../../src/tunnel/ip.js';

const hasCmd = (c: string) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0;
const skip =
  process.getuid?.() !== 0
    ? 'needs root (network namespaces)'
    : !hasCmd('wireguard-go')
      ? 'wireguard-go is not installed (scripts/setup.sh)'
      : false;

const upModule = fileURLToPath(new URL('../../src/control/up.js', import.meta.url));
const ownDaemonBuilt =
  existsSync(fileURLToPath(new URL('../../src/cli.js', import.meta.url))) &&
  existsSync(fileURLToPath(new URL('../../../build/Release/wgts_native.node', import.meta.url)));

function sh(args: string[]): { status: number; out: string } {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8' });
  return { status: r.status ?? 1, out: `${r.stdout}${r.stderr}` };
}

function must(args: string[]): string {
  const r = sh(args);
  assert.equal(r.status, 0, `${args.join(' ')}: ${r.out}`);
  return r.out;
}

function keypair(): { priv: string; pub: string } {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const b64 = (k: { export(o: { format: 'jwk' }): { d?: string; x?: string } }, f: 'd' | 'x') =>
    Buffer.from(k.export({ format: 'jwk' })[f]!, 'base64url').toString('base64');
  return { priv: b64(privateKey, 'd'), pub: b64(publicKey, 'x') };
}

/** Runs cmdUp/cmdDown in a child (inside `ns` when given); resolves on exit, not on pipe close. */
function runCmd(
  cmd: 'cmdUp' | 'cmdDown',
  arg: string,
  ns: string | null,
  daemon = 'wireguard-go',
): Promise<{ code: number; stderr: string }> {
  const script = `const m = await import(${JSON.stringify(upModule)}); process.exit(await m.${cmd}(process.argv.slice(1)));`;
  const node = [process.execPath, '--input-type=module', '-e', script, arg];
  const argv = ns ? ['ip', 'netns', 'exec', ns, ...node] : node;
  // An empty WG_TS_DAEMON means our own launcher (bin/wireguard-ts).
  const env: NodeJS.ProcessEnv = { ...process.env, WG_TS_DAEMON: daemon };
  delete env['LOG_LEVEL']; // with it, wireguard-go's daemon would keep our stderr pipe open
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      setTimeout(() => resolve({ code: code ?? 1, stderr }), 20);
    });
  });
}

for (const [tag, daemon, why] of [
  ['g', 'wireguard-go', skip],
  ['t', '', skip || (ownDaemonBuilt ? false : 'dist/src/cli.js or the native addon is not built')],
] as const) {
  describe(`up/down with ${daemon || 'bin/wireguard-ts'}`, { skip: why }, () => {
    const id = `wgtu${process.pid}${tag}`;
    const nsA = `${id}a`;
    const nsB = `${id}b`;
    const ifA = `${id}a`; // socket names are global (/var/run/wireguard), so they differ per side
    const ifB = `${id}b`;
    const cleanup = () => {
      for (const [ns, dev] of [
        [nsA, ifA],
        [nsB, ifB],
      ] as const) {
        sh(['ip', '-n', ns, 'link', 'del', dev]);
        sh(['ip', 'netns', 'del', ns]);
      }
    };
    let dir = '';
    const a = keypair();
    const b = keypair();

    before(() => {
      dir = mkdtempSync(join(tmpdir(), `${id}-`));
      cleanup();
      must(['ip', 'netns', 'add', nsA]);
      must(['ip', 'netns', 'add', nsB]);
      must([
        'ip',
        'link',
        'add',
        `${id}va`,
        'netns',
        nsA,
        'type',
        'veth',
        'peer',
        `${id}vb`,
        'netns',
        nsB,
      ]);
      must(['ip', '-n', nsA, 'addr', 'add', '192.168.77.1/24', 'dev', `${id}va`]);
      must(['ip', '-n', nsB, 'addr', 'add', '192.168.77.2/24', 'dev', `${id}vb`]);
      for (const [ns, dev] of [
        [nsA, `${id}va`],
        [nsB, `${id}vb`],
      ]) {
        must(['ip', '-n', ns!, 'link', 'set', 'lo', 'up']);
        must(['ip', '-n', ns!, 'link', 'set', dev!, 'up']);
      }
    });
    after(() => {
      cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    it('brings up both sides from files, pings through the tunnel, and tears down', async () => {
      const confA = join(dir, `${ifA}.conf`);
      const confB = join(dir, `${ifB}.conf`);
      writeFileSync(
        confA,
        `[Interface]\nPrivateKey = ${a.priv}\nListenPort = 51820\nAddress = 10.99.0.1/24\n\n` +
          `[Peer]\nPublicKey = ${b.pub}\nAllowedIPs = 10.99.0.2/32, 10.98.0.0/16\nEndpoint = 192.168.77.2:51821\n`,
        { mode: 0o600 },
      );
      // B routes everything through A: exercises wg-quick's fwmark + policy rule handling of /0.
      writeFileSync(
        confB,
        `[Interface]\nPrivateKey = ${b.priv}\nListenPort = 51821\nAddress = 10.99.0.2/24\nMTU = 1380\n\n` +
          `[Peer]\nPublicKey = ${a.pub}\nAllowedIPs = 0.0.0.0/0\nEndpoint = 192.168.77.1:51820\n` +
          `PersistentKeepalive = 25\n`,
        { mode: 0o600 },
      );
      const upA = await runCmd('cmdUp', confA, nsA, daemon);
      assert.equal(upA.code, 0, upA.stderr);
      const upB = await runCmd('cmdUp', confB, nsB, daemon);
      assert.equal(upB.code, 0, upB.stderr);

      const again = await runCmd('cmdUp', confA, nsA, daemon);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /already exists/);

      const info = await uapiGet(ifA);
      assert.equal(info.listenPort, 51820);
      // Sorted: wireguard-go lists insertion order, our daemon trie order.
      assert.deepEqual(info.peers[0]!.allowedIps.map(formatPrefix).sort(), [
        '10.98.0.0/16',
        '10.99.0.2/32',
      ]);
      const linkA = must(['ip', '-n', nsA, 'link', 'show', 'dev', ifA]);
      assert.match(linkA, /mtu 1420 /, 'auto MTU: veth 1500 - 80');
      assert.match(linkA, /UP/);
      assert.match(must(['ip', '-n', nsB, 'link', 'show', 'dev', ifB]), /mtu 1380/);
      // 10.99.0.2/32 is covered by the address's connected route; 10.98.0.0/16 needs its own.
      const routesA = must(['ip', '-n', nsA, 'route', 'show', 'dev', ifA]);
      assert.match(routesA, /10\.98\.0\.0\/16/);
      assert.doesNotMatch(routesA, /10\.99\.0\.2 /);
      const infoB = await uapiGet(ifB);
      assert.equal(infoB.fwmark, 51820, 'a /0 peer sets the fwmark, as wg-quick does');
      assert.match(
        must(['ip', '-n', nsB, 'rule', 'show']),
        /not from all fwmark 0xca6c lookup 51820/,
      );
      assert.match(must(['ip', '-n', nsB, 'route', 'show', 'table', '51820']), /default dev/);

      // A config the daemon refuses (port taken by A): exit 1, and the new link is removed.
      const clash = join(dir, `${id}c.conf`);
      writeFileSync(clash, `[Interface]\nPrivateKey = ${b.priv}\nListenPort = 51820\n`, {
        mode: 0o600,
      });
      const r = await runCmd('cmdUp', clash, nsA, daemon);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /Address already in use/);
      assert.notEqual(sh(['ip', '-n', nsA, 'link', 'show', 'dev', `${id}c`]).status, 0);
      assert.equal(existsSync(socketPath(`${id}c`)), false);

      must(['ip', 'netns', 'exec', nsA, 'ping', '-c', '2', '-i', '0.2', '-w', '10', '10.99.0.2']);
      must(['ip', 'netns', 'exec', nsB, 'ping', '-c', '2', '-i', '0.2', '-w', '10', '10.99.0.1']);
      const after = await uapiGet(ifB);
      assert.ok(after.peers[0]!.lastHandshakeMs > Date.now() - 60_000, 'handshake happened');
      assert.ok(after.peers[0]!.rxBytes > 0 && after.peers[0]!.txBytes > 0);

      for (const [ns, conf, dev] of [
        [nsA, confA, ifA],
        [nsB, ifB, ifB],
      ] as const) {
        const down = await runCmd('cmdDown', conf, ns, daemon);
        assert.equal(down.code, 0, down.stderr);
        assert.notEqual(sh(['ip', '-n', ns, 'link', 'show', 'dev', dev]).status, 0, 'link is gone');
        assert.equal(await isUapiLive(dev), false);
        assert.equal(existsSync(socketPath(dev)), false, 'socket is gone');
      }
      const rules = must(['ip', '-n', nsB, 'rule', 'show']);
      assert.doesNotMatch(rules, /51820|suppress_prefixlength/, 'policy rules removed');

      const missing = await runCmd('cmdDown', ifA, nsA);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /no such interface/);
      const notWg = await runCmd('cmdDown', 'lo', nsA);
      assert.equal(notWg.code, 1);
      assert.match(notWg.stderr, /not a WireGuard interface/);
      assert.equal(sh(['ip', '-n', nsA, 'link', 'show', 'dev', 'lo']).status, 0, 'lo survives');
    });

    it('refuses a bad file with exit 2 and file:line, creating nothing', async () => {
      const bad = join(dir, `${id}c.conf`);
      writeFileSync(bad, `[Interface]\nPrivateKey = ${a.priv}\nListenPort = 70000\n`, {
        mode: 0o600,
      });
      const r = await runCmd('cmdUp', bad, nsA, daemon);
      assert.equal(r.code, 2);
      assert.ok(r.stderr.includes(`${bad}:3:`), r.stderr);
      assert.notEqual(sh(['ip', '-n', nsA, 'link', 'show', 'dev', `${id}c`]).status, 0);
      const usage = await runCmd('cmdUp', join(dir, 'missing.conf'), null);
      assert.equal(usage.code, 2);
      assert.match(usage.stderr, /cannot read/);
    });
  });
}

describe('UAPI client against wireguard-go', { skip }, () => {
  it('drives a real wireguard-go daemon with the UAPI client', async () => {
    const dev = `wgtu${process.pid}c`;
    const env: NodeJS.ProcessEnv = { ...process.env, WG_PROCESS_FOREGROUND: '1' };
    delete env['LOG_LEVEL'];
    const daemon = spawn('wireguard-go', [dev], { env, stdio: 'ignore' });
    try {
      assert.ok(await waitLive(dev), 'wireguard-go serves its socket');
      const peer = new Uint8Array(32).fill(7);
      await uapiSet(dev, [
        { key: 'listen_port', value: 0 },
        { key: 'public_key', value: peer },
        { key: 'endpoint', value: parseEndpoint('[::1]:5') },
        { key: 'persistent_keepalive_interval', value: 0 },
        { key: 'allowed_ip', value: parsePrefix('10.0.0.1/24'), remove: false },
        { key: 'allowed_ip', value: parsePrefix('fd00::/64'), remove: false },
      ]);
      const info = await uapiGet(dev);
      assert.equal(info.peers.length, 1);
      assert.deepEqual(info.peers[0]!.publicKey, peer);
      assert.deepEqual(info.peers[0]!.allowedIps.map(formatPrefix), ['10.0.0.0/24', 'fd00::/64']);
      // A device key inside a peer section: wireguard-go answers errno=-22.
      await assert.rejects(
        uapiSet(dev, [
          { key: 'public_key', value: peer },
          { key: 'fwmark', value: 1 },
        ]),
        (e: unknown) => e instanceof UapiErrnoError && e.errno === EINVAL,
      );
    } finally {
      daemon.kill('SIGTERM');
      sh(['ip', 'link', 'del', dev]);
    }
  });
});

async function waitLive(dev: string): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (await isUapiLive(dev)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}
