/**
 * ChaCha20-Poly1305 (RFC 8439) for transport data and handshake fields, behind one interface
 * with two backends: node:crypto (OpenSSL) and @noble/ciphers (portable, pure JS). The nonce is
 * WireGuard's: 4 zero bytes then the 64-bit little-endian counter. XChaCha20-Poly1305 (cookie
 * replies only) is noble's HChaCha20 in front of any backend.
 *
 * Both backends write into a caller-supplied buffer, so the data path can seal and open into
 * preallocated memory.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { chacha20poly1305, hchacha } from '@noble/ciphers/chacha.js';
import { AEAD_TAG_SIZE } from '../constants.js';
import { offHeap } from './crypto.js';

export interface Aead {
  readonly name: 'node' | 'noble' | 'native';
  /** As `seal`, with an explicit 12-byte nonce (for RFC 8439 vectors). */
  sealWithNonce(
    key: Uint8Array,
    nonce: Uint8Array,
    plaintext: Uint8Array,
    ad: Uint8Array | null,
    dst: Uint8Array,
    dstOffset: number,
  ): number;
  /** As `open`, with an explicit 12-byte nonce. */
  openWithNonce(
    key: Uint8Array,
    nonce: Uint8Array,
    sealed: Uint8Array,
    ad: Uint8Array | null,
    dst: Uint8Array,
    dstOffset: number,
  ): number;
  /**
   * Encrypts `plaintext` with nonce `counter` and writes ciphertext ‖ tag to `dst` at
   * `dstOffset`. Returns the number of bytes written (plaintext.length + 16).
   */
  seal(
    key: Uint8Array,
    counter: number,
    plaintext: Uint8Array,
    ad: Uint8Array | null,
    dst: Uint8Array,
    dstOffset: number,
  ): number;
  /**
   * Decrypts ciphertext ‖ tag into `dst` at `dstOffset`; returns the plaintext length, or -1
   * when authentication fails (nothing useful is left in dst then).
   */
  open(
    key: Uint8Array,
    counter: number,
    sealed: Uint8Array,
    ad: Uint8Array | null,
    dst: Uint8Array,
    dstOffset: number,
  ): number;
}

/**
 * Whole batches sealed or opened in place in one call (the native backend). Packet i is
 * slab[offsets[i] .. +lengths[i]) under nonce counters[i] and key keyIdx[i] (or key 0) of `keys`
 * (32-byte keys back to back).
 */
export interface BatchAead {
  /**
   * Encrypts packets 0..count in place, each followed by its 16-byte tag: the caller leaves
   * that room after every plaintext.
   */
  sealBatch(
    keys: Uint8Array,
    slab: Uint8Array,
    offsets: Int32Array,
    lengths: Int32Array,
    counters: Float64Array,
    count: number,
    keyIdx?: Int32Array,
  ): void;
  /**
   * Decrypts packets 0..count in place; lengths[i] counts ciphertext and tag, and the plaintext
   * (lengths[i] − 16 bytes) replaces the ciphertext. ok[i] = 1 when the tag verified, else 0 and
   * the packet's plaintext region is zeroed. Returns how many verified.
   */
  openBatch(
    keys: Uint8Array,
    slab: Uint8Array,
    offsets: Int32Array,
    lengths: Int32Array,
    counters: Float64Array,
    count: number,
    ok: Uint8Array,
    keyIdx?: Int32Array,
  ): number;
}

/**
 * A backend, possibly with batch calls (the device uses them when present) and an allocator for
 * send slabs (a crypto pool needs them in memory its workers share).
 */
export type AnyAead = Aead & Partial<BatchAead> & { allocSlab?(size: number): Uint8Array };

const nonceBuf = new Uint8Array(12);
const nonceView = new DataView(nonceBuf.buffer);

/** Fills the shared 12-byte nonce for `counter` (< 2^53). Used synchronously only. */
function nonceFor(counter: number): Uint8Array {
  nonceView.setUint32(4, counter >>> 0, true);
  nonceView.setUint32(8, Math.floor(counter / 0x1_0000_0000), true);
  return nonceBuf;
}

export const nodeAead: Aead = {
  name: 'node',
  seal(key, counter, plaintext, ad, dst, dstOffset) {
    return this.sealWithNonce(key, nonceFor(counter), plaintext, ad, dst, dstOffset);
  },
  open(key, counter, sealed, ad, dst, dstOffset) {
    return this.openWithNonce(key, nonceFor(counter), sealed, ad, dst, dstOffset);
  },
  sealWithNonce(key, nonce, plaintext, ad, dst, dstOffset) {
    const c = createCipheriv('chacha20-poly1305', key, nonce, {
      authTagLength: AEAD_TAG_SIZE,
    });
    if (ad && ad.length > 0) c.setAAD(ad, { plaintextLength: plaintext.length });
    const body = c.update(plaintext);
    c.final();
    dst.set(body, dstOffset);
    dst.set(c.getAuthTag(), dstOffset + plaintext.length);
    return plaintext.length + AEAD_TAG_SIZE;
  },
  openWithNonce(key, nonce, sealed, ad, dst, dstOffset) {
    const n = sealed.length - AEAD_TAG_SIZE;
    if (n < 0) return -1;
    const d = createDecipheriv('chacha20-poly1305', key, nonce, {
      authTagLength: AEAD_TAG_SIZE,
    });
    d.setAuthTag(sealed.subarray(n));
    if (ad && ad.length > 0) d.setAAD(ad, { plaintextLength: n });
    const body = d.update(sealed.subarray(0, n));
    try {
      d.final();
    } catch {
      return -1;
    }
    dst.set(body, dstOffset);
    return n;
  },
};

const EMPTY = new Uint8Array(0);

