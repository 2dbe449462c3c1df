/**
 * The wg-quick configuration file format ([Interface] / [Peer] sections, `Key = Value` lines),
 * parsed into a typed config and turned into the UAPI operations `wg setconf` would send.
 * Pure: host names in Endpoint are kept as text; the caller resolves them (up.ts).
 *
 * Follows wireguard-tools src/config.c (value formats) and wg-quick (Address, MTU), but refuses
 * the wg-quick keys that run commands or touch DNS/routing tables: `up` does not implement them.
 */
import { WgError } from '../errors.js';
import { isBase64Key, keyFromBase64 } from '../noise/keys.js';
import { parseAddress, parsePrefix, type Endpoint, type IpPrefix } from '../tunnel/ip.js';
import type { UapiSetOp } from './uapi.js';

export interface InterfaceAddress {
  /** 4 or 16 bytes, host bits kept (it is the interface's own address). */
  address: Uint8Array;
  cidr: number;
  /** As written (trimmed), for `ip address add`. */
  text: string;
}

export interface InterfaceConfig {
  privateKey: Uint8Array;
  listenPort: number | null;
  /** null = not given; 0 = "off" (cleared). */
  fwmark: number | null;
  addresses: InterfaceAddress[];
  mtu: number | null;
}

export interface PeerConfig {
  publicKey: Uint8Array;
  presharedKey: Uint8Array | null;
  allowedIps: IpPrefix[];
  /** Host may be a name; IPv6 literals are given without brackets. */
  endpoint: { host: string; port: number } | null;
  /** null = not given; 0 = "off". */
  persistentKeepalive: number | null;
}

export interface QuickConfig {
  interface: InterfaceConfig;
  peers: PeerConfig[];
}

const UNSUPPORTED = new Set([
  'dns',
  'table',
  'preup',
  'postup',
  'predown',
  'postdown',
  'saveconfig',
]);

/** The longest key name of the format (PersistentKeepalive) with room to spare. */
const NAME = /^[A-Za-z][A-Za-z0-9]{0,23}$/;
/** A run of base64 long enough to be most of a key. */
const KEYISH = /[A-Za-z0-9+/]{20,}/;

/**
 * A key name or section name as an error may repeat it, or its length only: a line whose "name"
 * is not a short word may be a pasted key (a PrivateKey line missing its `=` keeps the key's own
 * trailing `=`), and no error shows any part of a key.
 */
function shownName(s: string): string {
  return NAME.test(s) ? s : `(${s.length} characters, not shown)`;
}

/** A value as an error may repeat it: not when it holds what could be part of a key. */
function shownValue(s: string): string {
  return KEYISH.test(s) ? `(${s.length} characters, not shown)` : `"${s}"`;
}

type Section = 'none' | 'interface' | 'peer';

class Parser {
  private lineNo = 0;
  private section: Section = 'none';
  private sawInterface = false;
  private privateKey: Uint8Array | null = null;
  private listenPort: number | null = null;
  private fwmark: number | null = null;
  private mtu: number | null = null;
  private readonly addresses: InterfaceAddress[] = [];
  private readonly peers: { cfg: PeerConfig; line: number; hasKey: boolean }[] = [];

  constructor(private readonly file: string) {}

  fail(message: string, field?: string): never {
    throw new WgError('ERR_INVALID_CONFIG', `${this.file}:${this.lineNo}: ${message}`, field);
  }

  parse(text: string): QuickConfig {
    const lines = text.split(/\r?\n/);
    for (const raw of lines) {
      this.lineNo++;
      const hash = raw.indexOf('#');
      const line = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
      if (line === '') continue;
      if (line.startsWith('[')) {
        this.startSection(line);
        continue;
      }
      const eq = line.indexOf('=');
      const firstWord = line.split(/[\s=:]/)[0]!;
      if (eq < 0) this.fail(`expected "Key = Value", got a line starting ${shownName(firstWord)}`);
      const key = line.slice(0, eq).trim();
      const value = line.slice(eq + 1).trim();
      if (!NAME.test(key)) {
        this.fail(`expected "Key = Value", got a line starting ${shownName(firstWord)}`);
      }
      this.keyValue(key, value);
    }
    return this.finish();
  }

