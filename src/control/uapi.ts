/**
 * The cross-platform configuration protocol (UAPI, wireguard.com/xplatform) as pure text
 * transforms: `set` bodies to typed operations and back, device state to `get` replies and back.
 * No I/O: the socket server (uapi-server.ts) and client (uapi-client.ts) sit on top.
 *
 * Behaviour follows wireguard-go device/uapi.go (which lines are accepted, error numbers, key
 * order in `get`) and wireguard-tools src/ipc-uapi.h (how `wg` reads a `get` reply).
 */
import { join } from 'node:path';
import { WgError, type WgErrorCode } from '../errors.js';
import {
  formatEndpoint,
  formatPrefix,
  parseEndpoint,
  parsePrefix,
  type Endpoint,
  type IpPrefix,
} from '../tunnel/ip.js';

export type UapiSetOp =
  /** All-zero key → null (unset). */
  | { readonly key: 'private_key'; readonly value: Uint8Array | null }
  | { readonly key: 'listen_port'; readonly value: number }
  /** 0 = unset. */
  | { readonly key: 'fwmark'; readonly value: number }
  | { readonly key: 'replace_peers' }
  /** Starts a peer section. */
  | { readonly key: 'public_key'; readonly value: Uint8Array }
  | { readonly key: 'remove' }
  | { readonly key: 'update_only' }
  /** All-zero key → null (no preshared key). */
  | { readonly key: 'preshared_key'; readonly value: Uint8Array | null }
  | { readonly key: 'endpoint'; readonly value: Endpoint }
  | { readonly key: 'persistent_keepalive_interval'; readonly value: number }
  | { readonly key: 'replace_allowed_ips' }
  /** `remove` = the line had a leading `-` (newer `wg set … allowed-ips -a/b`). */
  | { readonly key: 'allowed_ip'; readonly value: IpPrefix; readonly remove: boolean }
  | { readonly key: 'protocol_version'; readonly value: number };

export interface UapiError {
  /** Positive errno (22 EINVAL, 71 EPROTO, ...); the wire carries it negated. */
  readonly errno: number;
  /** 1-based line number within the set body (the line after `set=1` is line 1). */
  readonly line: number;
  readonly message: string;
}

export interface UapiParseResult {
  /** The operations before the first bad line (wireguard-go applies those). */
  readonly ops: UapiSetOp[];
  readonly error: UapiError | null;
}

export interface UapiPeerInfo {
  publicKey: Uint8Array;
  presharedKey: Uint8Array | null;
  endpoint: Endpoint | null;
  /** Unix epoch milliseconds (fractions allowed, kept to the nanosecond); 0 = never. */
  lastHandshakeMs: number;
  txBytes: number;
  rxBytes: number;
  persistentKeepalive: number;
  allowedIps: IpPrefix[];
  protocolVersion: number;
}

/** A peer as a fresh `public_key=` line makes it: nothing known but its key. */
export function newPeerInfo(publicKey: Uint8Array): UapiPeerInfo {
  return {
    publicKey,
    presharedKey: null,
    endpoint: null,
    lastHandshakeMs: 0,
    txBytes: 0,
    rxBytes: 0,
    persistentKeepalive: 0,
    allowedIps: [],
    protocolVersion: 1,
  };
}

export interface UapiDeviceInfo {
  privateKey: Uint8Array | null;
  listenPort: number;
  fwmark: number;
  peers: UapiPeerInfo[];
}

// errno values on Linux (wireguard-go ipc/uapi_linux.go uses these, negated on the wire).
export const EIO = 5;
export const ENOENT = 2;
export const EINVAL = 22;
export const EPROTO = 71;
export const EADDRINUSE = 98;
export const ENETUNREACH = 101;
export const ECONNREFUSED = 111;
/** wireguard-go's IpcErrorUnknown ("other UAPI error"): ENOANO. */
export const EUNKNOWN = 55;

const STRERROR: Readonly<Record<number, string>> = {
  [ENOENT]: 'No such file or directory',
  [EIO]: 'Input/output error',
  [EINVAL]: 'Invalid argument',
  [EPROTO]: 'Protocol error',
  [EADDRINUSE]: 'Address already in use',
  [EUNKNOWN]: 'No anode',
  [ENETUNREACH]: 'Network is unreachable',
  [ECONNREFUSED]: 'Connection refused',
};

/** The C library's message for an errno, as `wg` prints it. */
export function strerror(errno: number): string {
  return STRERROR[errno] ?? `Unknown error ${errno}`;
}

/** A non-zero `errno=` reply from a UAPI peer; `errno` is positive. */
export class UapiErrnoError extends WgError {
  readonly errno: number;
  constructor(errno: number, message: string) {
    super(errnoCode(errno), message);
    this.errno = errno;
  }
}