export const nobleAead: Aead = {
  name: 'noble',
  seal(key, counter, plaintext, ad, dst, dstOffset) {
    return this.sealWithNonce(key, nonceFor(counter), plaintext, ad, dst, dstOffset);
  },
  open(key, counter, sealed, ad, dst, dstOffset) {
    return this.openWithNonce(key, nonceFor(counter), sealed, ad, dst, dstOffset);
  },
  sealWithNonce(key, nonce, plaintext, ad, dst, dstOffset) {
    const len = plaintext.length + AEAD_TAG_SIZE;
    const out = dst.subarray(dstOffset, dstOffset + len);
    chacha20poly1305(key, nonce, ad ?? EMPTY).encrypt(plaintext, out);
    return len;
  },
  openWithNonce(key, nonce, sealed, ad, dst, dstOffset) {
    const n = sealed.length - AEAD_TAG_SIZE;
    if (n < 0) return -1;
    try {
      const out = dst.subarray(dstOffset, dstOffset + n);
      chacha20poly1305(key, nonce, ad ?? EMPTY).decrypt(sealed, out);
    } catch {
      return -1;
    }
    return n;
  },
};

/** The pure-JS or node:crypto backend by name (the native one is chosen by the daemon). */
export function aeadByName(name: string | undefined): Aead {
  if (name === undefined || name === '' || name === 'node') return nodeAead;
  if (name === 'noble') return nobleAead;
  throw new RangeError(`unknown crypto backend "${name}" (expected node or noble)`);
}

/** AEAD with a freshly allocated result; for handshake fields, where speed does not matter. */
export function seal(
  key: Uint8Array,
  counter: number,
  plaintext: Uint8Array,
  ad: Uint8Array,
): Uint8Array {
  const out = new Uint8Array(plaintext.length + AEAD_TAG_SIZE);
  nodeAead.seal(key, counter, plaintext, ad, out, 0);
  return out;
}

export function open(
  key: Uint8Array,
  counter: number,
  sealed: Uint8Array,
  ad: Uint8Array,
): Uint8Array | null {
  if (sealed.length < AEAD_TAG_SIZE) return null;
  const out = new Uint8Array(sealed.length - AEAD_TAG_SIZE);
  return nodeAead.open(key, counter, sealed, ad, out, 0) < 0 ? null : out;
}

const SIGMA = Uint32Array.of(0x61707865, 0x3320646e, 0x79622d32, 0x6b206574);

/**
 * XChaCha20-Poly1305's two halves: HChaCha20 (noble) turns the key and the first 16 nonce bytes
 * into a subkey, and ChaCha20-Poly1305 under that subkey with nonce 0^4 ‖ nonce[16..24] does
 * the rest, on whichever backend the caller runs (node:crypto by default; the daemon passes
 * its native one: the cookie reply is the per-message cost of a handshake flood).
 */
// Off-heap scratch for the subkey, IV, short plaintexts and the output (see crypto.ts offHeap).
const XSCRATCH = new Uint8Array(256);
const SUBKEY = XSCRATCH.subarray(0, 32);
const IV = XSCRATCH.subarray(32, 44);
// HChaCha20's words, reused: a cookie reply is per message under a flood.
const HK = new Uint32Array(8);
const HN = new Uint32Array(4);
const HO = new Uint32Array(8);

function le32(b: Uint8Array, i: number): number {
  return (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0;
}

/** HChaCha20(key, nonce[0..16]) into SUBKEY and 0^4 ‖ nonce[16..24] into IV. */
function xchachaSubkey(key: Uint8Array, nonce: Uint8Array): void {
  for (let i = 0; i < 8; i++) HK[i] = le32(key, i * 4);
  for (let i = 0; i < 4; i++) HN[i] = le32(nonce, i * 4);
  hchacha(SIGMA, HK, HN, HO);
  for (let i = 0; i < 8; i++) {
    const w = HO[i]!;
    SUBKEY[i * 4] = w & 0xff;
    SUBKEY[i * 4 + 1] = (w >>> 8) & 0xff;
    SUBKEY[i * 4 + 2] = (w >>> 16) & 0xff;
    SUBKEY[i * 4 + 3] = w >>> 24;
  }
  HO.fill(0);
  HK.fill(0);
  IV.fill(0, 0, 4);
  for (let i = 0; i < 8; i++) IV[4 + i] = nonce[16 + i]!;
}

/** XChaCha20-Poly1305 with a 24-byte nonce (cookie replies). */
export function xseal(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  ad: Uint8Array,
  aead: Aead = nodeAead,
): Uint8Array {
  xchachaSubkey(key, nonce);
  const len = plaintext.length + AEAD_TAG_SIZE;
  const small = len <= 64;
  const dst = small ? XSCRATCH.subarray(128, 128 + len) : new Uint8Array(len);
  aead.sealWithNonce(
    SUBKEY,
    IV,
    offHeap(XSCRATCH, 64, plaintext),
    offHeap(XSCRATCH, 192, ad),
    dst,
    0,
  );
  const out = small ? dst.slice() : dst;
  XSCRATCH.fill(0);
  return out;
}

export function xopen(
  key: Uint8Array,
  nonce: Uint8Array,
  sealed: Uint8Array,
  ad: Uint8Array,
  aead: Aead = nodeAead,
): Uint8Array | null {
  if (sealed.length < AEAD_TAG_SIZE) return null;
  xchachaSubkey(key, nonce);
  const out = new Uint8Array(sealed.length - AEAD_TAG_SIZE);
  const n = aead.openWithNonce(SUBKEY, IV, sealed, ad, out, 0);
  XSCRATCH.fill(0);
  return n < 0 ? null : out;
}
