// UAPI `set`/`get` semantics on a Device (wireguard-go device/uapi.go): replace_peers, remove,
// update_only, replace_allowed_ips, `-` removal, own key ignored, keepalive 0 → N sends at once,
// a taken port answers EADDRINUSE, and stats.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Device, type DeviceOutput } from '../../src/tunnel/device.js';
import { DeviceConfig, type ConfigTarget } from '../../src/control/device-config.js';
import { parseSet, serializeGet } from '../../src/control/uapi.js';
import { generatePrivateKey, publicKey } from '../../src/noise/keys.js';
import { formatPrefix } from '../../src/tunnel/ip.js';
import { WgError } from '../../src/errors.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function target() {
  const device = new Device({
    randomBytes: (n) => new Uint8Array(randomBytes(n)),
    wallClockMs: () => Date.now(),
  });
  const sent: Uint8Array[] = [];
  const t: ConfigTarget & { taken: Set<number>; sent: Uint8Array[] } = {
    device,
    listenPort: 40000,
    taken: new Set([51999]),
    sent,
    setListenPort(port) {
      if (this.taken.has(port)) throw new WgError('ERR_IN_USE', `port ${port} in use`);
      (this as { listenPort: number }).listenPort = port === 0 ? 40001 : port;
    },
    setFwmark(mark) {
      device.fwmark = mark;
    },
    withOutput(fn) {
      const out: DeviceOutput = { send: (d) => sent.push(d), deliver() {} };
      fn(out, 1000);
    },
  };
  return { t, cfg: new DeviceConfig(t) };
}

function apply(cfg: DeviceConfig, text: string): number {
  const r = parseSet(text);
  assert.equal(r.error, null, r.error?.message);
  return cfg.set(r.ops);
}

const keys = Array.from({ length: 4 }, () => publicKey(generatePrivateKey()));

test('device keys, peers, allowed IPs, get', () => {
  const { t, cfg } = target();
  const priv = generatePrivateKey();
  assert.equal(
    apply(
      cfg,
      `private_key=${hex(priv)}\nlisten_port=51820\nfwmark=7\n` +
        `public_key=${hex(keys[0]!)}\nendpoint=192.0.2.1:1\nallowed_ip=10.0.0.0/24\nallowed_ip=fd00::/64\n` +
        `public_key=${hex(keys[1]!)}\nallowed_ip=10.1.0.0/16\n`,
    ),
    0,
  );
  const info = cfg.get();
  assert.equal(info.listenPort, 51820);
  assert.equal(info.fwmark, 7);
  assert.equal(info.peers.length, 2);
  assert.deepEqual(info.peers[0]!.allowedIps.map(formatPrefix), ['10.0.0.0/24', 'fd00::/64']);
  assert.equal(info.peers[0]!.endpoint?.port, 1);
  assert.match(serializeGet(info), /protocol_version=1/);
  assert.equal(t.device.peers.size, 2);
});

test('replace_allowed_ips, `-` removal, a prefix moves between peers', () => {
  const { cfg } = target();
  apply(cfg, `public_key=${hex(keys[0]!)}\nallowed_ip=10.0.0.0/24\nallowed_ip=10.9.0.0/16\n`);
  apply(cfg, `public_key=${hex(keys[1]!)}\nallowed_ip=10.9.0.0/16\n`);
  let info = cfg.get();
  assert.deepEqual(info.peers[0]!.allowedIps.map(formatPrefix), ['10.0.0.0/24']);
  apply(cfg, `public_key=${hex(keys[0]!)}\nallowed_ip=-10.0.0.0/24\nallowed_ip=10.2.0.0/16\n`);
  apply(cfg, `public_key=${hex(keys[1]!)}\nreplace_allowed_ips=true\nallowed_ip=10.3.0.0/16\n`);
  info = cfg.get();
  assert.deepEqual(info.peers[0]!.allowedIps.map(formatPrefix), ['10.2.0.0/16']);
  assert.deepEqual(info.peers[1]!.allowedIps.map(formatPrefix), ['10.3.0.0/16']);
});

