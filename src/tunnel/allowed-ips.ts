/**
 * Cryptokey routing table (PROTOCOL.md §10): a path-compressed binary trie per address family
 * with longest-prefix match, after the kernel's allowedips.c and wireguard-go's allowedips.go.
 * A prefix belongs to exactly one value (peer); a per-value index of trie nodes makes listing and
 * removing a peer's prefixes proportional to that peer's count, not to the table. That index keeps
 * insertion order, which is the order `wg show` lists (the kernel and wireguard-go append a
 * prefix to the peer's list, and an insert of a prefix the peer already holds moves it last).
 *
 * Addresses are handled as big-endian 32-bit words held in int32 numbers (IPv4: one word; IPv6:
 * four), so a lookup compares masked words with integer ops and allocates nothing.
 */
import { WgError } from '../errors.js';
import type { IpFamily, IpPrefix } from './ip.js';

class TrieNode<T> {
  readonly family: IpFamily;
  readonly cidr: number;
  /** The prefix, host bits cleared, and its mask, as int32 words (unused words stay 0). */
  k0 = 0;
  k1 = 0;
  k2 = 0;
  k3 = 0;
  m0 = 0;
  m1 = 0;
  m2 = 0;
  m3 = 0;
  /** Where the branch bit (bit number `cidr`) is: word index and right shift. */
  bitWord = 0;
  bitShift = 0;
  /** False for the branching nodes path compression creates; those hold no prefix. */
  owned = false;
  value: T | undefined = undefined;
  zero: TrieNode<T> | null = null;
  one: TrieNode<T> | null = null;
  parent: TrieNode<T> | null = null;
  /** `key` holds the address words; bits past `cidr` are cleared here. */
  constructor(family: IpFamily, cidr: number, key: Int32Array) {
    this.family = family;
    this.cidr = cidr;
    const m = maskWords(cidr);
    this.m0 = m[0]!;
    this.m1 = m[1]!;
    this.m2 = m[2]!;
    this.m3 = m[3]!;
    this.k0 = key[0]! & this.m0;
    this.k1 = key[1]! & this.m1;
    this.k2 = key[2]! & this.m2;
    this.k3 = key[3]! & this.m3;
    this.bitWord = cidr >>> 5;
    this.bitShift = 31 - (cidr & 31);
  }
}

const maskScratch = new Int32Array(4);
/** The mask of a prefix length as four int32 words (a shared scratch array). */
function maskWords(cidr: number): Int32Array {
  for (let i = 0; i < 4; i++) {
    const bits = Math.max(0, Math.min(32, cidr - 32 * i));
    maskScratch[i] = bits === 0 ? 0 : bits === 32 ? -1 : (-1 << (32 - bits)) | 0;
  }
  return maskScratch;
}

function nodeWord<T>(n: TrieNode<T>, i: number): number {
  return i === 0 ? n.k0 : i === 1 ? n.k1 : i === 2 ? n.k2 : n.k3;
}

function bitAt(key: Int32Array, pos: number): number {
  return (key[pos >>> 5]! >>> (31 - (pos & 31))) & 1;
}

/** Number of leading bits `key` shares with node `n`'s prefix, capped at `max`. */
function commonBits<T>(n: TrieNode<T>, key: Int32Array, max: number): number {
  for (let i = 0; i < 4; i++) {
    const x = nodeWord(n, i) ^ key[i]!;
    if (x !== 0) return Math.min(max, i * 32 + Math.clz32(x));
  }
  return max;
}

/** Scratch key for insert/remove (never held across calls). */
const keyScratch = new Int32Array(4);
function loadKey(bytes: Uint8Array): Int32Array {
  keyScratch.fill(0);
  for (let i = 0; i < bytes.length; i++) {
    keyScratch[i >>> 2] = keyScratch[i >>> 2]! | (bytes[i]! << (24 - 8 * (i & 3)));
  }
  return keyScratch;
}

function nodePrefix<T>(n: TrieNode<T>): IpPrefix {
  const bytes = new Uint8Array(n.family === 4 ? 4 : 16);
  for (let i = 0; i < bytes.length; i++)
    bytes[i] = (nodeWord(n, i >>> 2) >>> (24 - 8 * (i & 3))) & 0xff;
  return { family: n.family, bytes, cidr: n.cidr };
}

export class AllowedIps<T> {
  private root4: TrieNode<T> | null = null;
  private root6: TrieNode<T> | null = null;
  private readonly byValue = new Map<T, Set<TrieNode<T>>>();
  private count = 0;

