/**
 * The UAPI operations that take the device from what it has to what the plan wants, touching
 * only what differs, so an unchanged peer keeps its session. Pure: tested without a daemon.
 */
import { formatPrefix, sameEndpoint, type Endpoint, type IpPrefix } from '../../tunnel/ip.js';
import type { UapiDeviceInfo, UapiSetOp } from '../uapi.js';

export interface DesiredDevice {
  readonly privateKey: Uint8Array;
  readonly listenPort: number;
  readonly fwmark: number;
  readonly peers: ReadonlyArray<{
    readonly publicKey: Uint8Array;
    readonly endpoint: Endpoint;
    readonly allowedIps: readonly IpPrefix[];
  }>;
}

export interface DiffOptions {
  /** False until the Node cache is synced: unknown peers are kept, never removed. */
  readonly removeUnknown: boolean;
}

export interface PeerDiff {
  readonly ops: UapiSetOp[];
  readonly added: number;
  readonly updated: number;
  readonly removed: number;
}

const b64 = (k: Uint8Array) => Buffer.from(k).toString('base64');

function sameKey(a: Uint8Array | null, b: Uint8Array): boolean {
  return a !== null && a.length === b.length && a.every((x, i) => x === b[i]);
}

function prefixSet(list: readonly IpPrefix[]): string {
  return list.map(formatPrefix).sort().join(',');
}

export function diffDevice(have: UapiDeviceInfo, want: DesiredDevice, opts: DiffOptions): PeerDiff {
  const ops: UapiSetOp[] = [];
  if (!sameKey(have.privateKey, want.privateKey))
    ops.push({ key: 'private_key', value: want.privateKey });
  if (have.listenPort !== want.listenPort) ops.push({ key: 'listen_port', value: want.listenPort });
  if (have.fwmark !== want.fwmark) ops.push({ key: 'fwmark', value: want.fwmark });

  const current = new Map(have.peers.map((p) => [b64(p.publicKey), p]));
  const wanted = new Set<string>();
  let added = 0;
  let updated = 0;
  let removed = 0;
  for (const p of want.peers) {
    const k = b64(p.publicKey);
    wanted.add(k);
    const cur = current.get(k);
    const endpointOk = cur !== undefined && sameEndpoint(cur.endpoint, p.endpoint);
    const ipsOk = cur !== undefined && prefixSet(cur.allowedIps) === prefixSet(p.allowedIps);
    if (endpointOk && ipsOk) continue;
    ops.push({ key: 'public_key', value: p.publicKey });
    if (!endpointOk) ops.push({ key: 'endpoint', value: p.endpoint });
    if (!ipsOk) {
      // Replacing the list is atomic in a userspace daemon (one UAPI transaction), so there is
      // no window without routes, unlike the kernel API Cilium works around with a dummy peer.
      ops.push({ key: 'replace_allowed_ips' });
      for (const ip of p.allowedIps) ops.push({ key: 'allowed_ip', value: ip, remove: false });
    }
    if (cur) updated++;
    else added++;
  }
  if (opts.removeUnknown) {
    for (const [k, p] of current) {
      if (wanted.has(k)) continue;
      ops.push({ key: 'public_key', value: p.publicKey }, { key: 'remove' });
      removed++;
    }
  }
  return { ops, added, updated, removed };
}
