// Trust rules of the mesh planner: what one Node publishes (pod CIDRs, pod IPs, node IPs, a
// public key) must not capture another's traffic nor push it back to plaintext. Pure functions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatPrefix, parsePrefix } from '../../src/tunnel/ip.js';
import type { KubeNode } from '../../src/control/k8s/kube-types.js';
import { ANNOTATION_PUBLIC_KEY, planMesh, type MeshPlan } from '../../src/control/k8s/mesh-plan.js';
import { PrefixClaims } from '../../src/control/k8s/prefix-claims.js';
import { desiredRoutes } from '../../src/control/k8s/routing.js';
import { key, routingConfig } from './k8s-fixtures.js';

const cfg = routingConfig();

function node(name: string, ip: string, cidrs: string[], k?: string, created?: string): KubeNode {
  return {
    metadata: {
      name,
      annotations: k ? { [ANNOTATION_PUBLIC_KEY]: k } : {},
      ...(created ? { creationTimestamp: created } : {}),
    },
    spec: { podCIDRs: cidrs },
    status: { addresses: [{ type: 'InternalIP', address: ip }] },
  };
}

const self = node('a', '10.0.0.1', ['10.244.1.0/24'], key(1), '2026-01-01T00:00:00Z');
const plan = (nodes: KubeNode[], strict = false, holders?: ReadonlyMap<string, string>) =>
  planMesh([self, ...nodes], {
    selfName: 'a',
    selfPublicKey: key(1),
    hostEncryption: strict,
    ...(holders ? { keyHolders: holders } : {}),
  });
const routes = (p: MeshPlan, strict = false) =>
  desiredRoutes(p, { ...cfg, strict })
    .map((r) => `${r.type} ${r.dst}`)
    .sort();
const refusals = (p: MeshPlan) => p.refused.map((r) => `${r.nodeName}:${r.reason}`).sort();

test('prefix claims: containing, contained and equal prefixes overlap; neighbours do not', () => {
  const c = new PrefixClaims<string>();
  c.claim(parsePrefix('10.244.1.0/24'), 'a');
  c.claim(parsePrefix('10.0.0.1/32'), 'a');
  c.claim(parsePrefix('fd00::/64'), 'b');
  assert.equal(c.overlap(parsePrefix('10.244.1.128/25')), 'a');
  assert.equal(c.overlap(parsePrefix('10.244.0.0/16')), 'a');
  assert.equal(c.overlap(parsePrefix('10.244.1.0/24')), 'a');
  assert.equal(c.overlap(parsePrefix('10.244.2.0/24')), undefined);
  assert.equal(c.overlap(parsePrefix('10.244.0.255/32')), undefined);
  assert.equal(c.overlap(parsePrefix('10.0.0.0/31')), 'a');
  assert.equal(c.overlap(parsePrefix('10.0.0.2/32')), undefined);
  assert.equal(c.overlap(parsePrefix('0.0.0.0/0')), 'a');
  assert.equal(c.overlap(parsePrefix('fd00::1/128')), 'b');
  assert.equal(c.overlap(parsePrefix('fd01::/64')), undefined);
  assert.equal(c.overlap(parsePrefix('::/0')), 'b');
});

test('a remote /25 inside our /24 is refused whole, never routed, even under --strict', () => {
  const p = plan([
    node('b', '10.0.0.2', ['10.244.1.128/25'], key(2)),
    node('c', '10.0.0.3', ['10.244.3.0/24'], key(3)),
  ]);
  assert.deepEqual(refusals(p), ['b:overlaps_own']);
  assert.deepEqual(
    p.peers.map((x) => x.nodeName),
    ['c'],
  );
  const strict = plan([node('b', '10.0.0.2', ['10.244.1.128/25'], key(2))], true);
  assert.deepEqual(routes(strict, true), ['throw 10.244.1.0/24']);
  // A supernet of ours, and a keyless node with one, are refused as well.
  const wide = plan([node('d', '10.0.0.4', ['10.244.0.0/16'])]);
  assert.deepEqual(refusals(wide), ['d:overlaps_own']);
  assert.deepEqual(routes(wide, true), ['throw 10.244.1.0/24']);
});

test('a node listing our InternalIP, or a pod CIDR holding it, is refused', () => {
  const p = plan([
    node('b', '10.0.0.1', ['10.244.2.0/24'], key(2)),
    node('c', '10.0.0.3', ['10.0.0.0/24'], key(3)),
  ]);
  assert.deepEqual(refusals(p), ['b:overlaps_own', 'c:overlaps_own']);
  assert.deepEqual(p.peers, []);
});

test('two nodes overlapping each other: the older keeps its range, the newer is refused', () => {
  const older = node('z', '10.0.0.26', ['10.244.9.0/24'], key(26), '2026-01-02T00:00:00Z');
  const newer = node('b', '10.0.0.2', ['10.244.9.0/25'], key(2), '2026-01-03T00:00:00Z');
  const p = plan([newer, older]);
  assert.deepEqual(refusals(p), ['b:overlaps_peer']);
  assert.deepEqual(
    p.peers.map((x) => `${x.nodeName} ${x.allowedIps.map(formatPrefix).join(',')}`),
    ['z 10.244.9.0/24'],
  );
  assert.match(p.refused[0]!.detail, /10\.244\.9\.0\/25 overlaps node z/);
  // Same InternalIP twice: the newer node is refused too.
  const twin = node('y', '10.0.0.26', ['10.244.8.0/24'], key(8), '2026-01-04T00:00:00Z');
  assert.deepEqual(refusals(plan([older, twin])), ['y:overlaps_peer']);
});

test('a copied key stays with the node that held it first, with and without --strict', () => {
  const victim = node('victim', '10.0.0.5', ['10.244.5.0/24'], key(5), '2026-01-05T00:00:00Z');
  // The attacker's Node is older: on a cold start the older node wins the key...
  const thief = node('thief', '10.0.0.6', ['10.244.6.0/24'], key(5), '2026-01-02T00:00:00Z');
  const before = plan([victim]);
  assert.deepEqual(
    before.peers.map((x) => x.nodeName),
    ['victim'],
  );
  assert.equal(before.keyHolders.get(key(5)), 'victim');
  // ...but an agent that saw the victim hold it first keeps it there.
  for (const strict of [false, true]) {
    const after = plan([victim, thief], strict, before.keyHolders);
    assert.deepEqual(
      after.peers.map((x) => x.nodeName),
      ['victim'],
      `strict=${strict}`,
    );
    assert.deepEqual(refusals(after), ['thief:duplicate_key']);
    assert.equal(after.keyHolders.get(key(5)), 'victim');
    const r = routes(after, strict);
    assert.ok(r.includes('unicast 10.244.5.0/24'), 'the victim stays in the tunnel');
    // The thief's own pods: plaintext without --strict, dropped with it; never the tunnel.
    assert.equal(r.includes('unicast 10.244.6.0/24'), false);
    assert.equal(r.includes('unreachable 10.244.6.0/24'), strict);
  }
  // The victim's key with a younger thief on a cold start: the victim (older) keeps it.
  const young = node('thief', '10.0.0.6', ['10.244.6.0/24'], key(5), '2026-02-01T00:00:00Z');
  assert.deepEqual(
    plan([victim, young]).peers.map((x) => x.nodeName),
    ['victim'],
  );
  // The holder gone (deleted or key changed): the key may move to the remaining claimant.
  assert.deepEqual(
    plan([young], false, before.keyHolders).peers.map((x) => x.nodeName),
    ['thief'],
  );
});
