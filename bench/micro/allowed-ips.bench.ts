/**
 * Allowed-IPs longest-prefix lookups (the per-packet routing step), in a table shaped like a
 * cluster: 1000 peers, each with a /32 (or /128) and a /24 (or /64), plus a few wide routes.
 * The trie is checked against a linear longest-prefix scan on random addresses first.
 */
import { randomBytes } from 'node:crypto';
import { AllowedIps } from '../../src/tunnel/allowed-ips.js';
import type { IpPrefix } from '../../src/tunnel/ip.js';
import type { MicroSuite } from './harness.js';

const PEERS = 1000;
const LOOKUP_SET = 1024;

function prefix(family: 4 | 6, bytes: Uint8Array, cidr: number): IpPrefix {
  const b = new Uint8Array(bytes);
  for (let bit = cidr; bit < b.length * 8; bit++) b[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return { family, bytes: b, cidr };
}

function matches(p: IpPrefix, addr: Uint8Array): boolean {
  for (let bit = 0; bit < p.cidr; bit++) {
    const m = 0x80 >> (bit & 7);
    if ((p.bytes[bit >> 3]! & m) !== (addr[bit >> 3]! & m)) return false;
  }
  return true;
}

interface Table {
  readonly trie: AllowedIps<number>;
  readonly entries: readonly { p: IpPrefix; peer: number }[];
  readonly addrs: readonly Uint8Array[];
}

function build(family: 4 | 6): Table {
  const len = family === 4 ? 4 : 16;
  const host = family === 4 ? 32 : 128;
  const subnet = family === 4 ? 24 : 64;
  const trie = new AllowedIps<number>();
  const entries: { p: IpPrefix; peer: number }[] = [];
  const add = (p: IpPrefix, peer: number): void => {
    trie.insert(p, peer);
    entries.push({ p, peer });
  };
  const base = new Uint8Array(len);
  base[0] = family === 4 ? 10 : 0xfd;
  add(prefix(family, base, 8), PEERS); // a wide route to a gateway peer
  for (let peer = 0; peer < PEERS; peer++) {
    const a = new Uint8Array(len);
    a[0] = base[0]!;
    a[1] = peer >> 8;
    a[2] = peer & 0xff;
    a[len - 1] = 1;
    add(prefix(family, a, subnet), peer);
    a[len - 1] = 2;
    add(prefix(family, a, host), (peer + 1) % PEERS);
  }
  // Addresses that hit /32s, /24s, the /8 and nothing, in a fixed random order.
  const addrs: Uint8Array[] = [];
  for (let i = 0; i < LOOKUP_SET; i++) {
    const a = new Uint8Array(randomBytes(len));
    const kind = i % 4;
    if (kind < 3) a[0] = base[0]!;
    if (kind < 2) a[1] = a[1]! % (PEERS >> 8);
    if (kind === 0) {
      for (let j = 3; j < len - 1; j++) a[j] = 0;
      a[len - 1] = 2;
    }
    addrs.push(a);
  }
  return { trie, entries, addrs };
}

function linear(t: Table, addr: Uint8Array): number | undefined {
  let best: { p: IpPrefix; peer: number } | undefined;
  for (const e of t.entries) if (matches(e.p, addr) && (!best || e.p.cidr > best.p.cidr)) best = e;
  return best?.peer;
}

const tables = { 4: build(4), 6: build(6) };

export const allowedIpsSuite: MicroSuite = {
  name: 'allowed-ips',
  check() {
    for (const family of [4, 6] as const) {
      const t = tables[family];
      const lookup = family === 4 ? t.trie.lookupV4.bind(t.trie) : t.trie.lookupV6.bind(t.trie);
      let hits = 0;
      for (const a of t.addrs) {
        const want = linear(t, a);
        if (lookup(a, 0) !== want)
          throw new Error(`allowed-ips: IPv${family} lookup disagrees with a linear scan`);
        if (want !== undefined) hits++;
      }
      if (hits < t.addrs.length / 2)
        throw new Error('allowed-ips: the lookup set hits too few prefixes');
    }
  },
  cases() {
    const v4 = tables[4];
    const v6 = tables[6];
    let i = 0;
    let j = 0;
    return [
      {
        name: `IPv4 lookup, ${v4.trie.size} prefixes`,
        fn: () => v4.trie.lookupV4(v4.addrs[i++ & (LOOKUP_SET - 1)]!, 0),
      },
      {
        name: `IPv6 lookup, ${v6.trie.size} prefixes`,
        fn: () => v6.trie.lookupV6(v6.addrs[j++ & (LOOKUP_SET - 1)]!, 0),
      },
    ];
  },
};
