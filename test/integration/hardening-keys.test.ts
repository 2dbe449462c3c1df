/**
 * Key hygiene of the daemon (issue 6 §8): a full handshake, traffic, a rekey by key change and
 * configuration reads/writes with LOG_LEVEL=debug on both wireguard-ts daemons; their complete
 * logs must not contain any private key or preshared key in any encoding (base64, hex, or hex
 * of the raw bytes as the UAPI writes them). The UAPI socket must be usable by root only.
 * Key files: `wireguard-ts up` refuses a config file other users can read.
 */
import assert from 'node:assert/strict';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  Lab,
  implSkipReason,
  keyFile,
  labSkipReason,
  startDaemon,
  tcpTransfer,
  uapi,
  waitPing,
  wg,
  x25519Keypair,
  type Daemon,
  type Netns,
} from '../../src/lab/index.js';

const skip = labSkipReason(['ip', 'wg', 'ping', 'ncat', 'ss']) ?? implSkipReason('ts');

/** Every text form a 32-byte key could take in a log line. */
function forms(b64: string): string[] {
  const raw = Buffer.from(b64, 'base64');
  return [
    b64,
    b64.slice(0, 43),
    raw.toString('hex'),
    raw.toString('hex').toUpperCase(),
    raw.toString('base64url'),
  ];
}

describe('hardening: key hygiene', { skip: skip ?? false }, () => {
  const lab = new Lab('wgth');
  const keys = { a: x25519Keypair(), b: x25519Keypair(), a2: x25519Keypair() };
  const psk = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 255)).toString(
    'base64',
  );
  const psk2 = x25519Keypair().privateKey;
  let ns: { a: Netns; b: Netns };
  let d: { a: Daemon; b: Daemon };
  before(async () => {
    ns = { a: await lab.netns('ka'), b: await lab.netns('kb') };
    const v = await lab.veth(ns.a, ns.b);
    await lab.addr(ns.a, v.a, '192.168.242.1/24');
    await lab.addr(ns.b, v.b, '192.168.242.2/24');
    const opts = { foreground: true, logLevel: 'debug' as const };
    d = {
      a: await startDaemon(lab, ns.a, 'ts', lab.name('kwa'), opts),
      b: await startDaemon(lab, ns.b, 'ts', lab.name('kwb'), opts),
    };
    const conf = async (
      self: 'a' | 'b',
      other: 'a' | 'b',
      port: number,
      otherPort: number,
      n: number,
      m: number,
    ) => {
      await wg(lab, ns[self], [
        'set',
        d[self].ifname,
        'private-key',
        keyFile(lab, keys[self].privateKey),
        'listen-port',
        `${port}`,
        'peer',
        keys[other].publicKey,
        'preshared-key',
        keyFile(lab, psk),
        'allowed-ips',
        `10.242.0.${m}/32`,
        'endpoint',
        `192.168.242.${m}:${otherPort}`,
      ]);
      await lab.addr(ns[self], d[self].ifname, `10.242.0.${n}/24`);
      await lab.exec(ns[self], 'ip', ['link', 'set', d[self].ifname, 'up']);
    };
    await conf('a', 'b', 51820, 51821, 1, 2);
    await conf('b', 'a', 51821, 51820, 2, 1);
  });
  after(() => lab.dispose());

  it('the UAPI socket is srwx------ owned by root', () => {
    for (const x of [d.a, d.b]) {
      const st = statSync(x.socketPath);
      assert.ok(st.isSocket());
      assert.equal(st.mode & 0o777, 0o700, `${x.socketPath} mode ${(st.mode & 0o777).toString(8)}`);
      assert.equal(st.uid, 0);
    }
  });

  it('no private or preshared key in any form in debug logs of a full session', async (t) => {
    await waitPing(lab, ns.a, '10.242.0.2', 10_000);
    const r = await tcpTransfer(lab, ns.a, ns.b, '10.242.0.2', { bytes: 256 << 10 });
    assert.equal(r.receivedSha256, r.sentSha256);
    // Configuration traffic that carries keys: get (the reply holds the private key in hex),
    // a PSK change, a private key change (new handshake), and a removed peer.
    await uapi(d.a.ifname, 'get=1\n\n');
    await wg(lab, ns.a, ['show', d.a.ifname, 'private-key']);
    await wg(lab, ns.a, [
      'set',
      d.a.ifname,
      'peer',
      keys.b.publicKey,
      'preshared-key',
      keyFile(lab, psk2),
    ]);
    await wg(lab, ns.b, [
      'set',
      d.b.ifname,
      'peer',
      keys.a.publicKey,
      'preshared-key',
      keyFile(lab, psk2),
    ]);
    await waitPing(lab, ns.a, '10.242.0.2', 10_000);
    await wg(lab, ns.a, ['set', d.a.ifname, 'private-key', keyFile(lab, keys.a2.privateKey)]);
    await wg(lab, ns.a, ['set', d.a.ifname, 'peer', keys.b.publicKey, 'remove']);
    // A malformed key line: the error message must not echo the value.
    await uapi(
      d.a.ifname,
      `set=1\nprivate_key=zz${Buffer.from(keys.a2.privateKey, 'base64').toString('hex')}\n\n`,
    );
    await new Promise((res) => setTimeout(res, 300));
    const logs = `${d.a.log()}\n${d.b.log()}`;
    if (process.env['WG_TS_SHOW_LOGS']) t.diagnostic(logs);
    t.diagnostic(`${logs.split('\n').length} log lines checked`);
    assert.match(logs, /handshake/i, 'the logs are real debug logs');
    const secrets = [keys.a.privateKey, keys.b.privateKey, keys.a2.privateKey, psk, psk2];
    for (const s of secrets) {
      for (const f of forms(s))
        assert.ok(!logs.includes(f), `a key appears in the logs (${f.length} chars)`);
    }
  });

  it('`wireguard-ts up` refuses a group/world-readable config file, with exit 2 and no link', async () => {
    const dir = lab.tmpdir();
    const file = join(dir, `${lab.name('k0')}.conf`);
    writeFileSync(file, `[Interface]\nPrivateKey = ${keys.a.privateKey}\n`, { mode: 0o644 });
    const r = await lab.tryExec(ns.a, join(process.cwd(), 'bin/wireguard-ts'), ['up', file]);
    await lab.tryExec(ns.a, join(process.cwd(), 'bin/wireguard-ts'), ['down', file]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /accessible to other users \(mode 0644\).*chmod 600/);
  });
});
