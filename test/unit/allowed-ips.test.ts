/**
 * The allowed-IPs trie: table cases, then random prefixes of both families checked against a
 * linear longest-match reference, and a 130k-prefix insert and listing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AllowedIps } from '../../src/tunnel/allowed-ips.js';
import {
  formatPrefix,
  maskPrefix,
  parseAddress,
  parsePrefix,
  type IpPrefix,
} from '../../src/tunnel/ip.js';
import { WgError } from '../../src/errors.js';

interface Peer {
  readonly name: string;
}
const A: Peer = { name: 'A' };
const B: Peer = { name: 'B' };
const C: Peer = { name: 'C' };

function addr(s: string): Uint8Array {
  const b = parseAddress(s);
  assert.ok(b, s);
  return b;
}

function who(t: AllowedIps<Peer>, s: string): string | undefined {
  return t.lookup(addr(s))?.name;
}

function list(t: AllowedIps<Peer>, p: Peer): string[] {
  return t.prefixesOf(p).map(formatPrefix);
}

test('longest prefix wins over overlapping prefixes, IPv4', () => {
  const t = new AllowedIps<Peer>();
  t.insert(parsePrefix('10.0.0.0/8'), A);
  t.insert(parsePrefix('10.1.0.0/16'), B);
  t.insert(parsePrefix('10.1.2.3/32'), C);
  t.insert(parsePrefix('192.168.4.0/22'), B);
  assert.equal(who(t, '10.9.9.9'), 'A');
  assert.equal(who(t, '10.1.9.9'), 'B');
  assert.equal(who(t, '10.1.2.3'), 'C');
  assert.equal(who(t, '10.1.2.4'), 'B');
  assert.equal(who(t, '192.168.7.255'), 'B');
  assert.equal(who(t, '192.168.8.0'), undefined);
  assert.equal(who(t, '11.0.0.0'), undefined);
  assert.equal(who(t, '::a00:1'), undefined, 'families are separate');
  assert.equal(t.size, 4);
});

test('longest prefix wins over overlapping prefixes, IPv6', () => {
  const t = new AllowedIps<Peer>();
  t.insert(parsePrefix('2001:db8::/32'), A);
  t.insert(parsePrefix('2001:db8:1::/48'), B);
  t.insert(parsePrefix('2001:db8:1::77/128'), C);
  t.insert(parsePrefix('2001:db8:1:0:8000::/65'), A);
  assert.equal(who(t, '2001:db8:ffff::1'), 'A');
  assert.equal(who(t, '2001:db8:1::1'), 'B');
  assert.equal(who(t, '2001:db8:1::77'), 'C');
  assert.equal(who(t, '2001:db8:1::78'), 'B');
  assert.equal(who(t, '2001:db8:1:0:8000::1'), 'A');
  assert.equal(who(t, '2001:db8:1:0:7fff::1'), 'B');
  assert.equal(who(t, '2001:db9::'), undefined);
  assert.equal(who(t, '32.1.13.184'), undefined, 'families are separate');
});

test('/0 catches everything of its family only; /32 and /128 are exact', () => {
  const t = new AllowedIps<Peer>();
  t.insert(parsePrefix('0.0.0.0/0'), A);
  t.insert(parsePrefix('1.2.3.4/32'), B);
  assert.equal(who(t, '255.255.255.255'), 'A');
  assert.equal(who(t, '0.0.0.0'), 'A');
  assert.equal(who(t, '1.2.3.4'), 'B');
  assert.equal(who(t, '1.2.3.5'), 'A');
  assert.equal(who(t, '::'), undefined);
  t.insert(parsePrefix('::/0'), C);
  t.insert(parsePrefix('::1/128'), B);
  assert.equal(who(t, 'ffff::'), 'C');
  assert.equal(who(t, '::1'), 'B');
  assert.equal(who(t, '::2'), 'C');
  assert.equal(who(t, '0.0.0.1'), 'A');
  assert.deepEqual(list(t, A), ['0.0.0.0/0']);
  assert.deepEqual(list(t, B), ['1.2.3.4/32', '::1/128']);
});

test('host bits are masked on insert, also when the caller did not', () => {
  const t = new AllowedIps<Peer>();
  t.insert(parsePrefix('10.1.2.3/8'), A);
  // An IpPrefix built by hand with host bits still set.
  t.insert({ family: 6, bytes: addr('fd00::abcd'), cidr: 16 }, B);
  assert.deepEqual(list(t, A), ['10.0.0.0/8']);
  assert.deepEqual(list(t, B), ['fd00::/16']);
  assert.equal(who(t, '10.200.0.1'), 'A');
  assert.equal(who(t, 'fd00:1::'), 'B');
  assert.equal(t.remove({ family: 4, bytes: addr('10.9.9.9'), cidr: 8 }, A), true);
  assert.equal(t.size, 1);
});

test('re-inserting a prefix moves it to the new value', () => {
  const t = new AllowedIps<Peer>();
  t.insert(parsePrefix('10.0.0.0/24'), A);
  t.insert(parsePrefix('10.0.1.0/24'), A);
  t.insert(parsePrefix('10.0.0.0/24'), B);
  assert.equal(who(t, '10.0.0.1'), 'B');
  assert.equal(who(t, '10.0.1.1'), 'A');
  assert.deepEqual(list(t, A), ['10.0.1.0/24']);
  assert.deepEqual(list(t, B), ['10.0.0.0/24']);
  assert.equal(t.size, 2);
  t.insert(parsePrefix('10.0.0.0/24'), B); // same owner again: no change
  assert.equal(t.size, 2);
  assert.equal(t.remove(parsePrefix('10.0.0.0/24'), A), false, 'A no longer holds it');
  assert.equal(who(t, '10.0.0.1'), 'B');
});

test('remove takes only the exact prefix of the given value', () => {
  const t = new AllowedIps<Peer>();
  t.insert(parsePrefix('10.0.0.0/8'), A);
  t.insert(parsePrefix('10.0.0.0/16'), B);
  t.insert(parsePrefix('10.0.0.0/24'), A);
  assert.equal(t.remove(parsePrefix('10.0.0.0/12'), A), false, 'not present');
  assert.equal(t.remove(parsePrefix('10.0.0.0/16'), A), false, 'held by B');
  assert.equal(t.remove(parsePrefix('10.0.0.0/16'), B), true);
  assert.equal(t.remove(parsePrefix('10.0.0.0/16'), B), false, 'already gone');
  assert.equal(who(t, '10.0.1.1'), 'A');
  assert.equal(who(t, '10.0.0.1'), 'A');
  assert.equal(t.remove(parsePrefix('10.0.0.0/8'), A), true);
  assert.equal(who(t, '10.0.1.1'), undefined);
  assert.equal(who(t, '10.0.0.1'), 'A');
  assert.deepEqual(list(t, B), []);
  assert.equal(t.size, 1);
});

test('removeValue drops all prefixes of a peer and leaves the others', () => {
  const t = new AllowedIps<Peer>();
  for (const p of ['10.0.0.0/8', '10.1.0.0/16', 'fd00::/8', '192.168.0.1/32']) {
    t.insert(parsePrefix(p), A);
  }
  t.insert(parsePrefix('10.1.1.0/24'), B);
  t.insert(parsePrefix('fd00:1::/32'), B);
  t.removeValue(A);
  t.removeValue(C); // unknown: no-op
  assert.equal(t.size, 2);
  assert.deepEqual(list(t, A), []);
  assert.equal(who(t, '10.2.0.0'), undefined);
  assert.equal(who(t, '10.1.1.1'), 'B');
  assert.equal(who(t, 'fd00:1::1'), 'B');
  assert.equal(who(t, 'fd00:2::1'), undefined);
  t.removeValue(B);
  assert.equal(t.size, 0);
  assert.equal(who(t, '10.1.1.1'), undefined);
  // The emptied trie is usable again.
  t.insert(parsePrefix('10.1.1.0/24'), C);
  assert.equal(who(t, '10.1.1.1'), 'C');
});

test('prefixesOf lists in insertion order; re-inserting moves a prefix last (as wireguard-go)', () => {
  const t = new AllowedIps<Peer>();
  const order = ['fd00::/8', '10.0.0.0/16', '::/0', '10.0.0.0/8', '9.255.0.0/16', '::1/128'];
  for (const p of order) t.insert(parsePrefix(p), A);
  assert.deepEqual(list(t, A), order);
  t.insert(parsePrefix('10.0.0.0/16'), A);
  t.insert(parsePrefix('10.0.0.0/8'), B); // moves to B: leaves A's list
  t.insert(parsePrefix('10.0.0.0/8'), A); // and back: last again
  assert.deepEqual(list(t, A), [
    'fd00::/8',
    '::/0',
    '9.255.0.0/16',
    '::1/128',
    '10.0.0.0/16',
    '10.0.0.0/8',
  ]);
  assert.deepEqual(list(t, B), []);
  assert.equal(t.size, 6);
  t.remove(parsePrefix('::/0'), A);
  t.insert(parsePrefix('::/0'), A);
  assert.equal(list(t, A).at(-1), '::/0');
  const p = t.prefixesOf(A)[0]!;
  p.bytes[0] = 99; // callers get copies
  assert.deepEqual(list(t, A)[0], 'fd00::/8');
});

test('remove only takes a prefix from the value that holds it', () => {
  const t = new AllowedIps<Peer>();
  t.insert(parsePrefix('10.0.0.3/32'), A);
  t.insert(parsePrefix('10.0.0.0/24'), B);
  assert.equal(t.remove(parsePrefix('10.0.0.3/32'), B), false);
  assert.equal(t.remove(parsePrefix('10.0.0.0/25'), B), false, 'not an exact prefix');
  assert.equal(t.remove(parsePrefix('10.0.0.7/24'), B), true, 'host bits are masked');
  assert.equal(who(t, '10.0.0.3'), 'A');
  assert.equal(who(t, '10.0.0.4'), undefined);
  assert.equal(t.remove(parsePrefix('10.0.0.3/32'), A), true);
  assert.equal(t.size, 0);
});

test('lookupV4/lookupV6 read the address inside a packet at an offset', () => {
  const t = new AllowedIps<Peer>();
  t.insert(parsePrefix('10.0.0.0/8'), A);
  t.insert(parsePrefix('fd00::/8'), B);
  const v4 = new Uint8Array(20);
  v4.set(addr('10.2.3.4'), 16);
  assert.equal(t.lookupV4(v4, 16), A);
  assert.equal(t.lookupV4(v4, 12), undefined);
  const v6 = new Uint8Array(40);
  v6.set(addr('fd00::9'), 24);
  assert.equal(t.lookupV6(v6, 24), B);
  assert.equal(t.lookupV6(v6, 8), undefined);
  assert.equal(t.lookup(new Uint8Array(5)), undefined);
});

test('invalid prefixes are refused with ERR_INVALID_CIDR', () => {
  const t = new AllowedIps<Peer>();
  const bad: IpPrefix[] = [
    { family: 4, bytes: new Uint8Array(4), cidr: 33 },
    { family: 6, bytes: new Uint8Array(16), cidr: 129 },
    { family: 4, bytes: new Uint8Array(16), cidr: 8 },
    { family: 4, bytes: new Uint8Array(5), cidr: 8 },
    { family: 4, bytes: new Uint8Array(4), cidr: -1 },
  ];
  for (const p of bad) {
    assert.throws(
      () => t.insert(p, A),
      (e: unknown) => e instanceof WgError && e.code === 'ERR_INVALID_CIDR',
    );
  }
  assert.equal(t.size, 0);
});

test('clear empties both families', () => {
  const t = new AllowedIps<Peer>();
  t.insert(parsePrefix('10.0.0.0/8'), A);
  t.insert(parsePrefix('::/0'), A);
  t.clear();
  assert.equal(t.size, 0);
  assert.equal(who(t, '10.0.0.1'), undefined);
  assert.equal(who(t, '::1'), undefined);
  assert.deepEqual(list(t, A), []);
});

/** Deterministic xorshift32. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

/** True when `a` lies in `p`. */
function contains(p: IpPrefix, a: Uint8Array): boolean {
  if (a.length !== p.bytes.length) return false;
  const m = maskPrefix(a, p.cidr);
  return m.every((b, i) => b === p.bytes[i]);
}