  private startSection(line: string): void {
    const name = line.toLowerCase();
    if (name === '[interface]') {
      this.section = 'interface';
      this.sawInterface = true;
    } else if (name === '[peer]') {
      this.section = 'peer';
      this.peers.push({
        cfg: {
          publicKey: new Uint8Array(32),
          presharedKey: null,
          allowedIps: [],
          endpoint: null,
          persistentKeepalive: null,
        },
        line: this.lineNo,
        hasKey: false,
      });
    } else {
      const name = /^\[[A-Za-z]{1,24}\]$/.test(line)
        ? line
        : `(${line.length} characters, not shown)`;
      this.fail(
        `unknown section ${name} (a section line holds only [Interface] or [Peer])`,
        'section',
      );
    }
  }

  private keyValue(key: string, value: string): void {
    const k = key.toLowerCase();
    if (UNSUPPORTED.has(k)) {
      this.fail(`${key} is not supported by wireguard-ts up; use wg-quick`, key);
    }
    if (this.section === 'none')
      this.fail(`${key} outside of an [Interface] or [Peer] section`, key);
    if (value === '') this.fail(`${key} has no value`, key);
    if (this.section === 'interface') this.interfaceKey(k, key, value);
    else this.peerKey(this.peers[this.peers.length - 1]!, k, key, value);
  }

  private key32(value: string, field: string): Uint8Array {
    if (!isBase64Key(value)) this.fail(`${field} is not a valid key (base64 of 32 bytes)`, field);
    return keyFromBase64(value, field);
  }

  private uint(value: string, max: number, field: string, what: string): number {
    if (!/^[0-9]+$/.test(value) || Number(value) > max)
      this.fail(`${field}: bad ${what} ${shownValue(value)}`, field);
    return Number(value);
  }

  private interfaceKey(k: string, key: string, value: string): void {
    switch (k) {
      case 'privatekey':
        this.privateKey = this.key32(value, key);
        return;
      case 'listenport':
        this.listenPort = this.uint(value, 65535, key, 'port');
        return;
      case 'fwmark':
        if (value.toLowerCase() === 'off') this.fwmark = 0;
        else if (/^0x[0-9a-fA-F]{1,8}$/.test(value)) this.fwmark = parseInt(value.slice(2), 16);
        else this.fwmark = this.uint(value, 0xffffffff, key, 'fwmark');
        return;
      case 'mtu':
        this.mtu = this.uint(value, 65535, key, 'MTU');
        if (this.mtu < 68) this.fail(`${key}: MTU ${this.mtu} is below 68`, key);
        return;
      case 'address':
        for (const item of splitList(value)) this.addresses.push(this.address(item, key));
        return;
      default:
        this.fail(`unknown key ${key} in [Interface]`, key);
    }
  }

  private address(item: string, field: string): InterfaceAddress {
    const slash = item.indexOf('/');
    const addrText = slash < 0 ? item : item.slice(0, slash);
    const bytes = parseAddress(addrText);
    if (!bytes) this.fail(`${field}: bad address ${shownValue(item)}`, field);
    const max = bytes.length * 8;
    let cidr = max;
    if (slash >= 0) {
      const c = item.slice(slash + 1);
      if (!/^[0-9]{1,3}$/.test(c) || Number(c) > max)
        this.fail(`${field}: bad prefix length in ${shownValue(item)}`, field);
      cidr = Number(c);
    }
    return { address: bytes, cidr, text: item };
  }

  private peerKey(
    peer: { cfg: PeerConfig; hasKey: boolean },
    k: string,
    key: string,
    value: string,
  ): void {
    const cfg = peer.cfg;
    switch (k) {
      case 'publickey':
        cfg.publicKey = this.key32(value, key);
        peer.hasKey = true;
        return;
      case 'presharedkey':
        cfg.presharedKey = this.key32(value, key);
        return;
      case 'allowedips':
        for (const item of splitList(value)) {
          try {
            cfg.allowedIps.push(parsePrefix(item));
          } catch {
            this.fail(`${key}: bad CIDR ${shownValue(item)}`, key);
          }
        }
        return;
      case 'endpoint':
        cfg.endpoint = this.endpoint(value, key);
        return;
      case 'persistentkeepalive':
        cfg.persistentKeepalive =
          value.toLowerCase() === 'off' ? 0 : this.uint(value, 65535, key, 'interval');
        return;
      default:
        this.fail(`unknown key ${key} in [Peer]`, key);
    }
  }

