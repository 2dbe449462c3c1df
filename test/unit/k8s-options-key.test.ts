// Agent flags and the persistent node key (0600 file in a 0700 directory, reused, `wg`-compatible).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WgError } from '../../src/errors.js';
import { parseAgentOptions } from '../../src/control/k8s/options.js';
import { loadOrCreateNodeKey } from '../../src/control/k8s/node-key.js';

const dir = mkdtempSync(join(tmpdir(), 'wgtk-key-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('defaults follow the issue', () => {
  const o = parseAgentOptions([], { NODE_NAME: 'n1' });
  assert.equal(o.nodeName, 'n1');
  assert.equal(o.interface, 'wg-ts');
  assert.equal(o.port, 51820);
  assert.equal(o.keyFile, '/var/lib/wireguard-ts/private.key');
  assert.equal(o.metricsAddr, ':9586');
  assert.equal(o.mtu, 'auto');
  assert.equal(o.hostEncryption, false);
  assert.equal(o.strict, false);
  assert.equal(o.backend, 'auto');
  assert.deepEqual(o.exemptPorts, [
    { from: 6443, to: 6443 },
    { from: 2379, to: 2380 },
  ]);
  assert.equal(o.kubeconfig, undefined);
});

test('flags override defaults', () => {
  const o = parseAgentOptions(
    [
      '--node-name',
      'x',
      '--interface',
      'wg9',
      '--port',
      '51999',
      '--mtu',
      '1400',
      '--host-encryption',
      '--strict',
      '--exempt-ports',
      '443,10000-10010',
      '--backend',
      'userspace',
      '--fwmark',
      '0x40000',
      '--relist-silence',
      '3',
    ],
    {},
  );
  assert.equal(o.nodeName, 'x');
  assert.equal(o.mtu, 1400);
  assert.equal(o.fwmark, 0x40000);
  assert.equal(o.silenceMs, 3000);
  assert.deepEqual(o.exemptPorts, [
    { from: 443, to: 443 },
    { from: 10000, to: 10010 },
  ]);
});

test('bad values are refused naming the flag', () => {
  const bad = (argv: string[], field: string) =>
    assert.throws(
      () => parseAgentOptions(argv, { NODE_NAME: 'n' }),
      (e: unknown) => e instanceof WgError && e.message.includes(field),
    );
  bad(['--port', '70000'], '--port');
  bad(['--mtu', 'big'], '--mtu');
  bad(['--backend', 'ebpf'], '--backend');
  bad(['--interface', 'a-name-far-too-long'], '--interface');
  bad(['--exempt-ports', '10-5'], '--exempt-ports');
  bad(['--bogus'], 'bogus');
  assert.throws(() => parseAgentOptions([], {}), /--node-name/);
});

test('the key is generated once, 0600 in a 0700 directory, and reused', () => {
  const file = join(dir, 'state', 'private.key');
  const a = loadOrCreateNodeKey(file);
  assert.equal(a.generated, true);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(statSync(join(dir, 'state')).mode & 0o777, 0o700);
  const b = loadOrCreateNodeKey(file);
  assert.equal(b.generated, false);
  assert.equal(b.publicKeyBase64, a.publicKeyBase64);
  assert.deepEqual(b.privateKey, a.privateKey);
});

test('the key file is wg genkey form, and our public key matches wg pubkey', (t) => {
  const file = join(dir, 'k2');
  const k = loadOrCreateNodeKey(file);
  const text = readFileSync(file, 'utf8');
  assert.match(text, /^[A-Za-z0-9+/]{43}=\n$/);
  // The key is clamped as `wg genkey` clamps (it comes from the shared X25519 helpers).
  assert.equal(k.privateKey[0]! & 7, 0);
  assert.equal(k.privateKey[31]! & 0x80, 0);
  assert.equal(k.privateKey[31]! & 0x40, 0x40);
  let wgPub: string;
  try {
    wgPub = execFileSync('wg', ['pubkey'], { input: text }).toString().trim();
  } catch (err) {
    // Only a missing wg skips: a wg that refuses our key file is a failure.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      t.skip('wg not installed');
      return;
    }
    throw err;
  }
  assert.equal(k.publicKeyBase64, wgPub);
});

test('a corrupt key file is refused, never silently replaced', () => {
  const file = join(dir, 'bad.key');
  writeFileSync(file, 'garbage\n');
  assert.throws(() => loadOrCreateNodeKey(file), /not a base64 WireGuard private key/);
  assert.equal(readFileSync(file, 'utf8'), 'garbage\n');
});

test('a key file other users can read is refused, and kept as it is', () => {
  const file = join(dir, 'open.key');
  const key = `${Buffer.alloc(32, 7).toString('base64')}\n`;
  writeFileSync(file, key, { mode: 0o644 });
  chmodSync(file, 0o644);
  assert.throws(() => loadOrCreateNodeKey(file), /accessible to other users \(mode 0644\)/);
  assert.equal(readFileSync(file, 'utf8'), key);
  chmodSync(file, 0o600);
  assert.equal(loadOrCreateNodeKey(file).generated, false);
});
