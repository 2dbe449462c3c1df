/**
 * Who claimed which address range: a binary trie per address family over prefix bits, in typed
 * arrays so 55,000 pod addresses cost a few MB and a lookup is at most 128 steps. `overlap`
 * finds a claim that contains the prefix or lies inside it, which is what lets one Node's
 * announcement capture another's traffic (a /25 inside our /24 wins by longest match). Pure.
 */
import type { IpPrefix } from '../../tunnel/ip.js';

class Trie {
  private left = new Int32Array(1024);
  private right = new Int32Array(1024);
  /** Owner index of a prefix ending at this node, -1 when none. */
  private owner = new Int32Array(1024).fill(-1);
  /** Some owner index within this node's subtree (itself included), -1 when none. */
  private below = new Int32Array(1024).fill(-1);
  private size = 1;

  private grow(): void {
    const n = this.left.length * 2;
    const g = (a: Int32Array, fill: number) => {
      const b = new Int32Array(n).fill(fill);
      b.set(a);
      return b;
    };
    this.left = g(this.left, 0);
    this.right = g(this.right, 0);
    this.owner = g(this.owner, -1);
    this.below = g(this.below, -1);
  }

  insert(bytes: Uint8Array, cidr: number, who: number): void {
    let node = 0;
    if (this.below[0] === -1) this.below[0] = who;
    for (let i = 0; i < cidr; i++) {
      const bit = (bytes[i >> 3]! >> (7 - (i & 7))) & 1;
      const arr = bit ? this.right : this.left;
      let next = arr[node]!;
      if (next === 0) {
        if (this.size === this.left.length) this.grow();
        next = this.size++;
        (bit ? this.right : this.left)[node] = next;
      }
      node = next;
      if (this.below[node] === -1) this.below[node] = who;
    }
    if (this.owner[node] === -1) this.owner[node] = who;
  }

  /** An owner of a prefix containing, equal to, or inside the given one; -1 when none. */
  overlap(bytes: Uint8Array, cidr: number): number {
    let node = 0;
    for (let i = 0; i < cidr; i++) {
      if (this.owner[node]! >= 0) return this.owner[node]!;
      const bit = (bytes[i >> 3]! >> (7 - (i & 7))) & 1;
      node = (bit ? this.right : this.left)[node]!;
      if (node === 0) return -1;
    }
    return this.below[node]!;
  }
}

export class PrefixClaims<T> {
  private readonly tries = { 4: new Trie(), 6: new Trie() };
  private readonly owners: T[] = [];
  private readonly index = new Map<T, number>();

  private id(owner: T): number {
    let i = this.index.get(owner);
    if (i === undefined) {
      i = this.owners.length;
      this.owners.push(owner);
      this.index.set(owner, i);
    }
    return i;
  }

  /** Records `owner` for `p`; an exact prefix claimed twice keeps its first owner. */
  claim(p: IpPrefix, owner: T): void {
    this.tries[p.family].insert(p.bytes, p.cidr, this.id(owner));
  }

  /** The owner of some claim overlapping `p`, or undefined. */
  overlap(p: IpPrefix): T | undefined {
    const i = this.tries[p.family].overlap(p.bytes, p.cidr);
    return i < 0 ? undefined : this.owners[i];
  }
}
