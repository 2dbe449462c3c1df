/**
 * The native ChaCha20-Poly1305 backend: the addon's EVP calls over the OpenSSL inside Node
 * (src/tun/native/aead.c), as an `Aead` for the per-packet call sites and as `BatchAead` for the
 * hot path, which seals or opens a whole batch of packets in place in one call.
 *
 * Batch layout: packet i is slab[offsets[i] .. offsets[i] + lengths[i]) under nonce counters[i]
 * (WireGuard's: 4 zero bytes ‖ 64-bit little-endian counter, an exact integer < 2^53). `keys`
 * holds one or more 32-byte keys back to back; packet i uses key keyIdx[i], or key 0 when keyIdx
 * is omitted, so one receive batch may mix keypairs. Bad arguments (a packet outside the slab, a
 * bad counter or key index) throw before any packet is touched; a failed tag never throws.
 */
import { randomBytes, createCipheriv } from 'node:crypto';
import type { Aead, BatchAead } from '../noise/aead.js';
import { AEAD_TAG_SIZE } from '../constants.js';
import { WgError } from '../errors.js';
import { native } from './native.js';

export type { BatchAead } from '../noise/aead.js';

/** The addon's AEAD exports (the rest of the addon is typed in native.ts). */
interface NativeAeadAddon {
  aeadSealBatch(
    keys: Uint8Array,
    slab: Uint8Array,
    offsets: Int32Array,
    lengths: Int32Array,
    counters: Float64Array,
    count: number,
    keyIdx: Int32Array | undefined,
  ): void;
  aeadOpenBatch(
    keys: Uint8Array,
    slab: Uint8Array,
    offsets: Int32Array,
    lengths: Int32Array,
    counters: Float64Array,
    count: number,
    ok: Uint8Array,
    keyIdx: Int32Array | undefined,
  ): number;
  /** nonce: 12 bytes, or a counter; returns plaintext.length + 16. */
  aeadSeal(
    key: Uint8Array,
    nonce: Uint8Array | number,
    ad: Uint8Array | null,
    plaintext: Uint8Array,
    dst: Uint8Array,
    dstOffset: number,
  ): number;
  /**
   * How the addon seals: 'primitives' (OpenSSL's ChaCha20_ctr32 and Poly1305 composed in the
   * addon, when the node binary exports them and they agree with EVP) or 'evp'.
   */
  aeadEngine(): 'primitives' | 'evp';
  /** Returns the plaintext length, or -1 when the tag does not verify. */
  aeadOpen(
    key: Uint8Array,
    nonce: Uint8Array | number,
    ad: Uint8Array | null,
    sealed: Uint8Array,
    dst: Uint8Array,
    dstOffset: number,
  ): number;
}

let addon: NativeAeadAddon | undefined;
let availability: { ok: boolean; reason: string } | undefined;

/** Loads the addon and checks it against node:crypto once; the outcome is cached. */
function probe(): { ok: boolean; reason: string } {
  if (availability) return availability;
  try {
    const a = native() as unknown as Partial<NativeAeadAddon>;
    if (typeof a.aeadSeal !== 'function' || typeof a.aeadSealBatch !== 'function') {
      availability = { ok: false, reason: 'the native addon predates the AEAD (rebuild it)' };
      return availability;
    }
    // A build whose OpenSSL disagrees with node:crypto must never carry traffic.
    const key = new Uint8Array(randomBytes(32));
    const plain = new Uint8Array(randomBytes(61));
    const counter = 0x1_2345_6789;
    const got = new Uint8Array(plain.length + AEAD_TAG_SIZE);
    a.aeadSeal(key, counter, null, plain, got, 0);
    const nonce = Buffer.alloc(12);
    nonce.writeBigUInt64LE(BigInt(counter), 4);
    const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_SIZE });
    const want = Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
    if (!want.equals(got)) {
      availability = { ok: false, reason: 'the native AEAD disagrees with node:crypto' };
      return availability;
    }
    addon = a as NativeAeadAddon;
    availability = { ok: true, reason: '' };
  } catch (err) {
    availability = { ok: false, reason: (err as Error).message };
  }
  return availability;
}

function aead(): NativeAeadAddon {
  if (addon) return addon;
  const p = probe();
  if (!addon) throw new WgError('ERR_UNSUPPORTED', `native AEAD unavailable: ${p.reason}`);
  return addon;
}

/** Whether the native backend loads and agrees with node:crypto (checked once). */
export function nativeAeadAvailable(): boolean {
  return probe().ok;
}

/**
 * The addon's engine ('primitives' or 'evp'; WG_TS_AEAD_EVP=1 forces 'evp'), or '' when the
 * native backend is unavailable.
 */
export function nativeAeadEngine(): string {
  return probe().ok ? aead().aeadEngine() : '';
}

/** Why the native backend is unavailable ('' when it is available). */
export function nativeAeadUnavailableReason(): string {
  return probe().reason;
}

export const nativeAead: Aead & BatchAead = {
  name: 'native',
  seal(key, counter, plaintext, ad, dst, dstOffset) {
    return aead().aeadSeal(key, counter, ad, plaintext, dst, dstOffset);
  },
  open(key, counter, sealed, ad, dst, dstOffset) {
    return aead().aeadOpen(key, counter, ad, sealed, dst, dstOffset);
  },
  sealWithNonce(key, nonce, plaintext, ad, dst, dstOffset) {
    return aead().aeadSeal(key, nonce, ad, plaintext, dst, dstOffset);
  },
  openWithNonce(key, nonce, sealed, ad, dst, dstOffset) {
    return aead().aeadOpen(key, nonce, ad, sealed, dst, dstOffset);
  },
  sealBatch(keys, slab, offsets, lengths, counters, count, keyIdx) {
    aead().aeadSealBatch(keys, slab, offsets, lengths, counters, count, keyIdx);
  },
  openBatch(keys, slab, offsets, lengths, counters, count, ok, keyIdx) {
    return aead().aeadOpenBatch(keys, slab, offsets, lengths, counters, count, ok, keyIdx);
  },
};
