/**
 * mac1, mac2 and cookie replies (whitepaper §5.4.4 and §5.4.7, PROTOCOL.md §4).
 *
 * mac1 = MAC(HASH("mac1----" ‖ receiver's public key), message up to mac1): proves the sender
 * knows whom it talks to; always checked before any DH. mac2 = MAC(cookie, message up to mac2):
 * proves, under load, that the sender can receive at its source address. A cookie is
 * MAC(secret, source address), with a secret that changes every two minutes.
 */
import { COOKIE_REFRESH_TIME_MS, COOKIE_SEND_MAX_AGE_MS } from '../constants.js';
import { blake2s } from '@noble/hashes/blake2.js';
import { equal, hasFastMac, hash, isZero, mac } from './crypto.js';
import { nodeAead, xopen, xseal, type Aead } from './aead.js';
import { CookieReply, writeU32 } from './messages.js';

const enc = new TextEncoder();
const LABEL_MAC1 = enc.encode('mac1----');
const LABEL_COOKIE = enc.encode('cookie--');

export function mac1Key(publicKey: Uint8Array): Uint8Array {
  return hash(LABEL_MAC1, publicKey);
}

export function cookieKey(publicKey: Uint8Array): Uint8Array {
  return hash(LABEL_COOKIE, publicKey);
}

/**
 * Keyed BLAKE2s-128 with a fixed key, prepared once: with noble the key block is compressed at
 * set-up and each message starts from a copy of that state (mac1 is checked on every handshake
 * message, so under a flood this is the hot path); an installed native MAC is used as is.
 */
class PreparedMac {
  private base: ReturnType<typeof blake2s.create> | null = null;
  constructor(private readonly key: Uint8Array) {}
  mac(data: Uint8Array): Uint8Array {
    if (hasFastMac()) return mac(this.key, data);
    this.base ??= blake2s.create({ key: this.key, dkLen: 16 });
    return this.base.clone().update(data).digest();
  }
}

/** Responder side: validates mac1/mac2 on handshake messages and makes cookie replies. */
export class CookieChecker {
  private readonly mac1: PreparedMac;
  private encryptionKey: Uint8Array;
  private secret: PreparedMac | null = null;
  private secretSetAt = -Infinity;
  private readonly issued = new SourceFilter();

  /** `aead` seals the cookie replies (after HChaCha20); node:crypto unless told otherwise. */
  constructor(
    localPublicKey: Uint8Array,
    private readonly aead: Aead = nodeAead,
  ) {
    this.mac1 = new PreparedMac(mac1Key(localPublicKey));
    this.encryptionKey = cookieKey(localPublicKey);
  }

  /** mac1 of a whole handshake message (its last 32 bytes are mac1 ‖ mac2). */
  checkMac1(msg: Uint8Array): boolean {
    const m1 = msg.length - 32;
    return equal(this.mac1.mac(msg.subarray(0, m1)), msg.subarray(m1, m1 + 16));
  }

  /**
   * The cookie `source` (address ‖ port bytes) would be given now: MAC(secret, source), with the
   * secret renewed when older than two minutes.
   */
  cookieFor(source: Uint8Array, nowMs: number, randomBytes: (n: number) => Uint8Array): Uint8Array {
    if (!this.secret || nowMs - this.secretSetAt > COOKIE_REFRESH_TIME_MS) {
      this.secret = new PreparedMac(randomBytes(32));
      this.secretSetAt = nowMs;
      this.issued.reset(randomBytes(12));
    }
    return this.secret.mac(source);
  }

  /** cookieFor, for a cookie that goes out in a reply: the source is remembered (mayHold). */
  issue(source: Uint8Array, nowMs: number, randomBytes: (n: number) => Uint8Array): Uint8Array {
    const cookie = this.cookieFor(source, nowMs, randomBytes);
    this.issued.add(source);
    return cookie;
  }

  /**
   * False when `source` cannot hold a cookie of the current secret: none was issued to it, so no
   * mac2 of its can be valid. True may be wrong (a filter), false never is; a message from such a
   * source can then be refused without hashing.
   */
  mayHold(source: Uint8Array, nowMs: number): boolean {
    if (!this.secret || nowMs - this.secretSetAt > COOKIE_REFRESH_TIME_MS) return false;
    return this.issued.has(source);
  }

  /** mac2 against the cookie this source would have been given (see cookieFor). */
  checkMac2(msg: Uint8Array, cookie: Uint8Array): boolean {
    const m2 = msg.length - 16;
    return equal(mac(cookie, msg.subarray(0, m2)), msg.subarray(m2));
  }