test('`-PREFIX` removes only what this peer holds, exactly, and is no error otherwise', () => {
  const { cfg } = target();
  apply(cfg, `public_key=${hex(keys[0]!)}\nallowed_ip=10.0.0.3/32\nallowed_ip=fd00::/64\n`);
  apply(cfg, `public_key=${hex(keys[1]!)}\nallowed_ip=10.0.0.0/24\n`);
  const list = (i: number) => cfg.get().peers[i]!.allowedIps.map(formatPrefix);
  // Another peer's prefix, a prefix nobody holds, a covering but not equal prefix: all no-ops.
  const noop = '-10.0.0.3/32\nallowed_ip=-172.16.0.0/12\nallowed_ip=-10.0.0.0/16';
  assert.equal(apply(cfg, `public_key=${hex(keys[1]!)}\nallowed_ip=${noop}\n`), 0);
  assert.deepEqual(list(0), ['10.0.0.3/32', 'fd00::/64']);
  assert.deepEqual(list(1), ['10.0.0.0/24']);
  // Host bits are masked, as netip.ParsePrefix + the trie do in wireguard-go.
  assert.equal(apply(cfg, `public_key=${hex(keys[0]!)}\nallowed_ip=-fd00::9/64\n`), 0);
  assert.deepEqual(list(0), ['10.0.0.3/32']);
  // In a dummy section (update_only of an unknown peer) it does nothing.
  apply(cfg, `public_key=${hex(keys[2]!)}\nupdate_only=true\nallowed_ip=-10.0.0.3/32\n`);
  assert.deepEqual(list(0), ['10.0.0.3/32']);
  // Removed, then added again: last in the list.
  apply(cfg, `public_key=${hex(keys[1]!)}\nallowed_ip=10.2.0.0/16\nallowed_ip=-10.0.0.0/24\n`);
  apply(cfg, `public_key=${hex(keys[1]!)}\nallowed_ip=10.0.0.0/24\n`);
  assert.deepEqual(list(1), ['10.2.0.0/16', '10.0.0.0/24']);
  // A bad prefix after `-` is refused like any bad allowed_ip.
  assert.notEqual(parseSet(`public_key=${hex(keys[0]!)}\nallowed_ip=--10.0.0.3/32\n`).error, null);
  assert.notEqual(parseSet(`public_key=${hex(keys[0]!)}\nallowed_ip=-\n`).error, null);
});

test('remove, update_only, replace_peers, our own key ignored', () => {
  const { t, cfg } = target();
  const priv = generatePrivateKey();
  apply(
    cfg,
    `private_key=${hex(priv)}\npublic_key=${hex(keys[0]!)}\npublic_key=${hex(keys[1]!)}\n`,
  );
  // update_only does not create, but does update an existing peer.
  apply(cfg, `public_key=${hex(keys[2]!)}\nupdate_only=true\nallowed_ip=10.5.0.0/16\n`);
  apply(cfg, `public_key=${hex(keys[0]!)}\nupdate_only=true\nallowed_ip=10.6.0.0/16\n`);
  assert.equal(t.device.peers.size, 2);
  assert.deepEqual(cfg.get().peers[0]!.allowedIps.map(formatPrefix), ['10.6.0.0/16']);
  // remove: the rest of its section is ignored.
  apply(cfg, `public_key=${hex(keys[1]!)}\nremove=true\nallowed_ip=10.7.0.0/16\n`);
  assert.equal(t.device.peers.size, 1);
  assert.equal(t.device.allowedIps.size, 1);
  // Our own public key as a peer: ignored.
  apply(cfg, `public_key=${hex(publicKey(priv))}\nallowed_ip=10.8.0.0/16\n`);
  assert.equal(t.device.peers.size, 1);
  apply(cfg, `replace_peers=true\npublic_key=${hex(keys[3]!)}\n`);
  assert.deepEqual(
    [...t.device.peers.values()].map((p) => hex(p.publicKey)),
    [hex(keys[3]!)],
  );
  assert.equal(t.device.allowedIps.size, 0);
});

test('persistent keepalive 0 → N sends one keepalive; N → M does not', () => {
  const { t, cfg } = target();
  apply(cfg, `private_key=${hex(generatePrivateKey())}\n`);
  apply(
    cfg,
    `public_key=${hex(keys[0]!)}\nendpoint=192.0.2.1:1\npersistent_keepalive_interval=25\n`,
  );
  // No session yet: the keepalive is staged behind a handshake initiation.
  assert.equal(t.sent.length, 1);
  assert.equal(t.sent[0]![0], 1);
  apply(cfg, `public_key=${hex(keys[0]!)}\npersistent_keepalive_interval=30\n`);
  assert.equal(t.sent.length, 1);
  assert.equal(cfg.get().peers[0]!.persistentKeepalive, 30);
});

test('a taken listen port answers EADDRINUSE and earlier lines stay applied', () => {
  const { t, cfg } = target();
  const r = parseSet(`fwmark=9\nlisten_port=51999\n`);
  assert.equal(cfg.set(r.ops), 98);
  assert.equal(t.device.fwmark, 9);
  assert.equal(cfg.get().listenPort, 40000);
});

test('stats lists every drop reason and the gauges', () => {
  const { t, cfg } = target();
  t.device.receiveDatagram(new Uint8Array(3), { family: 4, address: '192.0.2.9', port: 1 }, 0, {
    send() {},
    deliver() {},
  });
  const stats = new Map(cfg.stats());
  assert.equal(stats.get('drop_short_packet'), 1);
  assert.equal(stats.get('drop_bad_mac1'), 0);
  assert.equal(stats.get('peers'), 0);
});
