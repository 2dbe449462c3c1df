/**
 * ChaCha20-Poly1305 per packet, as the data path calls it: seal and open of one packet into a
 * caller-supplied buffer, at 64 B (keepalive-sized), 1420 B (a full MTU) and 64 KiB (a TSO
 * super-packet's worth), for both backends (node:crypto and @noble/ciphers).
 */
import { randomBytes } from 'node:crypto';
import { nobleAead, nodeAead, type Aead } from '../../src/noise/aead.js';
import type { MicroCase, MicroSuite } from './harness.js';

const SIZES = [64, 1420, 65536] as const;
const BACKENDS: readonly Aead[] = [nodeAead, nobleAead];
const key = new Uint8Array(randomBytes(32));

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

export const aeadSuite: MicroSuite = {
  name: 'aead',
  check() {
    for (const n of SIZES) {
      const plain = new Uint8Array(randomBytes(n));
      const a = new Uint8Array(n + 16);
      const b = new Uint8Array(n + 16);
      nodeAead.seal(key, 7, plain, null, a, 0);
      nobleAead.seal(key, 7, plain, null, b, 0);
      if (!equalBytes(a, b)) throw new Error(`aead: node and noble disagree at ${n} bytes`);
      for (const backend of BACKENDS) {
        const out = new Uint8Array(n);
        if (backend.open(key, 7, a, null, out, 0) !== n || !equalBytes(out, plain)) {
          throw new Error(`aead: ${backend.name} cannot open at ${n} bytes`);
        }
        a[n >> 1]! ^= 1;
        if (backend.open(key, 7, a, null, out, 0) !== -1)
          throw new Error(`aead: ${backend.name} accepted a forgery`);
        a[n >> 1]! ^= 1;
      }
    }
  },
  cases() {
    const out: MicroCase[] = [];
    for (const backend of BACKENDS) {
      for (const n of SIZES) {
        const plain = new Uint8Array(randomBytes(n));
        const sealed = new Uint8Array(n + 16);
        const opened = new Uint8Array(n);
        let counter = 0;
        out.push({
          name: `${backend.name} seal ${n} B`,
          bytes: n,
          fn: () => backend.seal(key, counter++, plain, null, sealed, 0),
        });
        const fixed = new Uint8Array(n + 16);
        backend.seal(key, 1, plain, null, fixed, 0);
        out.push({
          name: `${backend.name} open ${n} B`,
          bytes: n,
          fn: () => backend.open(key, 1, fixed, null, opened, 0),
        });
      }
    }
    return out;
  },
};