  /** Number of prefixes in the table. */
  get size(): number {
    return this.count;
  }

  /** Adds `prefix` for `value` (host bits are masked); a prefix held by another value moves. */
  insert(prefix: IpPrefix, value: T): void {
    const family = checkPrefix(prefix);
    const key = loadKey(prefix.bytes);
    const cidr = prefix.cidr;
    const root = family === 4 ? this.root4 : this.root6;
    if (root === null) {
      this.setRoot(family, this.own(new TrieNode<T>(family, cidr, key), value));
      return;
    }
    let node: TrieNode<T> = root;
    for (;;) {
      const common = commonBits(node, key, Math.min(node.cidr, cidr));
      if (common === node.cidr) {
        if (cidr === node.cidr) {
          this.own(node, value);
          return;
        }
        // `node` is a proper prefix of the new one: go down by the new prefix's bit.
        const bit = bitAt(key, node.cidr);
        const child = bit === 0 ? node.zero : node.one;
        if (child === null) {
          this.attach(node, bit, this.own(new TrieNode<T>(family, cidr, key), value));
          return;
        }
        node = child;
        continue;
      }
      // The new prefix leaves `node`'s path at bit `common`: put a node there above `node`.
      const parent = node.parent;
      const oldBit = parent === null ? 0 : parent.zero === node ? 0 : 1;
      let top: TrieNode<T>;
      if (common === cidr) {
        top = this.own(new TrieNode<T>(family, cidr, key), value);
      } else {
        top = new TrieNode<T>(family, common, key);
        this.attach(top, bitAt(key, common), this.own(new TrieNode<T>(family, cidr, key), value));
      }
      this.attach(top, (nodeWord(node, common >>> 5) >>> (31 - (common & 31))) & 1, node);
      if (parent === null) this.setRoot(family, top);
      else this.attach(parent, oldBit, top);
      return;
    }
  }

  /** Removes `prefix` if `value` holds it; returns whether it did. */
  remove(prefix: IpPrefix, value: T): boolean {
    const family = checkPrefix(prefix);
    const node = this.find(family, loadKey(prefix.bytes), prefix.cidr);
    if (node === null || !node.owned || node.value !== value) return false;
    this.disown(node);
    return true;
  }

  /** Removes every prefix of `value`. */
  removeValue(value: T): void {
    const nodes = this.byValue.get(value);
    if (nodes === undefined) return;
    for (const node of [...nodes]) this.disown(node);
  }

  /** Longest-prefix match of the IPv4 address at packet[offset .. offset + 4). */
  lookupV4(packet: Uint8Array, offset: number): T | undefined {
    const a =
      (packet[offset]! << 24) |
      (packet[offset + 1]! << 16) |
      (packet[offset + 2]! << 8) |
      packet[offset + 3]!;
    let best: T | undefined;
    let node = this.root4;
    while (node !== null) {
      if (((a ^ node.k0) & node.m0) !== 0) break;
      if (node.owned) best = node.value;
      if (node.cidr === 32) break;
      node = ((a >>> node.bitShift) & 1) === 0 ? node.zero : node.one;
    }
    return best;
  }

  /** Longest-prefix match of the IPv6 address at packet[offset .. offset + 16). */
  lookupV6(packet: Uint8Array, offset: number): T | undefined {
    const a0 = word(packet, offset);
    const a1 = word(packet, offset + 4);
    const a2 = word(packet, offset + 8);
    const a3 = word(packet, offset + 12);
    let best: T | undefined;
    let node = this.root6;
    while (node !== null) {
      if (
        ((a0 ^ node.k0) & node.m0) !== 0 ||
        ((a1 ^ node.k1) & node.m1) !== 0 ||
        ((a2 ^ node.k2) & node.m2) !== 0 ||
        ((a3 ^ node.k3) & node.m3) !== 0
      ) {
        break;
      }
      if (node.owned) best = node.value;
      if (node.cidr === 128) break;
      const w = node.bitWord;
      const a = w === 0 ? a0 : w === 1 ? a1 : w === 2 ? a2 : a3;
      node = ((a >>> node.bitShift) & 1) === 0 ? node.zero : node.one;
    }
    return best;
  }

  /** Longest-prefix match of a 4- or 16-byte address; undefined for any other length. */
  lookup(address: Uint8Array): T | undefined {
    if (address.length === 4) return this.lookupV4(address, 0);
    if (address.length === 16) return this.lookupV6(address, 0);
    return undefined;
  }

