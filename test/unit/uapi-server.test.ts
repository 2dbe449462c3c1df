/**
 * The UAPI socket server against our client, raw sockets and (as root) the real `wg` tool, with
 * an in-memory handler; and `wg show`/`showconf` output compared with a real wireguard-go.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WgError } from '../../src/errors.js';
import { listenUapi, type UapiHandler, type UapiServer } from '../../src/control/uapi-server.js';
import { isUapiLive, uapiGet, uapiSet } from '../../src/control/uapi-client.js';
import {
  EADDRINUSE,
  UapiErrnoError,
  keyToHex,
  newPeerInfo,
  type UapiDeviceInfo,
  type UapiPeerInfo,
  type UapiSetOp,
} from '../../src/control/uapi.js';
import { formatPrefix, parseEndpoint, parsePrefix, type IpPrefix } from '../../src/tunnel/ip.js';

/** An in-memory device with wireguard-go's set semantics (enough for `wg`). */
class FakeDevice implements UapiHandler {
  privateKey: Uint8Array | null = null;
  listenPort = 0;
  fwmark = 0;
  peers = new Map<string, UapiPeerInfo & { ips: Map<string, IpPrefix> }>();
  owner = new Map<string, string>(); // prefix text -> peer hex
  setCalls = 0;
  failWith = 0;

  get(): UapiDeviceInfo {
    return {
      privateKey: this.privateKey,
      listenPort: this.listenPort,
      fwmark: this.fwmark,
      peers: [...this.peers.values()].map((p) => ({ ...p, allowedIps: [...p.ips.values()] })),
    };
  }

  set(ops: readonly UapiSetOp[]): number {
    this.setCalls++;
    let cur: string | null = null; // null = no peer or a dummy (removed / update_only)
    for (const op of ops) {
      const peer = cur === null ? undefined : this.peers.get(cur);
      switch (op.key) {
        case 'private_key':
          this.privateKey = op.value;
          break;
        case 'listen_port':
          if (this.failWith) return this.failWith;
          this.listenPort = op.value;
          break;
        case 'fwmark':
          this.fwmark = op.value;
          break;
        case 'replace_peers':
          this.peers.clear();
          this.owner.clear();
          break;
        case 'public_key': {
          cur = keyToHex(op.value);
          if (!this.peers.has(cur)) {
            this.peers.set(cur, { ...newPeerInfo(op.value), ips: new Map() });
            (this.peers.get(cur) as { created?: boolean }).created = true;
          } else (this.peers.get(cur) as { created?: boolean }).created = false;
          break;
        }
        case 'update_only':
          if (peer && (peer as { created?: boolean }).created) this.removePeer(cur!);
          cur = null;
          break;
        case 'remove':
          if (peer) this.removePeer(cur!);
          cur = null;
          break;
        case 'preshared_key':
          if (peer) peer.presharedKey = op.value;
          break;
        case 'endpoint':
          if (peer) peer.endpoint = op.value;
          break;
        case 'persistent_keepalive_interval':
          if (peer) peer.persistentKeepalive = op.value;
          break;
        case 'replace_allowed_ips':
          if (peer) {
            for (const t of peer.ips.keys()) this.owner.delete(t);
            peer.ips.clear();
          }
          break;
        case 'allowed_ip': {
          if (!peer) break;
          const t = formatPrefix(op.value);
          const prev = this.owner.get(t);
          if (op.remove) {
            if (prev === cur) {
              peer.ips.delete(t);
              this.owner.delete(t);
            }
            break;
          }
          if (prev !== undefined && prev !== cur) this.peers.get(prev)?.ips.delete(t);
          this.owner.set(t, cur!);
          peer.ips.set(t, op.value);
          break;
        }
        case 'protocol_version':
          break;
      }
    }
    return 0;
  }

  private removePeer(hex: string): void {
    const p = this.peers.get(hex)!;
    for (const t of p.ips.keys()) this.owner.delete(t);
    this.peers.delete(hex);
  }
}

