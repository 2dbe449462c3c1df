/**
 * IP addresses, prefixes and UDP endpoints as bytes, parsed and formatted without node:net (the
 * core does no I/O), and peeks into IPv4/IPv6 headers for the data path.
 */
import { WgError } from '../errors.js';

export type IpFamily = 4 | 6;

/** A network prefix: `bytes` has 4 or 16 bytes with the host bits cleared. */
export interface IpPrefix {
  readonly family: IpFamily;
  readonly bytes: Uint8Array;
  readonly cidr: number;
}

/** One of our addresses and the interface it is on, as the kernel reported it on receive. */
export interface LocalAddress {
  /** Canonical text form, as Endpoint.address. */
  readonly address: string;
  readonly ifindex: number;
}

/** A UDP endpoint. `address` is the canonical text form (IPv6 compressed, lowercase). */
export interface Endpoint {
  readonly family: IpFamily;
  readonly address: string;
  readonly port: number;
  /**
   * Where the datagram this endpoint came from arrived: the peer chose that address of ours, so
   * we answer from it ("sticky source"). Absent for a configured endpoint: the route picks.
   */
  readonly local?: LocalAddress | null;
  /**
   * Address bytes ‖ big-endian port, when the bind had them: what a cookie is bound to and the
   * rate limiters key by, without parsing `address` back.
   */
  readonly bytes?: Uint8Array;
}

/**
 * A source as a bind received it: the address text is made only when asked. A flood from as many
 * sources as datagrams asks it of none (they are judged by their bytes), so each costs one small
 * object instead of formatting an IPv6 address and parsing it back.
 */
export class ReceivedEndpoint implements Endpoint {
  readonly family: IpFamily;
  readonly port: number;
  private text: string | null = null;

  /** `bytes`: address ‖ big-endian port, kept (not copied). */
  constructor(
    readonly bytes: Uint8Array,
    readonly local: LocalAddress | null,
  ) {
    this.family = bytes.length === 6 ? 4 : 6;
    this.port = (bytes[bytes.length - 2]! << 8) | bytes[bytes.length - 1]!;
  }

  get address(): string {
    return (this.text ??= formatAddress(this.bytes.subarray(0, this.bytes.length - 2)));
  }
}

function parseIpv4(s: string): Uint8Array | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^\d{1,3}$/.test(p) || (p.length > 1 && p[0] === '0')) return null;
    const v = Number(p);
    if (v > 255) return null;
    out[i] = v;
  }
  return out;
}

function parseIpv6(s: string): Uint8Array | null {
  const pct = s.indexOf('%'); // zone ids are not used by WireGuard endpoints
  if (pct >= 0) return null;
  const out = new Uint8Array(16);
  let head = s;
  let tail = '';
  const dbl = s.indexOf('::');
  if (dbl >= 0) {
    if (s.indexOf('::', dbl + 1) >= 0) return null;
    head = s.slice(0, dbl);
    tail = s.slice(dbl + 2);
  }
  // An embedded IPv4 address may only end the whole address, not the part before `::`.
  const groups = (part: string, allowV4: boolean): number[] | null => {
    if (part === '') return [];
    const fields = part.split(':');
    const words: number[] = [];
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i]!;
      if (allowV4 && i === fields.length - 1 && f.includes('.')) {
        const v4 = parseIpv4(f);
        if (!v4) return null;
        words.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(f)) return null;
        words.push(parseInt(f, 16));
      }
    }
    return words;
  };
  const h = groups(head, dbl < 0);
  const t = groups(tail, true);
  if (!h || !t) return null;
  if (dbl < 0 ? h.length !== 8 : h.length + t.length > 7) return null;
  const words = new Array<number>(8).fill(0);
  h.forEach((w, i) => (words[i] = w));
  t.forEach((w, i) => (words[8 - t.length + i] = w));
  for (let i = 0; i < 8; i++) {
    out[2 * i] = words[i]! >> 8;
    out[2 * i + 1] = words[i]! & 0xff;
  }
  return out;
}

/** Parses an IPv4 or IPv6 address; returns null when it is neither. */
export function parseAddress(s: string): Uint8Array | null {
  return s.includes(':') ? parseIpv6(s) : parseIpv4(s);
}