  /**
   * A cookie reply to `msg` (an initiation or response, already known to carry a valid mac1)
   * whose sender index is `senderIndex`, carrying `cookie` (from cookieFor).
   */
  createReply(
    msg: Uint8Array,
    senderIndex: number,
    cookie: Uint8Array,
    randomBytes: (n: number) => Uint8Array,
  ): Uint8Array {
    const reply = new Uint8Array(CookieReply.size);
    writeU32(reply, 0, 3);
    writeU32(reply, CookieReply.receiver, senderIndex);
    const nonce = randomBytes(24);
    reply.set(nonce, CookieReply.nonce);
    const m1 = msg.length - 32;
    const sealed = xseal(this.encryptionKey, nonce, cookie, msg.subarray(m1, m1 + 16), this.aead);
    reply.set(sealed, CookieReply.cookie);
    return reply;
  }
}

/** Initiator side (per peer): stamps macs on outgoing messages and consumes cookie replies. */
export class CookieGenerator {
  private mac1Key: Uint8Array;
  private decryptionKey: Uint8Array;
  private cookie: Uint8Array | null = null;
  private cookieAt = -Infinity;
  private lastMac1: Uint8Array | null = null;

  constructor(remotePublicKey: Uint8Array) {
    this.mac1Key = mac1Key(remotePublicKey);
    this.decryptionKey = cookieKey(remotePublicKey);
  }

  /** Writes mac1 and mac2 into the last 32 bytes of `msg`. */
  addMacs(msg: Uint8Array, nowMs: number): void {
    const m1 = msg.length - 32;
    const m2 = msg.length - 16;
    const m1v = mac(this.mac1Key, msg.subarray(0, m1));
    msg.set(m1v, m1);
    this.lastMac1 = m1v;
    if (this.cookie && nowMs - this.cookieAt < COOKIE_SEND_MAX_AGE_MS) {
      msg.set(mac(this.cookie, msg.subarray(0, m2)), m2);
    } else {
      msg.fill(0, m2);
    }
  }

  /** Decrypts a cookie reply for the last message we sent; true when a cookie was stored. */
  consumeReply(reply: Uint8Array, nowMs: number): boolean {
    if (!this.lastMac1) return false;
    const cookie = xopen(
      this.decryptionKey,
      reply.subarray(CookieReply.nonce, CookieReply.nonce + 24),
      reply.subarray(CookieReply.cookie, CookieReply.size),
      this.lastMac1,
    );
    if (!cookie || isZero(cookie)) return false;
    this.cookie = cookie;
    this.cookieAt = nowMs;
    // One cookie per mac1 sent, as the kernel does: a replayed reply changes nothing.
    this.lastMac1 = null;
    return true;
  }
}

/** Bits of the filter of sources given a cookie (1 MiB): ~0.5% false positives at 500,000. */
const FILTER_BITS = 1 << 23;

/**
 * A Bloom filter of the sources (address ‖ port) given a cookie under the current secret, with
 * three seeded FNV-1a hashes. Seeds are random per secret, so a flooder cannot pick sources
 * that collide with the ones it was given; it is emptied when the secret changes, as that
 * makes every earlier cookie invalid. Fixed memory whatever the number of sources.
 */
class SourceFilter {
  private readonly bits = new Uint32Array(FILTER_BITS / 32);
  private seeds = new Uint32Array(3);

  reset(seedBytes: Uint8Array): void {
    this.bits.fill(0);
    this.seeds = new Uint32Array(seedBytes.slice(0, 12).buffer);
  }

  add(source: Uint8Array): void {
    for (let k = 0; k < 3; k++) {
      const h = this.hash(source, this.seeds[k]!);
      this.bits[h >>> 5]! |= 1 << (h & 31);
    }
  }

  has(source: Uint8Array): boolean {
    for (let k = 0; k < 3; k++) {
      const h = this.hash(source, this.seeds[k]!);
      if ((this.bits[h >>> 5]! & (1 << (h & 31))) === 0) return false;
    }
    return true;
  }

  private hash(source: Uint8Array, seed: number): number {
    let h = (0x811c9dc5 ^ seed) >>> 0;
    for (let i = 0; i < source.length; i++) h = Math.imul(h ^ source[i]!, 0x01000193);
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    h ^= h >>> 12;
    return (h >>> 0) & (FILTER_BITS - 1);
  }
}
