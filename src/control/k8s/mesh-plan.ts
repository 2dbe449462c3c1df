/**
 * From the Node (and, with --route-source workload-ips, Pod) caches to the mesh this node should
 * have: one peer per other Node with a valid published key (endpoint = its InternalIP of our
 * family + its published port; allowed IPs = its pod prefixes, plus its node IPs with host
 * encryption), the keyless Nodes (plaintext, or dropped under --strict), and the refused ones.
 * Trust: a Node may only announce address ranges nobody else holds. Nodes are taken oldest
 * first (creationTimestamp, then name) after our own; one whose pod prefix or node IP overlaps
 * ours or one already given to another Node is refused whole and never routed. A public key
 * published by two Nodes stays with the Node that held it first (as this agent saw it, else the
 * older Node): copying a key can neither capture a peer nor push it back to plaintext. Pure.
 */
import {
  formatPrefix,
  parseAddress,
  parsePrefix,
  type Endpoint,
  type IpFamily,
  type IpPrefix,
} from '../../tunnel/ip.js';
import { isBase64Key, keyFromBase64 } from '../../noise/keys.js';
import { endpointFromBytes } from '../../tunnel/ip.js';
import type { KubeNode, KubePod } from './kube-types.js';
import { PodIndex } from './pod-index.js';
import { PrefixClaims } from './prefix-claims.js';

export const ANNOTATION_PUBLIC_KEY = 'wireguard-ts.io/public-key';
export const ANNOTATION_PORT = 'wireguard-ts.io/port';
export const CONTROL_PLANE_LABELS = [
  'node-role.kubernetes.io/control-plane',
  'node-role.kubernetes.io/master',
];

export type RouteSource = 'pod-cidrs' | 'workload-ips';

export interface PlannedPeer {
  readonly nodeName: string;
  /** Base64, as published. */
  readonly publicKey: string;
  readonly endpoint: Endpoint;
  /** What is routed to it: its pod CIDRs, or its pods' /32 and /128 (workload-ips). */
  readonly podPrefixes: readonly IpPrefix[];
  /** Host prefixes (/32, /128) of the Node's InternalIPs. */
  readonly nodeIps: readonly IpPrefix[];
  /** podPrefixes, plus nodeIps with host encryption: what the peer is allowed to send from. */
  readonly allowedIps: readonly IpPrefix[];
  readonly controlPlane: boolean;
}

export interface KeylessNode {
  readonly nodeName: string;
  readonly podPrefixes: readonly IpPrefix[];
  readonly nodeIps: readonly IpPrefix[];
}

export type RefusedReason =
  | 'duplicate_key'
  | 'invalid_key'
  | 'invalid_port'
  | 'no_endpoint'
  /** A pod prefix or node IP overlapping one of ours. */
  | 'overlaps_own'
  /** A pod prefix or node IP overlapping one already given to another Node. */
  | 'overlaps_peer';

export interface RefusedNode {
  readonly nodeName: string;
  readonly reason: RefusedReason;
  readonly detail: string;
}

export interface MeshPlan {
  readonly peers: readonly PlannedPeer[];
  /** Nodes without a usable key; duplicate/invalid-key refusals are here too (strict drops them). */
  readonly keyless: readonly KeylessNode[];
  readonly refused: readonly RefusedNode[];
  /** Our own Node, when it is in the cache. */
  readonly self: KubeNode | undefined;
  readonly selfIps: readonly IpPrefix[];
  readonly selfControlPlane: boolean;
  /** Our own pod prefixes that get `throw` routes (pod CIDRs; none with workload-ips). */
  readonly throwPrefixes: readonly IpPrefix[];
  /** Public key -> the Node that holds it, to pass to the next plan (first-seen rule). */
  readonly keyHolders: ReadonlyMap<string, string>;
}