const key = (b: number) => new Uint8Array(32).fill(b);
const hex = (b: number) => Buffer.from(key(b)).toString('hex');

/** Sends raw bytes (in the given pieces) and collects everything until the server closes or idles. */
function raw(
  path: string,
  pieces: (string | Buffer)[],
  idleMs = 150,
): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = createConnection({ path });
    let text = '';
    let closed = false;
    let timer: NodeJS.Timeout;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        s.destroy();
        resolve({ text, closed });
      }, idleMs);
    };
    s.on('connect', async () => {
      for (const p of pieces) {
        s.write(p);
        await new Promise((r) => setImmediate(r));
      }
      arm();
    });
    s.on('data', (d) => {
      text += d.toString('latin1');
      arm();
    });
    s.on('error', () => {});
    s.on('close', () => {
      closed = true;
      clearTimeout(timer);
      resolve({ text, closed });
    });
  });
}

describe('uapi server with the client (no root)', () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'wgtu-uapi-')), 'run', 'wireguard');
  let dev: FakeDevice;
  let srv: UapiServer;
  const logs: string[] = [];
  let removed = 0;

  before(async () => {
    dev = new FakeDevice();
    srv = await listenUapi({
      ifname: 'wgtest0',
      dir,
      handler: dev,
      log: (l, m) => logs.push(`${l} ${m}`),
      onSocketRemoved: () => removed++,
    });
  });
  after(async () => {
    await srv.close();
    rmSync(join(dir, '..', '..'), { recursive: true, force: true });
  });

  it('creates the directory 0755 and a root-only socket', () => {
    assert.equal(srv.path, join(dir, 'wgtest0.sock'));
    assert.equal(statSync(dir).mode & 0o777, 0o755);
    const st = statSync(srv.path);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o077, 0, `mode ${(st.mode & 0o777).toString(8)}`);
  });

  it('round-trips set and get through the client', async () => {
    await uapiSet(
      'wgtest0',
      [
        { key: 'private_key', value: key(0x40) },
        { key: 'listen_port', value: 51820 },
        { key: 'public_key', value: key(1) },
        { key: 'endpoint', value: parseEndpoint('192.0.2.1:5') },
        { key: 'allowed_ip', value: parsePrefix('10.0.0.0/8'), remove: false },
      ],
      { dir },
    );
    const info = await uapiGet(join(dir, 'wgtest0.sock')); // a path works too
    assert.deepEqual(info.privateKey, key(0x40));
    assert.equal(info.listenPort, 51820);
    assert.equal(info.peers.length, 1);
    assert.deepEqual(info.peers[0]!.allowedIps.map(formatPrefix), ['10.0.0.0/8']);
    assert.equal(await isUapiLive('wgtest0', dir), true);
    assert.equal(await isUapiLive('nothere0', dir), false);
  });

  it('serves several requests on one connection, split at any byte', async () => {
    const req = `set=1\npublic_key=${hex(2)}\nallowed_ip=10.2.0.0/16\n\nget=1\n\n`;
    const r = await raw(
      srv.path,
      [...req].map((c) => c),
    );
    assert.ok(r.text.startsWith('errno=0\n\n'), r.text);
    assert.ok(r.text.endsWith('errno=0\n\n'));
    assert.ok(r.text.includes(`public_key=${hex(2)}\n`));
    assert.ok(r.text.includes('allowed_ip=10.2.0.0/16\n'));
    assert.equal(r.closed, false, 'connection stays open');
  });

  const bad: [string, string, string][] = [
    ['missing "="', 'listen_port', 'errno=-71\n\n'],
    ['bad hex key', `public_key=${hex(3).slice(1)}`, 'errno=-22\n\n'],
    ['bad CIDR', `public_key=${hex(3)}\nallowed_ip=10.0.0.0/33`, 'errno=-22\n\n'],
    ['unknown key', 'nonsense=1', 'errno=-22\n\n'],
  ];
  for (const [name, lines, reply] of bad) {
    it(`replies ${reply.trim()} to a set with ${name}, keeping earlier lines only`, async () => {
      const before = dev.get();
      const r = await raw(srv.path, [`set=1\nfwmark=77\n${lines}\nlisten_port=1\n\nget=1\n\n`]);
      assert.ok(r.text.startsWith(reply), JSON.stringify(r.text.slice(0, 40)));
      const after = dev.get();
      assert.equal(after.fwmark, 77, 'the line before the bad one was applied');
      assert.equal(after.listenPort, before.listenPort, 'lines after it were not');
      assert.ok(r.text.endsWith('errno=0\n\n'), 'the connection still serves the next request');
      dev.fwmark = 0;
    });
  }

  it('reports a handler errno negated on the wire; the client throws it positive', async () => {
    dev.failWith = EADDRINUSE;
    try {
      const r = await raw(srv.path, ['set=1\nlisten_port=9\n\n']);
      assert.equal(r.text, 'errno=-98\n\n');
      await assert.rejects(
        uapiSet('wgtest0', [{ key: 'listen_port', value: 9 }], { dir }),
        (e: unknown) => e instanceof UapiErrnoError && e.errno === 98 && e.code === 'ERR_IN_USE',
      );
    } finally {
      dev.failWith = 0;
    }
  });

  it('closes without a reply on an unknown operation (as wireguard-go)', async () => {
    const r = await raw(srv.path, [`private_key=${hex(5)}\n`]);
    assert.equal(r.text, '');
    assert.equal(r.closed, true);
    assert.ok(logs.some((l) => l.includes('invalid operation "private_key"')));
    assert.ok(!logs.some((l) => l.includes(hex(5))), 'key values are never logged');
  });

  it('answers errno=-22 to get=1 followed by junk', async () => {
    const r = await raw(srv.path, ['get=1\nx\n']);
    assert.equal(r.text, 'errno=-22\n\n');
  });

  it('closes a connection sending an over-long line', async () => {
    const r = await raw(srv.path, ['set=1\nallowed_ip=', Buffer.alloc(70 * 1024, 0x31)]);
    assert.equal(r.text, 'errno=-5\n\n');
    assert.equal(r.closed, true);
    const r2 = await raw(srv.path, [Buffer.alloc(70 * 1024, 0x31)]);
    assert.equal(r2.closed, true);
  });

  it('refuses a second server on a live socket with ERR_IN_USE', async () => {
    await assert.rejects(
      listenUapi({ ifname: 'wgtest0', dir, handler: new FakeDevice() }),
      (e: unknown) => e instanceof WgError && e.code === 'ERR_IN_USE',
    );
    assert.equal(await isUapiLive('wgtest0', dir), true, 'the first server still serves');
  });

  it('takes over a stale socket file', async () => {
    writeFileSync(join(dir, 'stale0.sock'), 'not a socket');
    const s2 = await listenUapi({ ifname: 'stale0', dir, handler: new FakeDevice() });
    assert.equal((await uapiGet('stale0', { dir })).peers.length, 0);
    await s2.close();
    assert.equal(existsSync(join(dir, 'stale0.sock')), false, 'close() unlinks the socket');
  });

  it('applies a 130,000-line allowed_ip set in one handler call, and lists it, each under 2 s', async () => {
    const ops: UapiSetOp[] = [{ key: 'public_key', value: key(9) }, { key: 'replace_allowed_ips' }];
    for (let i = 0; i < 130_000; i++) {
      const b = new Uint8Array([10, (i >> 16) & 255, (i >> 8) & 255, i & 255]);
      ops.push({ key: 'allowed_ip', value: { family: 4, bytes: b, cidr: 32 }, remove: false });
    }
    const calls = dev.setCalls;
    let t = performance.now();
    await uapiSet('wgtest0', ops, { dir });
    const setMs = performance.now() - t;
    assert.equal(dev.setCalls, calls + 1);
    t = performance.now();
    const info = await uapiGet('wgtest0', { dir });
    const getMs = performance.now() - t;
    const p = info.peers.find((x) => keyToHex(x.publicKey) === hex(9))!;
    assert.equal(p.allowedIps.length, 130_000);
    assert.ok(setMs < 2000, `set took ${setMs.toFixed(0)} ms`);
    assert.ok(getMs < 2000, `get took ${getMs.toFixed(0)} ms`);
    await uapiSet('wgtest0', [{ key: 'public_key', value: key(9) }, { key: 'remove' }], { dir });
  });

  it('calls onSocketRemoved once when the socket file is deleted', async () => {
    const s3 = await listenUapi({
      ifname: 'gone0',
      dir,
      handler: new FakeDevice(),
      onSocketRemoved: () => removed++,
    });
    const before = removed;
    unlinkSync(s3.path);
    for (let i = 0; i < 60 && removed === before; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(removed, before + 1);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(removed, before + 1, 'only once');
    await s3.close();
  });

  it('serves an inherited listening fd (WG_UAPI_FD)', async () => {
    const path = join(dir, 'fd0.sock');
    const parent = createServer();
    await new Promise<void>((r) => parent.listen(path, r));
    const fd = (parent as unknown as { _handle: { fd: number } })._handle.fd;
    const mod = fileURLToPath(new URL('../../src/control/uapi-server.js', import.meta.url));
    const script =
      `const { listenUapi } = await import(${JSON.stringify(mod)});` +
      `const s = await listenUapi({ ifname: 'fd0', dir: ${JSON.stringify(dir)}, fd: 3, handler: ` +
      `{ get: () => ({ privateKey: null, listenPort: 4242, fwmark: 0, peers: [] }), set: () => 0 } });` +
      `process.stdout.write('ready\\n'); setTimeout(() => process.exit(0), 3000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit', fd],
    });
    try {
      await new Promise<void>((r) => child.stdout!.once('data', () => r()));
      // Closing a server unlinks its path (libuv); move the file aside so the child keeps it.
      renameSync(path, `${path}.moved`);
      await new Promise((r) => parent.close(r));
      renameSync(`${path}.moved`, path);
      const info = await uapiGet(path);
      assert.equal(info.listenPort, 4242);
    } finally {
      child.kill();
    }
  });
});

const hasCmd = (c: string) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0;
const rootSkip =
  process.getuid?.() !== 0
    ? 'needs root: wg only talks to /var/run/wireguard'
    : !hasCmd('wg') || !hasCmd('wireguard-go')
      ? 'wg or wireguard-go is not installed (scripts/setup.sh)'
      : false;

describe(
  'uapi server with the real wg tool, compared with wireguard-go (root)',
  { skip: rootSkip },
  () => {
    const ours = `wgtu${process.pid}s`;
    const theirs = `wgtu${process.pid}w`;
    const ns = `wgtu${process.pid}n`;
    let tmp = '';
    const dev = new FakeDevice();
    let srv: UapiServer;
    let daemon: ReturnType<typeof spawn> | null = null;
    // Never spawnSync here: our server runs in this process and must answer while wg waits.
    const exec = (file: string, args: string[], input?: string) =>
      new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
        const c = execFile(
          file,
          args,
          { encoding: 'utf8', timeout: 10_000 },
          (err, stdout, stderr) =>
            resolve({
              status: err ? (((err as { code?: unknown }).code as number) ?? 1) : 0,
              stdout,
              stderr,
            }),
        );
        if (input !== undefined) c.stdin!.end(input);
      });
    const wg = (...args: string[]) => exec('wg', args);

    before(async () => {
      tmp = mkdtempSync(join(tmpdir(), 'wgtu-wg-'));
      srv = await listenUapi({ ifname: ours, handler: dev });
      spawnSync('ip', ['netns', 'add', ns]);
      const env: NodeJS.ProcessEnv = { ...process.env, WG_PROCESS_FOREGROUND: '1' };
      delete env['LOG_LEVEL'];
      daemon = spawn('ip', ['netns', 'exec', ns, 'wireguard-go', theirs], { env, stdio: 'ignore' });
      for (let i = 0; i < 100 && !(await isUapiLive(theirs)); i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
    });
    after(async () => {
      await srv.close();
      spawnSync('ip', ['-n', ns, 'link', 'del', theirs]);
      daemon?.kill();
      spawnSync('ip', ['netns', 'del', ns]);
      rmSync(tmp, { recursive: true, force: true });
    });

    const conf = (k: (b: number) => string) => `[Interface]
PrivateKey = ${k(0x40)}
ListenPort = 51999
FwMark = 0x42

[Peer]
PublicKey = ${k(1)}
PresharedKey = ${k(3)}
AllowedIPs = 10.1.0.0/16, fd00:1::/64, 192.168.5.7/32
Endpoint = 192.0.2.1:51820
PersistentKeepalive = 25

[Peer]
PublicKey = ${k(2)}
AllowedIPs = 10.2.0.0/16
Endpoint = [2001:db8::2]:1234
`;
    const b64 = (b: number) => Buffer.from(key(b)).toString('base64');

    it('wg setconf / showconf / show print the same for our server and wireguard-go', async () => {
      const file = join(tmp, 'x.conf');
      writeFileSync(file, conf(b64));
      for (const ifname of [ours, theirs]) {
        const r = await wg('setconf', ifname, file);
        assert.equal(r.status, 0, `${ifname}: ${r.stderr}`);
      }
      // wireguard-go lists peers in Go map order: compare peer blocks as sets.
      const blocks = (s: string) =>
        s
          .split('\n\n')
          .map((b) => b.trim())
          .sort();
      const a = await wg('showconf', ours);
      const b = await wg('showconf', theirs);
      assert.equal(a.status, 0, a.stderr);
      assert.deepEqual(blocks(a.stdout), blocks(b.stdout));
      assert.match(a.stdout, /FwMark = 0x42/);
      const sa = await wg('show', ours);
      const sb = await wg('show', theirs);
      assert.deepEqual(
        blocks(sa.stdout.replace(ours, 'X')),
        blocks(sb.stdout.replace(theirs, 'X')),
      );
      assert.match(sa.stdout, /allowed ips: 10\.1\.0\.0\/16, fd00:1::\/64, 192\.168\.5\.7\/32/);
      assert.equal((await wg('show', 'interfaces')).stdout.includes(ours), true);
    });

    it('wg set changes allowed IPs and removes peers like wireguard-go', async () => {
      for (const ifname of [ours, theirs]) {
        const set = ['set', ifname, 'peer', b64(1), 'allowed-ips', '10.9.0.0/24,10.2.0.0/16'];
        assert.equal((await wg(...set)).status, 0);
        assert.equal((await wg('set', ifname, 'peer', b64(2), 'remove')).status, 0);
      }
      const a = (await wg('show', ours, 'allowed-ips')).stdout;
      assert.equal(a, (await wg('show', theirs, 'allowed-ips')).stdout);
      assert.equal(a, `${b64(1)}\t10.9.0.0/24 10.2.0.0/16\n`);
    });

    it('a bad request gets the same errno bytes as from wireguard-go; wg prints handler errors', async () => {
      // wg validates its own input, so send the same bad request to both raw and compare bytes.
      const req = `set=1\npublic_key=${hex(1)}\nallowed_ip=10.0.0.0/33\n\n`;
      const ra = await raw(srv.path, [req]);
      const rb = await raw(`/var/run/wireguard/${theirs}.sock`, [req]);
      assert.equal(ra.text, 'errno=-22\n\n');
      assert.equal(ra.text, rb.text);
      // A failure the handler reports: wg negates the errno and prints its message.
      dev.failWith = EADDRINUSE;
      try {
        const r = await wg('set', ours, 'listen-port', '5');
        assert.equal(r.status, 1);
        assert.match(r.stderr, /Address already in use/);
      } finally {
        dev.failWith = 0;
      }
    });
  },
);
