// Mesh planning and the routing it implies: peers, families, keyless and refused nodes, strict
// mode, host encryption and its control-plane exemptions. Pure functions, no root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatPrefix } from '../../src/tunnel/ip.js';
import type { KubeNode } from '../../src/control/k8s/kube-types.js';
import {
  ANNOTATION_PORT,
  ANNOTATION_PUBLIC_KEY,
  isValidPublicKey,
  planMesh,
} from '../../src/control/k8s/mesh-plan.js';
import { desiredExemptRules, desiredRoutes } from '../../src/control/k8s/routing.js';
import { key, routingConfig } from './k8s-fixtures.js';

function node(
  name: string,
  ips: string[],
  cidrs: string[],
  k?: string,
  extra: { port?: string; labels?: Record<string, string>; created?: string } = {},
): KubeNode {
  const annotations: Record<string, string> = {};
  if (k) annotations[ANNOTATION_PUBLIC_KEY] = k;
  if (extra.port) annotations[ANNOTATION_PORT] = extra.port;
  return {
    metadata: {
      name,
      annotations,
      labels: extra.labels ?? {},
      ...(extra.created ? { creationTimestamp: extra.created } : {}),
    },
    spec: { podCIDRs: cidrs },
    status: {
      addresses: [
        ...ips.map((address) => ({ type: 'InternalIP', address })),
        { type: 'Hostname', address: name },
      ],
    },
  };
}

const cfg = routingConfig({
  exemptPorts: [
    { from: 6443, to: 6443 },
    { from: 2379, to: 2380 },
  ],
});

test('every other node with a key becomes a peer at its InternalIP and published port', () => {
  const plan = planMesh(
    [
      node('a', ['10.0.0.1'], ['10.244.1.0/24'], key(1)),
      node('b', ['10.0.0.2'], ['10.244.2.0/24', 'fd00:2::/64'], key(2), { port: '51999' }),
      node('c', ['10.0.0.3'], ['10.244.3.0/24']),
    ],
    { selfName: 'a', selfPublicKey: key(1), hostEncryption: false },
  );
  assert.equal(plan.peers.length, 1);
  const b = plan.peers[0]!;
  assert.equal(b.nodeName, 'b');
  assert.deepEqual(b.endpoint, { family: 4, address: '10.0.0.2', port: 51999 });
  assert.deepEqual(b.allowedIps.map(formatPrefix), ['10.244.2.0/24', 'fd00:2::/64']);
  assert.deepEqual(
    plan.keyless.map((n) => n.nodeName),
    ['c'],
  );
  assert.equal(plan.self?.metadata.name, 'a');
});

test('the endpoint family follows our own InternalIP', () => {
  const plan = planMesh(
    [
      node('a', ['fd00::1'], ['10.244.1.0/24'], key(1)),
      node('b', ['10.0.0.2', 'fd00::2'], ['10.244.2.0/24'], key(2)),
    ],
    { selfName: 'a', selfPublicKey: key(1), hostEncryption: false },
  );
  assert.deepEqual(plan.peers[0]!.endpoint, { family: 6, address: 'fd00::2', port: 51820 });
  const v4only = planMesh(
    [node('a', ['fd00::1'], [], key(1)), node('b', ['10.0.0.2'], ['10.244.2.0/24'], key(2))],
    { selfName: 'a', selfPublicKey: key(1), hostEncryption: false },
  );
  assert.equal(v4only.peers.length, 0);
  assert.equal(v4only.refused[0]!.reason, 'no_endpoint');
});

test('host encryption adds node IPs to the allowed IPs', () => {
  const plan = planMesh(
    [node('a', ['10.0.0.1'], [], key(1)), node('b', ['10.0.0.2'], ['10.244.2.0/24'], key(2))],
    {
      selfName: 'a',
      selfPublicKey: key(1),
      hostEncryption: true,
    },
  );
  assert.deepEqual(plan.peers[0]!.allowedIps.map(formatPrefix), ['10.244.2.0/24', '10.0.0.2/32']);
});

