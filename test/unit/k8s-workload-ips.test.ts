// --route-source workload-ips: pods grouped by node into /32 and /128 allowed IPs, the newer pod
// winning an address two nodes list, host-network and finished pods ignored, local pods out of
// the table, and churn reaching the device as one line per address. Pure functions, no root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatPrefix, parseEndpoint, parsePrefix } from '../../src/tunnel/ip.js';
import { serializeSet, type UapiDeviceInfo } from '../../src/control/uapi.js';
import type { KubeNode, KubePod } from '../../src/control/k8s/kube-types.js';
import {
  ANNOTATION_PUBLIC_KEY,
  planMesh,
  podPrefixesByNode,
} from '../../src/control/k8s/mesh-plan.js';
import { podKept } from '../../src/control/k8s/node-informer.js';
import { PodIndex } from '../../src/control/k8s/pod-index.js';
import { diffDevice, type DesiredDevice } from '../../src/control/k8s/peer-diff.js';
import { desiredRoutes } from '../../src/control/k8s/routing.js';
import { key, routingConfig } from './k8s-fixtures.js';

const cfg = routingConfig();

function node(name: string, ip: string, k?: string): KubeNode {
  return {
    metadata: { name, annotations: k ? { [ANNOTATION_PUBLIC_KEY]: k } : {} },
    // Pod CIDRs a workload-ips cluster does not use: they must not be routed.
    spec: { podCIDRs: [`10.99.${ip.split('.')[3]}.0/24`] },
    status: { addresses: [{ type: 'InternalIP', address: ip }] },
  };
}

let seq = 0;
function pod(
  nodeName: string,
  ips: string[],
  o: { created?: string; hostNetwork?: boolean; phase?: string } = {},
): KubePod {
  return {
    metadata: {
      name: `p${++seq}`,
      namespace: 'default',
      creationTimestamp: o.created ?? '2026-01-01T00:00:00Z',
    },
    spec: { nodeName, ...(o.hostNetwork ? { hostNetwork: true } : {}) },
    status: { phase: o.phase ?? 'Running', podIPs: ips.map((ip) => ({ ip })) },
  };
}

const nodes = [node('a', '10.0.0.1', key(1)), node('b', '10.0.0.2', key(2)), node('c', '10.0.0.3')];
const plan = (pods: KubePod[], hostEncryption = false) =>
  planMesh(nodes, {
    selfName: 'a',
    selfPublicKey: key(1),
    hostEncryption,
    routeSource: 'workload-ips',
    pods,
  });
const show = (rs: ReturnType<typeof desiredRoutes>) => rs.map((r) => `${r.type} ${r.dst}`).sort();

test('each peer gets its pods as /32 and /128; local pods and pod CIDRs stay out', () => {
  const p = plan([
    pod('a', ['10.1.0.5', 'fd00::5']),
    pod('b', ['10.1.0.7', 'fd00::7']),
    pod('b', ['10.1.3.9']),
    pod('c', ['10.1.0.8']),
    pod('b', ['10.0.0.2'], { hostNetwork: true }),
  ]);
  assert.deepEqual(
    p.peers.map((x) => `${x.nodeName} ${x.allowedIps.map(formatPrefix).sort().join(',')}`),
    ['b 10.1.0.7/32,10.1.3.9/32,fd00::7/128'],
  );
  assert.deepEqual(show(desiredRoutes(p, cfg)), [
    'unicast 10.1.0.7/32',
    'unicast 10.1.3.9/32',
    'unicast fd00::7/128',
  ]);
  assert.deepEqual(show(desiredRoutes(p, { ...cfg, strict: true })), [
    'unicast 10.1.0.7/32',
    'unicast 10.1.3.9/32',
    'unicast fd00::7/128',
    'unreachable 10.1.0.8/32',
  ]);
  // With host encryption the node IP is an allowed IP too (host-network pods use it).
  const h = plan([pod('b', ['10.1.0.7'])], true);
  assert.deepEqual(h.peers[0]!.allowedIps.map(formatPrefix), ['10.1.0.7/32', '10.0.0.2/32']);
});

test('an address two nodes list goes to the node of the newer pod', () => {
  const old = pod('b', ['10.1.0.50'], { created: '2026-01-01T00:00:00Z' });
  const young = pod('c', ['10.1.0.50'], { created: '2026-01-01T00:05:00Z' });
  const nodesKeyed = [nodes[0]!, nodes[1]!, node('c', '10.0.0.3', key(3))];
  for (const order of [
    [old, young],
    [young, old],
  ]) {
    const byNode = podPrefixesByNode(order);
    assert.deepEqual(byNode.get('c')?.map(formatPrefix), ['10.1.0.50/32']);
    assert.equal(byNode.get('b'), undefined);
    const p = planMesh(nodesKeyed, {
      selfName: 'a',
      selfPublicKey: key(1),
      hostEncryption: false,
      routeSource: 'workload-ips',
      pods: order,
    });
    // Neither node is refused for it: a reschedule race is not an attack.
    assert.deepEqual(p.refused, []);
  }
  // Moving to us: the address leaves the remote peer and is not routed at all.
  const mine = pod('a', ['10.1.0.50'], { created: '2026-01-01T00:06:00Z' });
  const p = plan([old, mine]);
  assert.deepEqual(p.peers[0]!.allowedIps, []);
  assert.deepEqual(show(desiredRoutes(p, cfg)), []);
});

