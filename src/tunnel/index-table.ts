/**
 * Receiver indices (whitepaper §5.4.2): random 32-bit numbers we hand to peers so that their
 * messages find the pending handshake or the keypair they belong to without any lookup by key.
 */

export class IndexTable<V> {
  private readonly map = new Map<number, V>();

  constructor(private readonly randomBytes: (n: number) => Uint8Array) {}

  /** Allocates a fresh index that is not in use, and binds it to `value`. */
  allocate(value: V): number {
    for (;;) {
      const b = this.randomBytes(4);
      const idx = (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
      if (!this.map.has(idx)) {
        this.map.set(idx, value);
        return idx;
      }
    }
  }

  /** Rebinds an existing index (a handshake index becoming the keypair's). */
  replace(index: number, value: V): void {
    this.map.set(index, value);
  }

  get(index: number): V | undefined {
    return this.map.get(index);
  }

  delete(index: number): void {
    this.map.delete(index);
  }

  get size(): number {
    return this.map.size;
  }
}
