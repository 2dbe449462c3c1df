/**
 * The primitives of WireGuard (whitepaper §5.4, PROTOCOL.md §1): HASH = BLAKE2s-256, MAC = keyed
 * BLAKE2s-128, HMAC-BLAKE2s, KDF1/2/3 (HKDF over HMAC-BLAKE2s), X25519 with clamping and
 * rejection of an all-zero result.
 *
 * node:crypto (OpenSSL) serves HASH, HMAC and X25519: PERF.md measured it 2-30x faster than
 * noble. Keyed BLAKE2s is not exposed by Node, so MAC uses @noble/hashes unless a faster one is
 * installed (useKeyedBlake2s: the daemon installs the addon's, over the same OpenSSL).
 */
import {
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { blake2s } from '@noble/hashes/blake2.js';

export type Bytes = Uint8Array;

/** BLAKE2s-256 of the concatenation of `parts`. */
export function hash(...parts: Bytes[]): Bytes {
  const h = createHash('blake2s256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/** Keyed BLAKE2s writing `out.length` bytes of output into `out`. */
export type KeyedBlake2s = (key: Bytes, data: Bytes, out: Bytes) => void;

let fastMac: KeyedBlake2s | null = null;

/**
 * Installs a faster keyed BLAKE2s (the native addon's, ~16x noble) for MAC. It must reproduce
 * noble's output on a test input or it is refused (returns false) and noble stays in use.
 * `null` goes back to noble. The protocol core stays I/O-free: the daemon does the installing.
 */
export function useKeyedBlake2s(impl: KeyedBlake2s | null): boolean {
  if (impl === null) {
    fastMac = null;
    return true;
  }
  const key = Uint8Array.from({ length: 32 }, (_, i) => i);
  const data = Uint8Array.from({ length: 116 }, (_, i) => (i * 7) & 0xff);
  const out = new Uint8Array(16);
  try {
    impl(key, data, out);
  } catch {
    return false;
  }
  if (!equal(out, blake2s(data, { key, dkLen: 16 }))) return false;
  fastMac = impl;
  return true;
}

/** True when MAC runs on an installed implementation rather than noble. */
export function hasFastMac(): boolean {
  return fastMac !== null;
}

/**
 * Scratch for native calls. V8 keeps typed arrays of 64 bytes or less on its heap and moves one
 * off-heap (~0.7 us) the first time native code sees it; keys, cookies and outputs are that
 * small and usually fresh, so they go through views of one off-heap buffer instead.
 */
const SCRATCH = new Uint8Array(256);
const MAC_OUT = SCRATCH.subarray(0, 16);

/** `src` copied into an off-heap view at `at`, unless it is large enough to live off-heap. */
export function offHeap(scratch: Uint8Array, at: number, src: Bytes): Bytes {
  if (src.length > 64) return src;
  const v = scratch.subarray(at, at + src.length);
  v.set(src);
  return v;
}

/** Keyed BLAKE2s with a 16-byte output (mac1, mac2, cookies). Not HMAC. */
export function mac(key: Bytes, data: Bytes): Bytes {
  if (fastMac) {
    fastMac(offHeap(SCRATCH, 32, key), offHeap(SCRATCH, 64, data), MAC_OUT);
    const out = MAC_OUT.slice();
    SCRATCH.fill(0, 0, 128);
    return out;
  }
  return blake2s(data, { key, dkLen: 16 });
}

export function hmac(key: Bytes, ...parts: Bytes[]): Bytes {
  const h = createHmac('blake2s256', key);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

const ONE = Uint8Array.of(1);
const TWO = Uint8Array.of(2);
const THREE = Uint8Array.of(3);

/** KDF_n(key, input): HKDF with salt = key, empty info, n outputs of 32 bytes. */
export function kdf1(key: Bytes, input: Bytes): Bytes {
  const prk = hmac(key, input);
  const t1 = hmac(prk, ONE);
  prk.fill(0);
  return t1;
}

export function kdf2(key: Bytes, input: Bytes): [Bytes, Bytes] {
  const prk = hmac(key, input);
  const t1 = hmac(prk, ONE);
  const t2 = hmac(prk, t1, TWO);
  prk.fill(0);
  return [t1, t2];
}

export function kdf3(key: Bytes, input: Bytes): [Bytes, Bytes, Bytes] {
  const prk = hmac(key, input);
  const t1 = hmac(prk, ONE);
  const t2 = hmac(prk, t1, TWO);
  const t3 = hmac(prk, t2, THREE);
  prk.fill(0);
  return [t1, t2, t3];
}

// X25519 through OpenSSL KeyObjects built from raw keys with fixed DER prefixes.
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** Clamps a private key in place (RFC 7748 §5) and returns it. */
export function clamp(k: Bytes): Bytes {
  k[0] = k[0]! & 248;
  k[31] = (k[31]! & 127) | 64;
  return k;
}

export function privateKeyObject(priv: Bytes): KeyObject {
  return createPrivateKey({
    key: Buffer.concat([PKCS8_X25519, priv]),
    format: 'der',
    type: 'pkcs8',
  });
}

/**
 * A public KeyObject from raw bytes. JWK import costs ~7 us here against ~84 us for SPKI DER
 * (measured on Node 20), and it runs for every DH with a peer's key.
 */
export function publicKeyObject(pub: Bytes): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64url(pub) }, format: 'jwk' });
}