  /** The prefixes of `value` in the order they were (last) inserted. */
  prefixesOf(value: T): IpPrefix[] {
    const nodes = this.byValue.get(value);
    if (nodes === undefined) return [];
    const out: IpPrefix[] = [];
    for (const n of nodes) out.push(nodePrefix(n));
    return out;
  }

  /**
   * Trie nodes in use, found by walking the trie (for tests and diagnostics, not the data path).
   * Removal keeps it at most 2 × size − 1 per family: every node without a prefix branches.
   */
  countNodes(): number {
    let n = 0;
    const stack: TrieNode<T>[] = [];
    if (this.root4 !== null) stack.push(this.root4);
    if (this.root6 !== null) stack.push(this.root6);
    for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
      n++;
      if (node.zero !== null) stack.push(node.zero);
      if (node.one !== null) stack.push(node.one);
    }
    return n;
  }

  clear(): void {
    this.root4 = null;
    this.root6 = null;
    this.byValue.clear();
    this.count = 0;
  }

  private setRoot(family: IpFamily, node: TrieNode<T>): void {
    node.parent = null;
    if (family === 4) this.root4 = node;
    else this.root6 = node;
  }

  private attach(parent: TrieNode<T>, bit: number, child: TrieNode<T>): void {
    if (bit === 0) parent.zero = child;
    else parent.one = child;
    child.parent = parent;
  }

  /** Makes `value` the owner of `node` (last in its list), taking it from any previous owner. */
  private own(node: TrieNode<T>, value: T): TrieNode<T> {
    if (node.owned) {
      this.unindex(node);
    } else {
      this.count++;
    }
    node.owned = true;
    node.value = value;
    let set = this.byValue.get(value);
    if (set === undefined) this.byValue.set(value, (set = new Set()));
    set.add(node);
    return node;
  }

  private unindex(node: TrieNode<T>): void {
    const set = this.byValue.get(node.value as T);
    if (set === undefined) return;
    set.delete(node);
    if (set.size === 0) this.byValue.delete(node.value as T);
  }

  /** Drops `node`'s prefix, then removes nodes that no longer branch or hold anything. */
  private disown(node: TrieNode<T>): void {
    this.unindex(node);
    node.owned = false;
    node.value = undefined;
    this.count--;
    let n: TrieNode<T> | null = node;
    while (n !== null && !n.owned && (n.zero === null || n.one === null)) {
      const child: TrieNode<T> | null = n.zero ?? n.one;
      const parent: TrieNode<T> | null = n.parent;
      if (parent === null) {
        if (child === null) this.clearRoot(n.family);
        else this.setRoot(n.family, child);
        return;
      }
      const bit = parent.zero === n ? 0 : 1;
      if (child === null) {
        if (bit === 0) parent.zero = null;
        else parent.one = null;
      } else {
        this.attach(parent, bit, child);
      }
      n.parent = null;
      // Only the parent can have become a pointless branch; once a child replaced `n`, stop.
      n = child === null ? parent : null;
    }
  }

  private clearRoot(family: IpFamily): void {
    if (family === 4) this.root4 = null;
    else this.root6 = null;
  }

  private find(family: IpFamily, key: Int32Array, cidr: number): TrieNode<T> | null {
    let node = family === 4 ? this.root4 : this.root6;
    while (node !== null && node.cidr <= cidr) {
      if (commonBits(node, key, node.cidr) !== node.cidr) return null;
      if (node.cidr === cidr) return node;
      node = bitAt(key, node.cidr) === 0 ? node.zero : node.one;
    }
    return null;
  }
}

function word(p: Uint8Array, o: number): number {
  return (p[o]! << 24) | (p[o + 1]! << 16) | (p[o + 2]! << 8) | p[o + 3]!;
}

function checkPrefix(prefix: IpPrefix): IpFamily {
  const len = prefix.bytes.length;
  const max = len === 4 ? 32 : 128;
  if (
    (len !== 4 && len !== 16) ||
    prefix.family !== (len === 4 ? 4 : 6) ||
    !Number.isInteger(prefix.cidr) ||
    prefix.cidr < 0 ||
    prefix.cidr > max
  ) {
    throw new WgError('ERR_INVALID_CIDR', 'invalid IP prefix', 'allowed_ip');
  }
  return prefix.family;
}
