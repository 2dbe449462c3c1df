/**
 * From the Node cache to the mesh this node should have: one peer per other Node with a valid
 * published key (endpoint = its InternalIP of our family + its published port; allowed IPs = its
 * pod CIDRs, plus its node IPs with host encryption), the keyless Nodes (plaintext, or dropped
 * under --strict), and the refused ones (duplicate or malformed keys). Pure: no I/O.
 */
import {
  parseAddress,
  parsePrefix,
  type Endpoint,
  type IpFamily,
  type IpPrefix,
} from '../../tunnel/ip.js';
import { isBase64Key, keyFromBase64 } from '../../noise/keys.js';
import { endpointFromBytes } from '../../tunnel/ip.js';
import type { KubeNode } from './kube-types.js';

export const ANNOTATION_PUBLIC_KEY = 'wireguard-ts.io/public-key';
export const ANNOTATION_PORT = 'wireguard-ts.io/port';
export const CONTROL_PLANE_LABELS = [
  'node-role.kubernetes.io/control-plane',
  'node-role.kubernetes.io/master',
];

export interface PlannedPeer {
  readonly nodeName: string;
  /** Base64, as published. */
  readonly publicKey: string;
  readonly endpoint: Endpoint;
  readonly podCidrs: readonly IpPrefix[];
  /** Host prefixes (/32, /128) of the Node's InternalIPs. */
  readonly nodeIps: readonly IpPrefix[];
  /** podCidrs, plus nodeIps with host encryption: what the peer is allowed to send from. */
  readonly allowedIps: readonly IpPrefix[];
  readonly controlPlane: boolean;
}

export interface KeylessNode {
  readonly nodeName: string;
  readonly podCidrs: readonly IpPrefix[];
  readonly nodeIps: readonly IpPrefix[];
}

export interface RefusedNode {
  readonly nodeName: string;
  readonly reason: 'duplicate_key' | 'invalid_key' | 'invalid_port' | 'no_endpoint';
  readonly detail: string;
}

export interface MeshPlan {
  readonly peers: readonly PlannedPeer[];
  readonly keyless: readonly KeylessNode[];
  readonly refused: readonly RefusedNode[];
  /** Our own Node, when it is in the cache. */
  readonly self: KubeNode | undefined;
  readonly selfIps: readonly IpPrefix[];
  readonly selfControlPlane: boolean;
}

export interface PlanOptions {
  readonly selfName: string;
  readonly selfPublicKey: string;
  readonly hostEncryption: boolean;
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

export function planMesh(nodes: Iterable<KubeNode>, opts: PlanOptions): MeshPlan {
  const all = [...nodes].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const self = all.find((n) => n.metadata.name === opts.selfName);
  const selfIps = self ? internalIpsOf(self) : [];
  // The family we reach peers on: that of our own first InternalIP (IPv4 when unknown).
  const families: IpFamily[] = selfIps.length ? [...new Set(selfIps.map((p) => p.family))] : [4];

  const refused: RefusedNode[] = [];
  const keyless: KeylessNode[] = [];
  const candidates: PlannedPeer[] = [];
  const owners = new Map<string, string[]>();

  for (const node of all) {
    const name = node.metadata.name;
    if (name === opts.selfName) continue;
    const podCidrs = podCidrsOf(node);
    const nodeIps = internalIpsOf(node);
    const ann = node.metadata.annotations ?? {};
    const key = ann[ANNOTATION_PUBLIC_KEY];
    if (!key) {
      keyless.push({ nodeName: name, podCidrs, nodeIps });
      continue;
    }
    if (!isValidPublicKey(key)) {
      refused.push({ nodeName: name, reason: 'invalid_key', detail: 'not base64 of 32 bytes' });
      keyless.push({ nodeName: name, podCidrs, nodeIps });
      continue;
    }
    const portText = ann[ANNOTATION_PORT] ?? '51820';
    const port = /^\d{1,5}$/.test(portText) ? Number(portText) : 0;
    if (port < 1 || port > 65535) {
      refused.push({ nodeName: name, reason: 'invalid_port', detail: `port "${portText}"` });
      keyless.push({ nodeName: name, podCidrs, nodeIps });
      continue;
    }
    const ip = families.map((f) => nodeIps.find((p) => p.family === f)).find((p) => p);
    if (!ip) {
      refused.push({
        nodeName: name,
        reason: 'no_endpoint',
        detail: 'no InternalIP of our family',
      });
      keyless.push({ nodeName: name, podCidrs, nodeIps });
      continue;
    }
    owners.set(key, [...(owners.get(key) ?? []), name]);
    candidates.push({
      nodeName: name,
      publicKey: key,
      endpoint: endpointFromBytes(ip.bytes, port),
      podCidrs,
      nodeIps,
      allowedIps: opts.hostEncryption ? [...podCidrs, ...nodeIps] : podCidrs,
      controlPlane: isControlPlane(node),
    });
  }

  // A key claimed twice (or claiming ours) is refused for every claimant: we cannot tell which
  // Node really holds the private key, and WireGuard routes by key (Calico does the same).
  const peers: PlannedPeer[] = [];
  for (const p of candidates) {
    const claimants = owners.get(p.publicKey)!;
    if (claimants.length > 1 || p.publicKey === opts.selfPublicKey) {
      const others =
        p.publicKey === opts.selfPublicKey
          ? ['this node']
          : claimants.filter((n) => n !== p.nodeName);
      refused.push({
        nodeName: p.nodeName,
        reason: 'duplicate_key',
        detail: `same key as ${others.join(', ')}`,
      });
      keyless.push({ nodeName: p.nodeName, podCidrs: p.podCidrs, nodeIps: p.nodeIps });
      continue;
    }
    peers.push(p);
  }
  return {
    peers,
    keyless,
    refused,
    self,
    selfIps,
    selfControlPlane: self ? isControlPlane(self) : false,
  };
}