function b64url(b: Bytes): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
}

/** An X25519 key pair as raw bytes and the private KeyObject (for DH without re-importing). */
export interface KeyPair {
  readonly privateKey: Bytes;
  readonly publicKey: Bytes;
  readonly keyObject: KeyObject;
}

/**
 * A fresh key pair from OpenSSL's generator: ~40 us, against ~900 us for importing random bytes
 * as a private key and deriving its public key. Used for handshake ephemerals.
 */
export function generateKeyPair(): KeyPair {
  const { privateKey } = generateKeyPairSync('x25519');
  const jwk = privateKey.export({ format: 'jwk' });
  return {
    privateKey: new Uint8Array(Buffer.from(jwk.d!, 'base64url')),
    publicKey: new Uint8Array(Buffer.from(jwk.x!, 'base64url')),
    keyObject: privateKey,
  };
}

/** The key pair of given private bytes (static keys, test vectors). */
export function keyPairOf(priv: Bytes): KeyPair {
  const keyObject = privateKeyObject(priv);
  const jwk = createPublicKey(keyObject).export({ format: 'jwk' });
  return {
    privateKey: priv,
    publicKey: new Uint8Array(Buffer.from(jwk.x!, 'base64url')),
    keyObject,
  };
}

/** The X25519 public key of a (clamped or not: X25519 clamps) private key. */
export function publicKeyOf(priv: Bytes): Bytes {
  return keyPairOf(priv).publicKey;
}

export function isZero(b: Bytes): boolean {
  let acc = 0;
  for (let i = 0; i < b.length; i++) acc |= b[i]!;
  return acc === 0;
}

/** Constant-time equality for equal-length inputs. */
export function equal(a: Bytes, b: Bytes): boolean {
  if (a.length !== b.length) return false;
  let acc = 0;
  for (let i = 0; i < a.length; i++) acc |= a[i]! ^ b[i]!;
  return acc === 0;
}

/**
 * X25519(priv, pub). Returns null for an all-zero shared secret (a low-order public key), which
 * WireGuard treats as a failed handshake. `priv` may be a prepared KeyObject (static keys).
 */
export function dh(priv: Bytes | KeyObject, pub: Bytes): Bytes | null {
  let shared: Buffer;
  try {
    const privateKey = priv instanceof Uint8Array ? privateKeyObject(priv) : priv;
    shared = diffieHellman({ privateKey, publicKey: publicKeyObject(pub) });
  } catch {
    // OpenSSL refuses some low-order points outright; same outcome as an all-zero result.
    return null;
  }
  const out = new Uint8Array(shared);
  shared.fill(0); // Node's own copy of the shared secret
  return isZero(out) ? null : out;
}
