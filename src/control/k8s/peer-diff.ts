/**
 * The UAPI operations that take the device from what it has to what the plan wants, touching
 * only what differs, so an unchanged peer keeps its session. Pure: tested without a daemon.
 */
import { sameEndpoint, type Endpoint, type IpPrefix } from '../../tunnel/ip.js';
import type { UapiDeviceInfo, UapiSetOp } from '../uapi.js';
import { prefixText } from './prefix-text.js';

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

export type AllowedIpUpdates = 'replace' | 'append' | 'append-remove';

export interface DiffOptions {
  /** False until the Node cache is synced: unknown peers are kept, never removed. */
  readonly removeUnknown: boolean;
  /**
   * How a changed allowed-IP list reaches the device. `append-remove`: one line per address
   * added or removed (`allowed_ip=-PREFIX`, wireguard-ts; not wireguard-go before 2025), so a
   * pod started or deleted costs one line. `append`: additions alone are appended, a peer that
   * lost an address gets its whole list again (replace_allowed_ips), and only that peer.
   * `replace` (the default; the kernel through `wg set`, which always replaces): every changed
   * peer gets its whole list.
   */
  readonly allowedIpUpdates?: AllowedIpUpdates;
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

function prefixMap(list: readonly IpPrefix[]): Map<string, IpPrefix> {
  return new Map(list.map((p) => [prefixText(p), p]));
}

export function diffDevice(have: UapiDeviceInfo, want: DesiredDevice, opts: DiffOptions): PeerDiff {
  const ops: UapiSetOp[] = [];
  if (!sameKey(have.privateKey, want.privateKey))
    ops.push({ key: 'private_key', value: want.privateKey });
  if (have.listenPort !== want.listenPort) ops.push({ key: 'listen_port', value: want.listenPort });
  if (have.fwmark !== want.fwmark) ops.push({ key: 'fwmark', value: want.fwmark });
  const device = ops.length;

  const current = new Map(have.peers.map((p) => [b64(p.publicKey), p]));
  const wanted = new Set<string>();
  // Removals go first, in their own sections: an address moving from peer A to peer B (a pod
  // IP reused on another node) must leave A before B takes it, all in one transaction.
  const removals: UapiSetOp[] = [];
  let added = 0;
  let updated = 0;
  let removed = 0;
  for (const p of want.peers) {
    const k = b64(p.publicKey);
    wanted.add(k);
    const cur = current.get(k);
    const endpointOk = cur !== undefined && sameEndpoint(cur.endpoint, p.endpoint);
    const haveIps = prefixMap(cur?.allowedIps ?? []);
    const wantIps = prefixMap(p.allowedIps);
    const gone = [...haveIps].filter(([t]) => !wantIps.has(t)).map(([, ip]) => ip);
    const fresh = [...wantIps].filter(([t]) => !haveIps.has(t)).map(([, ip]) => ip);
    if (endpointOk && !gone.length && !fresh.length) continue;
    const mode = opts.allowedIpUpdates ?? 'replace';
    const incremental =
      cur !== undefined && (mode === 'append-remove' || (mode === 'append' && !gone.length));
    if (incremental && gone.length) {
      removals.push({ key: 'public_key', value: p.publicKey });
      for (const ip of gone) removals.push({ key: 'allowed_ip', value: ip, remove: true });
    }
    ops.push({ key: 'public_key', value: p.publicKey });
    if (!endpointOk) ops.push({ key: 'endpoint', value: p.endpoint });
    if (!gone.length && !fresh.length) {
      // endpoint only
    } else if (!incremental) {
      // Replacing the list is atomic in a userspace daemon (one UAPI transaction), so there is
      // no window without routes, unlike the kernel API Cilium works around with a dummy peer.
      ops.push({ key: 'replace_allowed_ips' });
      for (const ip of p.allowedIps) ops.push({ key: 'allowed_ip', value: ip, remove: false });
    } else {
      for (const ip of fresh) ops.push({ key: 'allowed_ip', value: ip, remove: false });
    }
    if (cur) updated++;
    else added++;
  }
  ops.splice(device, 0, ...removals);
  if (opts.removeUnknown) {
    for (const [k, p] of current) {
      if (wanted.has(k)) continue;
      ops.push({ key: 'public_key', value: p.publicKey }, { key: 'remove' });
      removed++;
    }
  }
  return { ops, added, updated, removed };
}