test('random prefixes: trie agrees with a linear longest-match reference', () => {
  const next = rng(20261125);
  const peers: Peer[] = Array.from({ length: 12 }, (_, i) => ({ name: `p${i}` }));
  const t = new AllowedIps<Peer>();
  // The reference: one entry per prefix text, holding its current owner.
  const ref = new Map<string, { p: IpPrefix; v: Peer }>();
  // Few distinct high bytes, so prefixes overlap and nest a lot.
  const randomAddress = (len: number): Uint8Array => {
    const a = new Uint8Array(len);
    for (let i = 0; i < len; i++) a[i] = next() & 0xff;
    a[0] = len === 4 ? 10 + (next() & 1) : 0xfd;
    a[1] = a[1]! & 0x3;
    return a;
  };
  const randomPrefix = (): IpPrefix => {
    const v6 = (next() & 1) === 1;
    const max = v6 ? 128 : 32;
    const cidr = next() % 8 === 0 ? next() % (max + 1) : Math.min(max, 6 + (next() % (max - 4)));
    const bytes = maskPrefix(randomAddress(v6 ? 16 : 4), cidr);
    return { family: v6 ? 6 : 4, bytes, cidr };
  };
  const refLookup = (a: Uint8Array): Peer | undefined => {
    let best: { p: IpPrefix; v: Peer } | undefined;
    for (const e of ref.values()) {
      if (contains(e.p, a) && (best === undefined || e.p.cidr > best.p.cidr)) best = e;
    }
    return best?.v;
  };
  const inserted: IpPrefix[] = [];
  for (let round = 0; round < 6; round++) {
    for (let i = 0; i < 300; i++) {
      const p = randomPrefix();
      const v = peers[next() % peers.length]!;
      t.insert(p, v);
      ref.set(formatPrefix(p), { p, v });
      inserted.push(p);
    }
    // Remove some, sometimes with the wrong owner (must be a no-op).
    for (let i = 0; i < 60; i++) {
      const p = inserted[next() % inserted.length]!;
      const v = peers[next() % peers.length]!;
      const e = ref.get(formatPrefix(p));
      const removed = t.remove(p, v);
      assert.equal(removed, e !== undefined && e.v === v);
      if (removed) ref.delete(formatPrefix(p));
    }
    if (round === 3) {
      const gone = peers[next() % peers.length]!;
      t.removeValue(gone);
      for (const [k, e] of ref) if (e.v === gone) ref.delete(k);
    }
    assert.equal(t.size, ref.size);
    // Removal must not leave prefix-less nodes that no longer branch (a slow leak otherwise).
    assert.ok(t.countNodes() <= Math.max(0, 2 * t.size), `${t.countNodes()} nodes`);
    for (let i = 0; i < 1500; i++) {
      // Half the probes come from inside known prefixes, so deep matches are exercised.
      let a: Uint8Array;
      if ((next() & 1) === 0 && inserted.length > 0) {
        const p = inserted[next() % inserted.length]!;
        a = Uint8Array.from(p.bytes);
        for (let b = p.cidr; b < a.length * 8; b++) {
          if ((next() & 1) === 1) a[b >> 3] = a[b >> 3]! | (0x80 >> (b & 7));
        }
      } else {
        a = randomAddress((next() & 1) === 1 ? 16 : 4);
      }
      assert.equal(t.lookup(a), refLookup(a), `round ${round}: lookup of ${a.join('.')}`);
    }
    for (const peer of peers) {
      const want = [...ref.values()]
        .filter((e) => e.v === peer)
        .map((e) => formatPrefix(e.p))
        .sort();
      assert.deepEqual(list(t, peer).sort(), want, `prefixes of ${peer.name}`);
    }
  }
});

