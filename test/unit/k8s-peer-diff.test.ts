// The UAPI operations the agent sends: only what differs, removal only once synced, and the
// kernel backend's translation of the same operations into `wg set` / `wg show dump`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseEndpoint, parsePrefix } from '../../src/tunnel/ip.js';
import { newPeerInfo, serializeSet, type UapiDeviceInfo } from '../../src/control/uapi.js';
import { diffDevice, type DesiredDevice } from '../../src/control/k8s/peer-diff.js';
import { parseWgDump, wgSetArgs } from '../../src/control/k8s/backend.js';

const k = (n: number) => new Uint8Array(32).fill(n);
const peerInfo = (n: number, ep: string, ips: string[]) => ({
  ...newPeerInfo(k(n)),
  endpoint: parseEndpoint(ep),
  allowedIps: ips.map(parsePrefix),
});

const want: DesiredDevice = {
  privateKey: k(1),
  listenPort: 51820,
  fwmark: 0x80000,
  peers: [
    {
      publicKey: k(2),
      endpoint: parseEndpoint('10.0.0.2:51820'),
      allowedIps: [parsePrefix('10.244.2.0/24')],
    },
    {
      publicKey: k(3),
      endpoint: parseEndpoint('10.0.0.3:51820'),
      allowedIps: [parsePrefix('10.244.3.0/24')],
    },
  ],
};

test('an empty device gets key, port, fwmark and every peer', () => {
  const empty: UapiDeviceInfo = { privateKey: null, listenPort: 0, fwmark: 0, peers: [] };
  const d = diffDevice(empty, want, { removeUnknown: true });
  assert.equal(d.added, 2);
  const text = serializeSet(d.ops);
  assert.match(text, /private_key=0101/);
  assert.match(text, /listen_port=51820\n/);
  assert.match(text, /fwmark=524288\n/);
  assert.match(
    text,
    /endpoint=10\.0\.0\.3:51820\nreplace_allowed_ips=true\nallowed_ip=10\.244\.3\.0\/24\n/,
  );
});

test('a device already in the wanted state gets no operations (sessions untouched)', () => {
  const have: UapiDeviceInfo = {
    privateKey: k(1),
    listenPort: 51820,
    fwmark: 0x80000,
    peers: [
      peerInfo(3, '10.0.0.3:51820', ['10.244.3.0/24']),
      peerInfo(2, '10.0.0.2:51820', ['10.244.2.0/24']),
    ],
  };
  assert.deepEqual(diffDevice(have, want, { removeUnknown: true }).ops, []);
});

test('changed endpoint and allowed IPs are updated; unknown peers removed only once synced', () => {
  const have: UapiDeviceInfo = {
    privateKey: k(1),
    listenPort: 51820,
    fwmark: 0x80000,
    peers: [
      peerInfo(2, '10.0.0.99:51820', ['10.244.2.0/24']),
      peerInfo(3, '10.0.0.3:51820', ['10.244.9.0/24']),
      peerInfo(4, '10.0.0.4:51820', []),
    ],
  };
  const before = diffDevice(have, want, { removeUnknown: false });
  assert.equal(before.removed, 0);
  assert.equal(before.updated, 2);
  const text = serializeSet(before.ops);
  assert.doesNotMatch(text, /remove=true/);
  // Peer 2: endpoint only; peer 3: allowed IPs only.
  assert.match(text, /public_key=0202[0-9a-f]+\nendpoint=10\.0\.0\.2:51820\npublic_key=0303/);
  assert.match(
    text,
    /public_key=0303[0-9a-f]+\nreplace_allowed_ips=true\nallowed_ip=10\.244\.3\.0\/24\n/,
  );
  const after = diffDevice(have, want, { removeUnknown: true });
  assert.equal(after.removed, 1);
  assert.match(serializeSet(after.ops), /public_key=0404[0-9a-f]+\nremove=true\n/);
});

test('kernel backend: operations become one wg set command, the private key on stdin', () => {
  const empty: UapiDeviceInfo = {
    privateKey: null,
    listenPort: 0,
    fwmark: 0,
    peers: [peerInfo(9, '10.0.0.9:1', [])],
  };
  const { ops } = diffDevice(empty, want, { removeUnknown: true });
  const { args, input } = wgSetArgs('wg0', ops);
  const b = (n: number) => Buffer.from(k(n)).toString('base64');
  assert.deepEqual(args, [
    'set',
    'wg0',
    'private-key',
    '/dev/stdin',
    'listen-port',
    '51820',
    'fwmark',
    '524288',
    'peer',
    b(2),
    'endpoint',
    '10.0.0.2:51820',
    'allowed-ips',
    '10.244.2.0/24',
    'peer',
    b(3),
    'endpoint',
    '10.0.0.3:51820',
    'allowed-ips',
    '10.244.3.0/24',
    'peer',
    b(9),
    'remove',
  ]);
  assert.equal(input, b(1));
  assert.equal(args.join(' ').includes(b(1)), false, 'the private key never appears in argv');
});

test('kernel backend: wg show dump parses into the UAPI shape', () => {
  const b = (n: number) => Buffer.from(k(n)).toString('base64');
  const dump = `${b(1)}\t${b(11)}\t51820\t0x80000\n${b(2)}\t(none)\t10.0.0.2:51820\t10.244.2.0/24,10.0.0.2/32\t1700000000\t100\t200\toff\n${b(3)}\t(none)\t(none)\t(none)\t0\t0\t0\t25\n`;
  const d = parseWgDump(dump);
  assert.equal(d.listenPort, 51820);
  assert.equal(d.fwmark, 0x80000);
  assert.equal(d.peers.length, 2);
  assert.deepEqual(d.peers[0]!.endpoint, parseEndpoint('10.0.0.2:51820'));
  assert.equal(d.peers[0]!.allowedIps.length, 2);
  assert.equal(d.peers[0]!.rxBytes, 100);
  assert.equal(d.peers[0]!.txBytes, 200);
  assert.equal(d.peers[0]!.lastHandshakeMs, 1700000000000);
  assert.equal(d.peers[1]!.endpoint, null);
  assert.equal(d.peers[1]!.persistentKeepalive, 25);
});