test('a duplicated key stays with the older node; a node claiming our key is refused', () => {
  const plan = planMesh(
    [
      node('a', ['10.0.0.1'], [], key(1)),
      node('b', ['10.0.0.2'], ['10.244.2.0/24'], key(2)),
      node('c', ['10.0.0.3'], ['10.244.3.0/24'], key(2)),
      node('d', ['10.0.0.4'], ['10.244.4.0/24'], key(1)),
      node('e', ['10.0.0.5'], ['10.244.5.0/24'], key(5)),
      node('f', ['10.0.0.6'], ['10.244.6.0/24'], 'not-a-key'),
      node('g', ['10.0.0.7'], ['10.244.7.0/24'], key(7), { port: '70000' }),
    ],
    { selfName: 'a', selfPublicKey: key(1), hostEncryption: false },
  );
  // No creationTimestamps: the name decides the order, so b (older by name) keeps key 2.
  assert.deepEqual(
    plan.peers.map((p) => p.nodeName),
    ['b', 'e'],
  );
  assert.deepEqual(plan.refused.map((r) => `${r.nodeName}:${r.reason}`).sort(), [
    'c:duplicate_key',
    'd:duplicate_key',
    'f:invalid_key',
    'g:invalid_port',
  ]);
  assert.deepEqual(plan.keyless.map((n) => n.nodeName).sort(), ['c', 'd', 'f', 'g']);
});

test('isValidPublicKey accepts only base64 of 32 non-zero bytes', () => {
  assert.equal(isValidPublicKey(key(9)), true);
  assert.equal(isValidPublicKey(key(0)), false);
  assert.equal(isValidPublicKey(Buffer.alloc(31, 1).toString('base64')), false);
  assert.equal(isValidPublicKey(`${key(9)} `), false);
});

test('routes: remote pod CIDRs via the device, own CIDRs thrown, keyless only under --strict', () => {
  const nodes = [
    node('a', ['10.0.0.1'], ['10.244.1.0/24'], key(1)),
    node('b', ['10.0.0.2'], ['10.244.2.0/24'], key(2)),
    node('c', ['10.0.0.3'], ['10.244.3.0/24']),
  ];
  const plan = planMesh(nodes, { selfName: 'a', selfPublicKey: key(1), hostEncryption: false });
  const show = (rs: ReturnType<typeof desiredRoutes>) =>
    rs.map((r) => `${r.type} ${r.dst}${r.src ? ` src ${r.src}` : ''}`).sort();
  assert.deepEqual(show(desiredRoutes(plan, cfg)), [
    'throw 10.244.1.0/24',
    'unicast 10.244.2.0/24',
  ]);
  assert.deepEqual(show(desiredRoutes(plan, { ...cfg, strict: true })), [
    'throw 10.244.1.0/24',
    'unicast 10.244.2.0/24',
    'unreachable 10.244.3.0/24',
  ]);
  const hplan = planMesh(nodes, { selfName: 'a', selfPublicKey: key(1), hostEncryption: true });
  assert.deepEqual(show(desiredRoutes(hplan, { ...cfg, hostEncryption: true })), [
    'throw 10.244.1.0/24',
    'unicast 10.0.0.2/32 src 10.0.0.1',
    'unicast 10.244.2.0/24',
  ]);
});

test('a remote node claiming our pod CIDR cannot capture local pods', () => {
  const plan = planMesh(
    [
      node('a', ['10.0.0.1'], ['10.244.1.0/24'], key(1)),
      node('b', ['10.0.0.2'], ['10.244.1.0/24'], key(2)),
    ],
    { selfName: 'a', selfPublicKey: key(1), hostEncryption: false },
  );
  assert.deepEqual(
    desiredRoutes(plan, cfg).map((r) => `${r.type} ${r.dst}`),
    ['throw 10.244.1.0/24'],
  );
});

test('exemptions: API server and etcd ports toward control-plane nodes, and replies from ours', () => {
  const cp = { labels: { 'node-role.kubernetes.io/control-plane': '' } };
  const nodes = [
    node('w', ['10.0.0.1'], [], key(1)),
    node('cp', ['10.0.0.9'], [], key(9), cp),
    node('x', ['10.0.0.3'], [], key(3)),
  ];
  const worker = planMesh(nodes, { selfName: 'w', selfPublicKey: key(1), hostEncryption: true });
  assert.deepEqual(desiredExemptRules(worker, cfg), []); // host encryption off: nothing to exempt
  const h = { ...cfg, hostEncryption: true };
  assert.deepEqual(desiredExemptRules(worker, h), [
    'from all to 10.0.0.9 ipproto tcp dport 6443',
    'from all to 10.0.0.9 ipproto tcp dport 2379-2380',
  ]);
  const master = planMesh(nodes, { selfName: 'cp', selfPublicKey: key(9), hostEncryption: true });
  assert.deepEqual(desiredExemptRules(master, h), [
    'from 10.0.0.9 ipproto tcp sport 6443',
    'from 10.0.0.9 ipproto tcp sport 2379-2380',
  ]);
});