export interface PlanOptions {
  readonly selfName: string;
  readonly selfPublicKey: string;
  readonly hostEncryption: boolean;
  readonly routeSource?: RouteSource;
  /** The pods (workload-ips), or their addresses by node already indexed (the agent's). */
  readonly pods?: Iterable<KubePod> | PodIndex;
  /** The previous plan's keyHolders. */
  readonly keyHolders?: ReadonlyMap<string, string>;
}

/** A WireGuard public key as published: base64 of exactly 32 bytes, not all zero. */
export function isValidPublicKey(s: string): boolean {
  return isBase64Key(s) && keyFromBase64(s).some((x) => x !== 0);
}

export function podCidrsOf(node: KubeNode): IpPrefix[] {
  const list = node.spec?.podCIDRs?.length
    ? node.spec.podCIDRs
    : node.spec?.podCIDR
      ? [node.spec.podCIDR]
      : [];
  const out: IpPrefix[] = [];
  for (const c of list) {
    try {
      out.push(parsePrefix(c));
    } catch {
      // a malformed CIDR is skipped, not fatal: the rest of the Node is still usable
    }
  }
  return out;
}

/** The Node's InternalIP addresses as host prefixes, in the order the Node lists them. */
export function internalIpsOf(node: KubeNode): IpPrefix[] {
  const out: IpPrefix[] = [];
  for (const a of node.status?.addresses ?? []) {
    if (a.type !== 'InternalIP') continue;
    const bytes = parseAddress(a.address);
    if (!bytes) continue;
    out.push({ family: bytes.length === 4 ? 4 : 6, bytes, cidr: bytes.length * 8 });
  }
  return out;
}

export function isControlPlane(node: KubeNode): boolean {
  const labels = node.metadata.labels ?? {};
  return CONTROL_PLANE_LABELS.some((l) => l in labels);
}

/**
 * Each pod address goes to the Node of the newest pod holding it (during a reschedule the old
 * pod may still be listed): node name -> its pods' host prefixes.
 */
export function podPrefixesByNode(pods: Iterable<KubePod>): Map<string, IpPrefix[]> {
  const index = new PodIndex();
  for (const p of pods) index.upsert(`${p.metadata.namespace ?? ''}/${p.metadata.name}`, p);
  return new Map([...index.byNode()].map(([n, m]) => [n, [...m.values()]]));
}

/** Oldest first (creationTimestamp), then by name: the order in which Nodes may claim. */
function byAge(a: KubeNode, b: KubeNode): number {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  if (ta !== tb) return ta < tb ? -1 : 1;
  return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
}

interface Candidate {
  readonly node: KubeNode;
  readonly name: string;
  readonly podPrefixes: readonly IpPrefix[];
  readonly nodeIps: readonly IpPrefix[];
  readonly key: string | undefined;
}