function errnoCode(errno: number): WgErrorCode {
  if (errno === EINVAL) return 'ERR_INVALID_VALUE';
  if (errno === EADDRINUSE) return 'ERR_IN_USE';
  return 'ERR_SYSTEM';
}

export const UAPI_SOCKET_DIR = '/var/run/wireguard';

/** `<dir>/<ifname>.sock`, the path wireguard-go listens on and `wg` connects to. */
export function socketPath(ifname: string, dir: string = UAPI_SOCKET_DIR): string {
  return join(dir, `${ifname}.sock`);
}

// --- keys and numbers ---------------------------------------------------------------------------

const HEX_KEY = /^[0-9a-fA-F]{64}$/;

/** Decodes a 64-digit hex key (either case, like Go's hex.DecodeString); null when malformed. */
export function keyFromHex(s: string): Uint8Array | null {
  if (!HEX_KEY.test(s)) return null;
  return new Uint8Array(Buffer.from(s, 'hex'));
}

export function keyToHex(key: Uint8Array | null): string {
  if (key === null) return ZERO_KEY_HEX;
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex');
}

const ZERO_KEY_HEX = '0'.repeat(64);

export function isZeroKey(key: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < key.length; i++) acc |= key[i]!;
  return acc === 0;
}

/** strconv.ParseUint(s, 10, bits): decimal digits only (leading zeros allowed), in range. */
function parseUint(s: string, max: number): number | null {
  if (!/^[0-9]+$/.test(s)) return null;
  const v = Number(s);
  return v <= max ? v : null;
}

/**
 * netip.ParsePrefix: `addr/bits`, bits decimal without sign or leading zeros. Host bits may be
 * set (the trie masks them). A leading `-` marks removal.
 */
function parseAllowedIp(s: string): { prefix: IpPrefix; remove: boolean } | null {
  const remove = s.startsWith('-');
  const text = remove ? s.slice(1) : s;
  const slash = text.indexOf('/');
  if (slash < 0) return null;
  const bits = text.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(bits)) return null;
  if (/\s/.test(text)) return null;
  try {
    return { prefix: parsePrefix(text), remove };
  } catch {
    return null;
  }
}

// --- set ----------------------------------------------------------------------------------------

/**
 * Parses `set` lines one at a time, so the server can feed lines as they arrive and stop at the
 * first bad one. After an error, further lines are ignored.
 */
export class UapiSetParser {
  readonly ops: UapiSetOp[] = [];
  private lineNo = 0;
  private inPeer = false;
  private err: UapiError | null = null;

  get error(): UapiError | null {
    return this.err;
  }

  /**
   * Feeds one line without its `\n` (a trailing `\r` is dropped, as Go's bufio.ScanLines does).
   * Returns false once an error has been seen.
   */
  line(text: string): boolean {
    if (this.err) return false;
    if (text.endsWith('\r')) text = text.slice(0, -1);
    this.lineNo++;
    const eq = text.indexOf('=');
    if (eq < 0) return this.fail(EPROTO, 'failed to parse line (no "=")');
    const key = text.slice(0, eq);
    const value = text.slice(eq + 1);
    const op =
      key === 'public_key'
        ? this.publicKey(value)
        : this.inPeer
          ? this.peerLine(key, value)
          : this.deviceLine(key, value);
    if (typeof op === 'string') return this.fail(EINVAL, op);
    if (op) this.ops.push(op);
    return true;
  }

  result(): UapiParseResult {
    return { ops: this.ops, error: this.err };
  }

  private fail(errno: number, message: string): false {
    this.err = { errno, line: this.lineNo, message };
    return false;
  }

  private publicKey(value: string): UapiSetOp | string {
    const key = keyFromHex(value);
    if (!key) return 'failed to get peer by public key: invalid hex key';
    this.inPeer = true;
    return { key: 'public_key', value: key };
  }

  private deviceLine(key: string, value: string): UapiSetOp | string {
    switch (key) {
      case 'private_key': {
        const k = keyFromHex(value);
        if (!k) return 'failed to set private_key: invalid hex key';
        return { key: 'private_key', value: isZeroKey(k) ? null : k };
      }
      case 'listen_port': {
        const port = parseUint(value, 0xffff);
        if (port === null) return `failed to parse listen_port: ${shownUapiValue(value)}`;
        return { key: 'listen_port', value: port };
      }
      case 'fwmark': {
        const mark = parseUint(value, 0xffffffff);
        if (mark === null) return `invalid fwmark: ${shownUapiValue(value)}`;
        return { key: 'fwmark', value: mark };
      }
      case 'replace_peers':
        if (value !== 'true')
          return `failed to set replace_peers, invalid value: ${shownUapiValue(value)}`;
        return { key: 'replace_peers' };
      default:
        return `invalid UAPI device key: ${shownUapiKey(key)}`;
    }
  }