/** Formats 4 or 16 address bytes: dotted quad, or RFC 5952 compressed IPv6. */
export function formatAddress(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((b[i]! << 8) | b[i + 1]!);
  // IPv4-mapped addresses print as ::ffff:a.b.c.d, like Go's netip and glibc.
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) {
    return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  }
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(':');
  if (bestStart < 0) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLen))}`;
}

/** Clears the bits after `cidr` in a copy of `bytes`. */
export function maskPrefix(bytes: Uint8Array, cidr: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  for (let i = 0; i < out.length; i++) {
    const keep = Math.max(0, Math.min(8, cidr - 8 * i));
    out[i] = out[i]! & ((0xff << (8 - keep)) & 0xff);
  }
  return out;
}

/** Parses `addr/cidr` (or a bare address, as a host prefix); host bits are cleared. */
export function parsePrefix(s: string): IpPrefix {
  const slash = s.indexOf('/');
  const addrText = slash < 0 ? s : s.slice(0, slash);
  const bytes = parseAddress(addrText.trim());
  if (!bytes) throw new WgError('ERR_INVALID_CIDR', `invalid IP prefix "${s}"`, 'allowed_ip');
  const family: IpFamily = bytes.length === 4 ? 4 : 6;
  const max = family === 4 ? 32 : 128;
  let cidr = max;
  if (slash >= 0) {
    const c = s.slice(slash + 1).trim();
    if (!/^\d{1,3}$/.test(c) || Number(c) > max) {
      throw new WgError('ERR_INVALID_CIDR', `invalid prefix length in "${s}"`, 'allowed_ip');
    }
    cidr = Number(c);
  }
  return { family, bytes: maskPrefix(bytes, cidr), cidr };
}

export function formatPrefix(p: IpPrefix): string {
  return `${formatAddress(p.bytes)}/${p.cidr}`;
}

/** Parses `a.b.c.d:port` or `[v6]:port` (numeric only, as the UAPI requires). */
export function parseEndpoint(s: string): Endpoint {
  let host: string;
  let portText: string;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0 || s[close + 1] !== ':') {
      throw new WgError('ERR_INVALID_ENDPOINT', `invalid endpoint "${s}"`, 'endpoint');
    }
    host = s.slice(1, close);
    portText = s.slice(close + 2);
  } else {
    const colon = s.lastIndexOf(':');
    if (colon < 0) throw new WgError('ERR_INVALID_ENDPOINT', `invalid endpoint "${s}"`, 'endpoint');
    host = s.slice(0, colon);
    portText = s.slice(colon + 1);
    if (host.includes(':')) {
      throw new WgError('ERR_INVALID_ENDPOINT', `IPv6 endpoint needs brackets: "${s}"`, 'endpoint');
    }
  }
  const bytes = parseAddress(host);
  if (!bytes)
    throw new WgError('ERR_INVALID_ENDPOINT', `invalid endpoint address "${s}"`, 'endpoint');
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
    throw new WgError('ERR_INVALID_ENDPOINT', `invalid endpoint port "${s}"`, 'endpoint');
  }
  return endpointFromBytes(bytes, Number(portText));
}

export function endpointFromBytes(bytes: Uint8Array, port: number): Endpoint {
  return { family: bytes.length === 4 ? 4 : 6, address: formatAddress(bytes), port };
}

/** `a.b.c.d:port` or `[v6]:port`, as `wg` and the UAPI print endpoints. */
export function formatEndpoint(e: Endpoint): string {
  return e.family === 6 ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

/** Same remote address and port (whatever local address each arrived at). */
export function sameEndpoint(a: Endpoint | null, b: Endpoint): boolean {
  return a !== null && a.port === b.port && a.address === b.address;
}

/** Same remote address and port, and the same local address and interface (or neither has one). */
export function sameEndpointAndLocal(a: Endpoint | null, b: Endpoint): boolean {
  if (a === b) return true;
  if (!sameEndpoint(a, b)) return false;
  const x = a!.local ?? null;
  const y = b.local ?? null;
  if (x === null || y === null) return x === y;
  return x.address === y.address && x.ifindex === y.ifindex;
}

/** The endpoint without its local address: what is left when that address is gone. */
export function withoutLocal(e: Endpoint): Endpoint {
  return { family: e.family, address: e.address, port: e.port };
}

// Header peeks for the data path. Offsets are into the packet; callers check lengths first.

/** The IP version of a packet (4, 6) or 0 if it is too short or neither. */
export function ipVersion(packet: Uint8Array): number {
  if (packet.length < 1) return 0;
  const v = packet[0]! >> 4;
  if (v === 4 && packet.length >= 20) return 4;
  if (v === 6 && packet.length >= 40) return 6;
  return 0;
}

/**
 * The length the IP header claims for the whole packet, or -1 when the header is not a valid
 * IPv4/IPv6 header that fits in `len` bytes (used to trim WireGuard's padding on receive).
 */
export function ipPacketLength(packet: Uint8Array, len: number): number {
  if (len < 1) return -1;
  const v = packet[0]! >> 4;
  if (v === 4) {
    if (len < 20) return -1;
    const total = (packet[2]! << 8) | packet[3]!;
    return total >= 20 && total <= len ? total : -1;
  }
  if (v === 6) {
    if (len < 40) return -1;
    const total = 40 + ((packet[4]! << 8) | packet[5]!);
    return total <= len ? total : -1;
  }
  return -1;
}

/** Offset of the destination address in an IPv4 (16) or IPv6 (24) header. */
export const IPV4_DST_OFFSET = 16;
export const IPV6_DST_OFFSET = 24;
export const IPV4_SRC_OFFSET = 12;
export const IPV6_SRC_OFFSET = 8;