export function planMesh(nodes: Iterable<KubeNode>, opts: PlanOptions): MeshPlan {
  const all = [...nodes].sort(byAge);
  const self = all.find((n) => n.metadata.name === opts.selfName);
  const selfIps = self ? internalIpsOf(self) : [];
  // The family we reach peers on: that of our own first InternalIP (IPv4 when unknown).
  const families: IpFamily[] = selfIps.length ? [...new Set(selfIps.map((p) => p.family))] : [4];
  const workload = opts.routeSource === 'workload-ips';
  let index: PodIndex | undefined;
  if (workload) {
    if (opts.pods instanceof PodIndex) index = opts.pods;
    else {
      index = new PodIndex();
      for (const p of opts.pods ?? [])
        index.upsert(`${p.metadata.namespace ?? ''}/${p.metadata.name}`, p);
    }
  }
  const byNode = index?.byNode();
  const podPrefixes = (n: KubeNode): IpPrefix[] =>
    byNode ? [...(byNode.get(n.metadata.name)?.values() ?? [])] : podCidrsOf(n);

  const claims = new PrefixClaims<string>();
  const SELF = '\0self';
  const selfPods = self ? podPrefixes(self) : [];
  for (const p of [...selfIps, ...selfPods]) claims.claim(p, SELF);

  const refused: RefusedNode[] = [];
  const keyless: KeylessNode[] = [];
  const candidates: Candidate[] = [];
  for (const node of all) {
    const name = node.metadata.name;
    if (name === opts.selfName) continue;
    const c: Candidate = {
      node,
      name,
      podPrefixes: podPrefixes(node),
      nodeIps: internalIpsOf(node),
      key: node.metadata.annotations?.[ANNOTATION_PUBLIC_KEY],
    };
    let clash: { p: IpPrefix; owner: string } | undefined;
    for (const p of [...c.nodeIps, ...c.podPrefixes]) {
      const owner = claims.overlap(p);
      if (owner !== undefined && owner !== name) {
        clash = { p, owner };
        break;
      }
    }
    if (clash) {
      refused.push({
        nodeName: name,
        reason: clash.owner === SELF ? 'overlaps_own' : 'overlaps_peer',
        detail: `${formatPrefix(clash.p)} overlaps ${clash.owner === SELF ? 'this node' : `node ${clash.owner}`}`,
      });
      continue;
    }
    for (const p of [...c.nodeIps, ...c.podPrefixes]) claims.claim(p, name);
    candidates.push(c);
  }

  // The first-seen holder of each key, else its oldest claimant (candidates are oldest first).
  const claimants = new Map<string, string[]>();
  for (const c of candidates) {
    if (c.key && isValidPublicKey(c.key))
      claimants.set(c.key, [...(claimants.get(c.key) ?? []), c.name]);
  }
  const keyHolders = new Map<string, string>();
  for (const [key, names] of claimants) {
    const prev = opts.keyHolders?.get(key);
    keyHolders.set(key, prev && names.includes(prev) ? prev : names[0]!);
  }

  const peers: PlannedPeer[] = [];
  for (const c of candidates) {
    const { name, nodeIps } = c;
    const prefixes = c.podPrefixes;
    const refuse = (reason: RefusedReason, detail: string) => {
      refused.push({ nodeName: name, reason, detail });
      keyless.push({ nodeName: name, podPrefixes: prefixes, nodeIps });
    };
    const ann = c.node.metadata.annotations ?? {};
    if (!c.key) {
      keyless.push({ nodeName: name, podPrefixes: prefixes, nodeIps });
      continue;
    }
    if (!isValidPublicKey(c.key)) {
      refuse('invalid_key', 'not base64 of 32 bytes');
      continue;
    }
    if (c.key === opts.selfPublicKey) {
      refuse('duplicate_key', 'same key as this node');
      continue;
    }
    const holder = keyHolders.get(c.key)!;
    if (holder !== name) {
      refuse('duplicate_key', `same key as node ${holder}, which holds it`);
      continue;
    }
    const portText = ann[ANNOTATION_PORT] ?? '51820';
    const port = /^\d{1,5}$/.test(portText) ? Number(portText) : 0;
    if (port < 1 || port > 65535) {
      refuse('invalid_port', `port "${portText}"`);
      continue;
    }
    const ip = families.map((f) => nodeIps.find((p) => p.family === f)).find((p) => p);
    if (!ip) {
      refuse('no_endpoint', 'no InternalIP of our family');
      continue;
    }
    peers.push({
      nodeName: name,
      publicKey: c.key,
      endpoint: endpointFromBytes(ip.bytes, port),
      podPrefixes: prefixes,
      nodeIps,
      allowedIps: opts.hostEncryption ? [...prefixes, ...nodeIps] : prefixes,
      controlPlane: isControlPlane(c.node),
    });
  }
  const byName = (a: { nodeName: string }, b: { nodeName: string }) =>
    a.nodeName < b.nodeName ? -1 : a.nodeName > b.nodeName ? 1 : 0;
  return {
    peers: peers.sort(byName),
    keyless: keyless.sort(byName),
    refused: refused.sort(byName),
    self,
    selfIps,
    selfControlPlane: self ? isControlPlane(self) : false,
    throwPrefixes: workload || !self ? [] : podCidrsOf(self),
    keyHolders,
  };
}