  private peerLine(key: string, value: string): UapiSetOp | string {
    switch (key) {
      case 'update_only':
      case 'remove':
      case 'replace_allowed_ips':
        if (value !== 'true')
          return `failed to set ${key}, invalid value: ${shownUapiValue(value)}`;
        return { key };
      case 'preshared_key': {
        const k = keyFromHex(value);
        if (!k) return 'failed to set preshared key: invalid hex key';
        return { key: 'preshared_key', value: isZeroKey(k) ? null : k };
      }
      case 'endpoint':
        try {
          return { key: 'endpoint', value: parseEndpoint(value) };
        } catch {
          return `failed to set endpoint ${shownUapiValue(value)}`;
        }
      case 'persistent_keepalive_interval': {
        const secs = parseUint(value, 0xffff);
        if (secs === null)
          return `failed to set persistent keepalive interval: ${shownUapiValue(value)}`;
        return { key: 'persistent_keepalive_interval', value: secs };
      }
      case 'allowed_ip': {
        const p = parseAllowedIp(value);
        if (!p) return `failed to set allowed ip: ${shownUapiValue(value)}`;
        return { key: 'allowed_ip', value: p.prefix, remove: p.remove };
      }
      case 'protocol_version':
        if (value !== '1') return `invalid protocol version: ${shownUapiValue(value)}`;
        return { key: 'protocol_version', value: 1 };
      default:
        // Device keys after the first public_key land here too, as in wireguard-go.
        return `invalid UAPI peer key: ${shownUapiKey(key)}`;
    }
  }
}

/**
 * Parses the lines of a `set` request after `set=1`, up to the blank line (or the end). Stops at
 * the first bad line; `ops` holds the operations before it.
 */
export function parseSet(body: string): UapiParseResult {
  const parser = new UapiSetParser();
  let start = 0;
  while (start < body.length) {
    let end = body.indexOf('\n', start);
    if (end < 0) end = body.length;
    const line = body.slice(start, end);
    if (line === '' || line === '\r') break;
    if (!parser.line(line)) break;
    start = end + 1;
  }
  return parser.result();
}

function opLine(op: UapiSetOp): string {
  switch (op.key) {
    case 'private_key':
    case 'preshared_key':
      return `${op.key}=${keyToHex(op.value)}`;
    case 'public_key':
      return `public_key=${keyToHex(op.value)}`;
    case 'listen_port':
    case 'fwmark':
    case 'persistent_keepalive_interval':
    case 'protocol_version':
      return `${op.key}=${op.value}`;
    case 'replace_peers':
    case 'remove':
    case 'update_only':
    case 'replace_allowed_ips':
      return `${op.key}=true`;
    case 'endpoint':
      return `endpoint=${formatEndpoint(op.value)}`;
    case 'allowed_ip':
      return `allowed_ip=${op.remove ? '-' : ''}${formatPrefix(op.value)}`;
  }
}

/** A whole `set` request: `set=1\n`, one line per op, and the terminating blank line. */
export function serializeSet(ops: readonly UapiSetOp[]): string {
  const lines = ['set=1'];
  for (const op of ops) lines.push(opLine(op));
  return `${lines.join('\n')}\n\n`;
}

// --- get ----------------------------------------------------------------------------------------

/**
 * The body of a `get` reply, byte for byte as wireguard-go writes it (without `errno=0\n\n`):
 * device keys only when non-zero, then per peer public_key, preshared_key (zeros when none),
 * protocol_version=1, endpoint (when known), handshake time, counters, keepalive, allowed IPs.
 */