  private endpoint(value: string, field: string): { host: string; port: number } {
    let host: string;
    let portText: string;
    if (value.startsWith('[')) {
      const close = value.indexOf(']');
      if (close < 0 || value[close + 1] !== ':')
        this.fail(`${field}: bad endpoint ${shownValue(value)}`, field);
      host = value.slice(1, close);
      portText = value.slice(close + 2);
      const bytes = parseAddress(host);
      if (!bytes || bytes.length !== 16)
        this.fail(`${field}: bad IPv6 address in ${shownValue(value)}`, field);
    } else {
      const colon = value.lastIndexOf(':');
      if (colon < 0) this.fail(`${field}: endpoint ${shownValue(value)} needs host:port`, field);
      host = value.slice(0, colon);
      portText = value.slice(colon + 1);
      if (host.includes(':'))
        this.fail(`${field}: IPv6 endpoint needs brackets: ${shownValue(value)}`, field);
      if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9.])?$/.test(host)) {
        this.fail(`${field}: bad host in ${shownValue(value)}`, field);
      }
    }
    if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      this.fail(`${field}: bad port in ${shownValue(value)}`, field);
    }
    return { host, port: Number(portText) };
  }

  private finish(): QuickConfig {
    if (!this.sawInterface) {
      this.lineNo = 0;
      this.fail('no [Interface] section', 'Interface');
    }
    if (!this.privateKey) {
      this.lineNo = 0;
      this.fail('[Interface] has no PrivateKey', 'PrivateKey');
    }
    const seen = new Map<string, number>();
    for (const p of this.peers) {
      this.lineNo = p.line;
      if (!p.hasKey) this.fail('[Peer] has no PublicKey', 'PublicKey');
      const b64 = Buffer.from(p.cfg.publicKey).toString('base64');
      const first = seen.get(b64);
      if (first !== undefined) {
        this.fail(`duplicate peer ${b64} (first at line ${first})`, 'PublicKey');
      }
      seen.set(b64, p.line);
    }
    return {
      interface: {
        privateKey: this.privateKey,
        listenPort: this.listenPort,
        fwmark: this.fwmark,
        addresses: this.addresses,
        mtu: this.mtu,
      },
      peers: this.peers.map((p) => p.cfg),
    };
  }
}

function splitList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/**
 * Parses a wg-quick style file. Any error refuses the whole file with
 * WgError('ERR_INVALID_CONFIG', '<file>:<line>: ...', field).
 */
export function parseConfigFile(text: string, fileName: string): QuickConfig {
  return new Parser(fileName).parse(text);
}

/**
 * The operations `wg setconf` sends for this config: replace_peers, and per peer
 * replace_allowed_ips, so the device ends up exactly as the file says. `resolvedEndpoints[i]`
 * is peer i's endpoint after name resolution (null = none).
 */
export function toUapiOps(cfg: QuickConfig, resolvedEndpoints: (Endpoint | null)[]): UapiSetOp[] {
  const ops: UapiSetOp[] = [{ key: 'private_key', value: cfg.interface.privateKey }];
  if (cfg.interface.listenPort !== null)
    ops.push({ key: 'listen_port', value: cfg.interface.listenPort });
  if (cfg.interface.fwmark !== null) ops.push({ key: 'fwmark', value: cfg.interface.fwmark });
  ops.push({ key: 'replace_peers' });
  cfg.peers.forEach((p, i) => {
    ops.push({ key: 'public_key', value: p.publicKey });
    if (p.presharedKey) ops.push({ key: 'preshared_key', value: p.presharedKey });
    const ep = resolvedEndpoints[i] ?? null;
    if (ep) ops.push({ key: 'endpoint', value: ep });
    if (p.persistentKeepalive !== null) {
      ops.push({ key: 'persistent_keepalive_interval', value: p.persistentKeepalive });
    }
    ops.push({ key: 'replace_allowed_ips' });
    for (const a of p.allowedIps) ops.push({ key: 'allowed_ip', value: a, remove: false });
  });
  return ops;
}