test('removing every prefix one by one leaves no nodes behind', () => {
  const t = new AllowedIps<Peer>();
  const texts = [
    '10.0.0.0/8',
    '10.1.0.0/16',
    '10.1.2.0/24',
    '10.1.3.0/24',
    '10.128.0.0/9',
    '0.0.0.0/0',
    '192.168.1.1/32',
    'fd00::/8',
    'fd00:1::/32',
    'fd00:2::/32',
    '::/0',
  ];
  // Each order removes leaves, branches and the root at different times.
  for (const order of [texts, [...texts].reverse(), [...texts].sort()]) {
    for (const s of texts) t.insert(parsePrefix(s), A);
    assert.ok(t.countNodes() >= texts.length);
    for (const s of order) {
      assert.equal(t.remove(parsePrefix(s), A), true, s);
      assert.ok(t.countNodes() <= 2 * t.size, `after removing ${s}: ${t.countNodes()} nodes`);
    }
    assert.equal(t.size, 0);
    assert.equal(t.countNodes(), 0);
  }
});

test('130,000 prefixes insert and list back well under a second', () => {
  const t = new AllowedIps<Peer>();
  const peers: Peer[] = Array.from({ length: 1000 }, (_, i) => ({ name: `p${i}` }));
  const start = performance.now();
  for (let i = 0; i < 130_000; i++) {
    const peer = peers[i % peers.length]!;
    if (i % 2 === 0) {
      t.insert(
        {
          family: 4,
          bytes: Uint8Array.of(10, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff),
          cidr: 32,
        },
        peer,
      );
    } else {
      const b = new Uint8Array(16);
      b[0] = 0xfd;
      b[12] = (i >> 24) & 0xff;
      b[13] = (i >> 16) & 0xff;
      b[14] = (i >> 8) & 0xff;
      b[15] = i & 0xff;
      t.insert({ family: 6, bytes: b, cidr: 128 }, peer);
    }
  }
  let listed = 0;
  for (const peer of peers) listed += t.prefixesOf(peer).length;
  const ms = performance.now() - start;
  assert.equal(t.size, 130_000);
  assert.equal(listed, 130_000);
  assert.deepEqual(list(t, peers[1]!).slice(0, 2), ['fd00::1/128', 'fd00::3e9/128']);
  assert.equal(t.lookup(addr('10.0.3.232'))?.name, 'p0'); // i = 1000
  // Generous for a shared CI machine; typically a few hundred ms.
  assert.ok(ms < 3000, `took ${ms.toFixed(0)} ms`);
  t.removeValue(peers[0]!);
  assert.equal(t.size, 129_870);
  assert.equal(t.lookup(addr('10.0.3.232')), undefined);
});