export function serializeGet(info: UapiDeviceInfo): string {
  const out: string[] = [];
  if (info.privateKey && !isZeroKey(info.privateKey)) {
    out.push(`private_key=${keyToHex(info.privateKey)}`);
  }
  if (info.listenPort !== 0) out.push(`listen_port=${info.listenPort}`);
  if (info.fwmark !== 0) out.push(`fwmark=${info.fwmark}`);
  for (const p of info.peers) {
    out.push(`public_key=${keyToHex(p.publicKey)}`);
    out.push(`preshared_key=${keyToHex(p.presharedKey)}`);
    out.push(`protocol_version=${p.protocolVersion || 1}`);
    if (p.endpoint) out.push(`endpoint=${formatEndpoint(p.endpoint)}`);
    const { sec, nsec } = splitEpochMs(p.lastHandshakeMs);
    out.push(`last_handshake_time_sec=${sec}`);
    out.push(`last_handshake_time_nsec=${nsec}`);
    out.push(`tx_bytes=${p.txBytes}`);
    out.push(`rx_bytes=${p.rxBytes}`);
    out.push(`persistent_keepalive_interval=${p.persistentKeepalive}`);
    for (const a of p.allowedIps) out.push(`allowed_ip=${formatPrefix(a)}`);
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

function splitEpochMs(ms: number): { sec: number; nsec: number } {
  if (!(ms > 0)) return { sec: 0, nsec: 0 };
  const sec = Math.floor(ms / 1000);
  const nsec = Math.min(999_999_999, Math.round((ms - sec * 1000) * 1e6));
  return { sec, nsec };
}

/**
 * A UAPI key (or operation) as a log line or error may repeat it: a lowercase name like
 * `listen_port`, quoted; anything else may be a pasted key, so only its length. Never a value.
 */
export function shownUapiKey(text: string): string {
  const name = text.split('=')[0]!;
  return /^[a-z_]{1,32}$/.test(name) ? `"${name}"` : `(${text.length} characters, not shown)`;
}

/** A value as an error may repeat it, quoted: not when it holds what could be part of a key. */
function shownUapiValue(value: string): string {
  return /[A-Za-z0-9+/]{20,}/.test(value)
    ? `(${value.length} characters, not shown)`
    : `"${value}"`;
}

function badGet(message: string, field: string): WgError {
  return new WgError('ERR_INVALID_VALUE', `invalid UAPI get reply: ${message}`, field);
}

function getNumber(value: string, key: string): number {
  if (!/^[0-9]+$/.test(value)) throw badGet(`${key}=${value}`, key);
  return Number(value);
}

function getKey(value: string, key: string): Uint8Array {
  const k = keyFromHex(value);
  if (!k) throw badGet(`${key} is not a hex key`, key);
  return k;
}

/**
 * Parses a `get` reply (tolerating the trailing `errno=` line and blank line). Unknown keys are
 * ignored, as `wg` does, so newer daemons stay readable. A non-zero errno throws UapiErrnoError.
 */
export function parseGet(text: string): UapiDeviceInfo {
  const info: UapiDeviceInfo = { privateKey: null, listenPort: 0, fwmark: 0, peers: [] };
  let peer: UapiPeerInfo | null = null;
  let sec = 0;
  let nsec = 0;
  const finishPeer = () => {
    if (peer) peer.lastHandshakeMs = sec * 1000 + nsec / 1e6;
    sec = 0;
    nsec = 0;
  };
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end);
    start = end + 1;
    if (line === '') break;
    const eq = line.indexOf('=');
    if (eq < 0) throw badGet(`line without "=" (${line.length} characters)`, 'line');
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === 'errno') {
      const n = Number(value);
      if (!Number.isInteger(n)) throw badGet(`errno=${value}`, 'errno');
      if (n !== 0)
        throw new UapiErrnoError(Math.abs(n), `UAPI get failed: ${strerror(Math.abs(n))}`);
      continue;
    }
    if (key === 'public_key') {
      finishPeer();
      peer = newPeerInfo(getKey(value, key));
      info.peers.push(peer);
      continue;
    }
    if (!peer) {
      if (key === 'private_key') {
        const k = getKey(value, key);
        info.privateKey = isZeroKey(k) ? null : k;
      } else if (key === 'listen_port') info.listenPort = getNumber(value, key);
      else if (key === 'fwmark') info.fwmark = getNumber(value, key);
      continue;
    }
    switch (key) {
      case 'preshared_key': {
        const k = getKey(value, key);
        peer.presharedKey = isZeroKey(k) ? null : k;
        break;
      }
      case 'protocol_version':
        peer.protocolVersion = getNumber(value, key);
        break;
      case 'endpoint':
        peer.endpoint = parseEndpoint(value);
        break;
      case 'last_handshake_time_sec':
        sec = getNumber(value, key);
        break;
      case 'last_handshake_time_nsec':
        nsec = getNumber(value, key);
        break;
      case 'tx_bytes':
        peer.txBytes = getNumber(value, key);
        break;
      case 'rx_bytes':
        peer.rxBytes = getNumber(value, key);
        break;
      case 'persistent_keepalive_interval':
        peer.persistentKeepalive = getNumber(value, key);
        break;
      case 'allowed_ip': {
        const p = parseAllowedIp(value);
        if (!p || p.remove) throw badGet(`allowed_ip=${value}`, key);
        peer.allowedIps.push(p.prefix);
        break;
      }
      default:
        break;
    }
  }
  finishPeer();
  return info;
}