test('a pod address on our node IP or a peer node IP refuses that node', () => {
  const p = plan([pod('b', ['10.0.0.1'])]);
  assert.deepEqual(
    p.refused.map((r) => `${r.nodeName}:${r.reason}`),
    ['b:overlaps_own'],
  );
  assert.deepEqual(desiredRoutes(p, { ...cfg, strict: true }), []);
});

test('host-network and finished pods are left out of the cache', () => {
  assert.equal(podKept(pod('b', ['10.0.0.2'], { hostNetwork: true })), false);
  assert.equal(podKept(pod('b', ['10.1.0.1'], { phase: 'Succeeded' })), false);
  assert.equal(podKept(pod('b', ['10.1.0.1'], { phase: 'Failed' })), false);
  assert.equal(podKept(pod('b', ['10.1.0.1'], { phase: 'Pending' })), true);
});

const k = (n: number) => new Uint8Array(32).fill(n);
function device(peers: Array<[number, string[]]>): UapiDeviceInfo {
  return {
    privateKey: k(1),
    listenPort: 51820,
    fwmark: 0x80000,
    peers: peers.map(([n, ips]) => ({
      publicKey: k(n),
      presharedKey: null,
      endpoint: parseEndpoint(`10.0.0.${n}:51820`),
      lastHandshakeMs: 0,
      txBytes: 0,
      rxBytes: 0,
      persistentKeepalive: 0,
      allowedIps: ips.map(parsePrefix),
      protocolVersion: 1,
    })),
  };
}
function desired(peers: Array<[number, string[]]>): DesiredDevice {
  return {
    privateKey: k(1),
    listenPort: 51820,
    fwmark: 0x80000,
    peers: peers.map(([n, ips]) => ({
      publicKey: k(n),
      endpoint: parseEndpoint(`10.0.0.${n}:51820`),
      allowedIps: ips.map(parsePrefix),
    })),
  };
}
const body = (text: string) =>
  text.split('\n').filter((l) => l && l !== 'set=1' && !l.startsWith('public_key='));

test('one pod started or deleted is one allowed_ip line, whatever the peer holds', () => {
  // 110 pods on the peer: a real node's worth.
  const many = Array.from({ length: 110 }, (_, i) => `10.2.${i >> 6}.${(i & 63) + 1}/32`);
  const have = device([
    [2, many],
    [3, ['10.3.0.1/32']],
  ]);
  const started = diffDevice(
    have,
    desired([
      [2, [...many, '10.2.9.9/32']],
      [3, ['10.3.0.1/32']],
    ]),
    {
      removeUnknown: true,
      allowedIpUpdates: 'append-remove',
    },
  );
  assert.deepEqual(body(serializeSet(started.ops)), ['allowed_ip=10.2.9.9/32']);
  const deleted = diffDevice(
    have,
    desired([
      [2, many.slice(1)],
      [3, ['10.3.0.1/32']],
    ]),
    {
      removeUnknown: true,
      allowedIpUpdates: 'append-remove',
    },
  );
  assert.deepEqual(body(serializeSet(deleted.ops)), ['allowed_ip=-10.2.0.1/32']);
  // Without removal lines (wireguard-go before 2025): that peer alone gets its list again.
  const fallback = diffDevice(
    have,
    desired([
      [2, many.slice(1)],
      [3, ['10.3.0.1/32', '10.3.0.2/32']],
    ]),
    {
      removeUnknown: true,
      allowedIpUpdates: 'append',
    },
  );
  const lines = body(serializeSet(fallback.ops));
  assert.equal(lines.filter((l) => l === 'replace_allowed_ips=true').length, 1);
  assert.equal(lines.filter((l) => l.startsWith('allowed_ip=')).length, 109 + 1);
  assert.ok(lines.includes('allowed_ip=10.3.0.2/32'));
});

test('an address moving between peers leaves the old one first, in the same transaction', () => {
  const have = device([
    [2, ['10.1.0.50/32', '10.1.0.2/32']],
    [3, ['10.1.0.3/32']],
  ]);
  const d = diffDevice(
    have,
    desired([
      [2, ['10.1.0.2/32']],
      [3, ['10.1.0.3/32', '10.1.0.50/32']],
    ]),
    {
      removeUnknown: true,
      allowedIpUpdates: 'append-remove',
    },
  );
  const text = serializeSet(d.ops);
  const rm = text.indexOf('allowed_ip=-10.1.0.50/32');
  const add = text.indexOf('allowed_ip=10.1.0.50/32');
  assert.ok(rm >= 0 && add > rm, text);
});

test('pod index: deleting the newer pod gives the address back to the older one', () => {
  const index = new PodIndex();
  const nodesOf = () =>
    [...index.byNode()].map(([n, m]) => `${n}:${[...m.keys()].join(',')}`).sort();
  const old = pod('b', ['10.1.0.60'], { created: '2026-01-01T00:00:00Z' });
  const young = pod('c', ['10.1.0.60', 'fd00::60'], { created: '2026-01-01T00:01:00Z' });
  index.upsert('ns/old', old);
  index.upsert('ns/young', young);
  assert.deepEqual(nodesOf(), ['c:10.1.0.60,fd00::60']);
  const v = index.version;
  index.upsert('ns/young', young); // an unchanged update moves nothing
  assert.equal(index.version, v);
  index.delete('ns/young');
  assert.deepEqual(nodesOf(), ['b:10.1.0.60']);
  // A pod losing its address (status rewritten) leaves its node's list.
  index.upsert('ns/old', { ...old, status: { phase: 'Running', podIPs: [] } });
  assert.deepEqual(nodesOf(), []);
});
