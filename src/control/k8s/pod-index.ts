/**
 * Pod addresses by node, kept up to date one pod event at a time (workload-ips), so a pod
 * started or deleted costs O(its addresses), not a pass over 55,000 pods. An address listed by
 * two pods (a reschedule race) belongs to the newer pod's node (creationTimestamp, then pod
 * key). Prefix objects are made once per address and reused, so their text form is cached too.
 */
import { formatAddress, parseAddress, type IpPrefix } from '../../tunnel/ip.js';
import type { KubePod } from './kube-types.js';

interface Claim {
  readonly pod: string;
  readonly node: string;
  readonly created: string;
}

const newer = (a: Claim, b: Claim) =>
  a.created !== b.created ? a.created > b.created : a.pod > b.pod;

export function podAddresses(p: KubePod): string[] {
  if (!p.spec?.nodeName || p.spec.hostNetwork) return [];
  const ips = p.status?.podIPs?.length
    ? p.status.podIPs.map((x) => x.ip)
    : p.status?.podIP
      ? [p.status.podIP]
      : [];
  const out: string[] = [];
  for (const ip of ips) {
    const bytes = parseAddress(ip);
    if (bytes) out.push(formatAddress(bytes));
  }
  return out;
}

export class PodIndex {
  private readonly pods = new Map<string, { node: string; created: string; ips: string[] }>();
  private readonly claims = new Map<string, Claim[]>();
  private readonly prefixes = new Map<string, IpPrefix>();
  private readonly nodes = new Map<string, Map<string, IpPrefix>>();
  /** Bumped on every change that moves an address. */
  version = 0;

  /** node name -> its pods' host prefixes (live views: do not keep across changes). */
  byNode(): ReadonlyMap<string, ReadonlyMap<string, IpPrefix>> {
    return this.nodes;
  }

  upsert(key: string, p: KubePod): void {
    const ips = podAddresses(p);
    const node = p.spec?.nodeName ?? '';
    const created = p.metadata.creationTimestamp ?? '';
    const cur = this.pods.get(key);
    if (cur && cur.node === node && cur.created === created && cur.ips.join() === ips.join())
      return;
    if (cur) this.delete(key);
    if (!ips.length) return;
    this.pods.set(key, { node, created, ips });
    for (const ip of ips) this.addClaim(ip, { pod: key, node, created });
  }

  delete(key: string): void {
    const cur = this.pods.get(key);
    if (!cur) return;
    this.pods.delete(key);
    for (const ip of cur.ips) this.dropClaim(ip, key);
  }

  private winner(ip: string): Claim | undefined {
    let best: Claim | undefined;
    for (const c of this.claims.get(ip) ?? []) if (!best || newer(c, best)) best = c;
    return best;
  }

  private setOwner(ip: string, before: Claim | undefined, after: Claim | undefined): void {
    if (before?.node === after?.node) return;
    this.version++;
    if (before) {
      const m = this.nodes.get(before.node)!;
      m.delete(ip);
      if (!m.size) this.nodes.delete(before.node);
    }
    if (after) {
      let m = this.nodes.get(after.node);
      if (!m) this.nodes.set(after.node, (m = new Map<string, IpPrefix>()));
      let prefix = this.prefixes.get(ip);
      if (!prefix) {
        const bytes = parseAddress(ip)!;
        prefix = { family: bytes.length === 4 ? 4 : 6, bytes, cidr: bytes.length * 8 };
        this.prefixes.set(ip, prefix);
      }
      m.set(ip, prefix);
    }
  }

  private addClaim(ip: string, c: Claim): void {
    const before = this.winner(ip);
    const list = this.claims.get(ip);
    if (list) list.push(c);
    else this.claims.set(ip, [c]);
    this.setOwner(ip, before, this.winner(ip));
  }

  private dropClaim(ip: string, pod: string): void {
    const before = this.winner(ip);
    const list = (this.claims.get(ip) ?? []).filter((c) => c.pod !== pod);
    if (list.length) this.claims.set(ip, list);
    else {
      this.claims.delete(ip);
      this.prefixes.delete(ip);
    }
    this.setOwner(ip, before, this.winner(ip));
  }
}
