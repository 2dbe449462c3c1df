/**
 * The Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s handshake (whitepaper §5.4.2-5.4.5, PROTOCOL.md §3),
 * as pure functions over byte arrays. The prologue and the payloads are parameters: WireGuard
 * uses its IDENTIFIER as prologue, a TAI64N timestamp as the initiation payload and an empty
 * response payload, and the cacophony test vector uses others, so the same code passes both.
 *
 * Layout written and read (offsets relative to `off`):
 *   initiation: e (32) ‖ enc(s) (48) ‖ enc(payload) (payload + 16)
 *   response:   e (32) ‖ enc(payload) (payload + 16)
 */
import { dh, hash, kdf1, kdf2, kdf3, keyPairOf, type KeyPair } from './crypto.js';
import { open, seal } from './aead.js';

const enc = new TextEncoder();
export const CONSTRUCTION = enc.encode('Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s');
export const IDENTIFIER = enc.encode('WireGuard v1 zx2c4 Jason@zx2c4.com');

/** The chaining key and hash after the protocol name and the prologue. */
export interface Protocol {
  readonly ck0: Uint8Array;
  readonly h0: Uint8Array;
}

export function protocol(prologue: Uint8Array): Protocol {
  const ck0 = hash(CONSTRUCTION);
  return { ck0, h0: hash(ck0, prologue) };
}

export const WIREGUARD: Protocol = protocol(IDENTIFIER);

export type StaticKeys = KeyPair;

export function staticKeys(privateKey: Uint8Array): StaticKeys {
  return keyPairOf(privateKey);
}

/** State an initiator keeps between sending the initiation and consuming the response. */
export interface InitiatorState {
  ck: Uint8Array;
  h: Uint8Array;
  ephemeral: KeyPair;
  readonly remoteStatic: Uint8Array;
}

/** What a responder learned from a valid initiation. */
export interface ConsumedInitiation {
  ck: Uint8Array;
  h: Uint8Array;
  readonly remoteStatic: Uint8Array;
  readonly remoteEphemeral: Uint8Array;
  readonly payload: Uint8Array;
}

export interface TransportKeys {
  /** Initiator → responder. */
  readonly sendInitiator: Uint8Array;
  /** Responder → initiator. */
  readonly sendResponder: Uint8Array;
  readonly handshakeHash: Uint8Array;
}

export type ReadInitiationResult =
  | { readonly ok: true; readonly value: ConsumedInitiation }
  | { readonly ok: false; readonly reason: 'decrypt_failed' | 'unknown_peer' | 'bad_key' };

/**
 * The intermediate secrets of one handshake step (chaining keys before the last, the AEAD keys,
 * DH results, tau), zeroed when the step returns, on success and on every failure. What a step
 * returns (its final chaining key, the transport keys) is the caller's to wipe.
 */
class Scratch {
  private readonly bufs: Uint8Array[] = [];

  keep<T extends Uint8Array>(b: T): T {
    this.bufs.push(b);
    return b;
  }

  wipe(): void {
    scratchHook.beforeWipe?.(this.bufs);
    for (const b of this.bufs) b.fill(0);
  }
}

/**
 * Test hook: sees each step's intermediate secrets just before they are zeroed (tests check
 * which values they are, and that they are zero once the step has returned). Null in use.
 */
export const scratchHook: { beforeWipe: ((bufs: readonly Uint8Array[]) => void) | null } = {
  beforeWipe: null,
};

/**
 * Writes the initiation body. `ss` is the precomputed DH(s_i, s_r) for this peer. Returns null
 * when a DH result is all zero (a low-order remote key).
 */
export function writeInitiation(
  p: Protocol,
  local: StaticKeys,
  remoteStatic: Uint8Array,
  ss: Uint8Array,
  ephemeral: KeyPair,
  payload: Uint8Array,
  out: Uint8Array,
  off: number,
): InitiatorState | null {
  const s = new Scratch();
  try {
    let h = hash(p.h0, remoteStatic);
    const ck1 = s.keep(kdf1(p.ck0, ephemeral.publicKey));
    out.set(ephemeral.publicKey, off);
    h = hash(h, ephemeral.publicKey);
    const es = dh(ephemeral.keyObject, remoteStatic);
    if (!es) return null;
    s.keep(es);
    const [ck2, k1] = kdf2(ck1, es);
    s.keep(ck2);
    s.keep(k1);
    const encStatic = seal(k1, 0, local.publicKey, h);
    out.set(encStatic, off + 32);
    h = hash(h, encStatic);
    const [ck, k2] = kdf2(ck2, ss);
    s.keep(k2);
    const encPayload = seal(k2, 0, payload, h);
    out.set(encPayload, off + 80);
    h = hash(h, encPayload);
    return { ck, h, ephemeral, remoteStatic };
  } finally {
    s.wipe();
  }
}

/**
 * Reads an initiation body. `ssFor` returns the precomputed DH(s_r, s_i) for a known initiator
 * key, or null when the key belongs to no peer.
 */
export function readInitiation(
  p: Protocol,
  local: StaticKeys,
  msg: Uint8Array,
  off: number,
  payloadLength: number,
  ssFor: (remoteStatic: Uint8Array) => Uint8Array | null,
): ReadInitiationResult {
  const s = new Scratch();
  try {
    const remoteEphemeral = msg.slice(off, off + 32);
    let h = hash(p.h0, local.publicKey);
    const ck1 = s.keep(kdf1(p.ck0, remoteEphemeral));
    h = hash(h, remoteEphemeral);
    const es = dh(local.keyObject, remoteEphemeral);
    if (!es) return { ok: false, reason: 'bad_key' };
    s.keep(es);
    const [ck2, k1] = kdf2(ck1, es);
    s.keep(ck2);
    s.keep(k1);
    const encStatic = msg.subarray(off + 32, off + 80);
    const remoteStatic = open(k1, 0, encStatic, h);
    if (!remoteStatic) return { ok: false, reason: 'decrypt_failed' };
    h = hash(h, encStatic);
    const ss = ssFor(remoteStatic);
    if (!ss) return { ok: false, reason: 'unknown_peer' };
    const [ck, k2] = kdf2(ck2, ss);
    s.keep(k2);
    const encPayload = msg.subarray(off + 80, off + 80 + payloadLength + 16);
    const payload = open(k2, 0, encPayload, h);
    if (!payload) {
      s.keep(ck);
      return { ok: false, reason: 'decrypt_failed' };
    }
    h = hash(h, encPayload);
    return { ok: true, value: { ck, h, remoteStatic, remoteEphemeral, payload } };
  } finally {
    s.wipe();
  }
}

/** The transport keys from the last chaining key (which the caller's Scratch wipes). */
function finish(ck: Uint8Array, h: Uint8Array): TransportKeys {
  const [sendInitiator, sendResponder] = kdf2(ck, new Uint8Array(0));
  return { sendInitiator, sendResponder, handshakeHash: h };
}

/**
 * ck after DH(e, e) and DH(s or e, s or e), then split by the psk into the last chaining key,
 * tau and the payload key: the steps both sides of the response share. Null when a DH is zero.
 */
function responseKeys(
  s: Scratch,
  ck0: Uint8Array,
  ephemeralPublic: Uint8Array,
  ee: Uint8Array | null,
  se: Uint8Array | null,
  psk: Uint8Array,
): { ck: Uint8Array; tau: Uint8Array; k: Uint8Array } | null {
  const ck1 = s.keep(kdf1(ck0, ephemeralPublic));
  if (ee) s.keep(ee);
  if (se) s.keep(se);
  if (!ee || !se) return null;
  const ck2 = s.keep(kdf1(ck1, ee));
  const ck3 = s.keep(kdf1(ck2, se));
  const [ck, tau, k] = kdf3(ck3, psk);
  return { ck: s.keep(ck), tau: s.keep(tau), k: s.keep(k) };
}

/** Writes the response body; returns the transport keys, or null when a DH result is zero. */
export function writeResponse(
  st: ConsumedInitiation,
  psk: Uint8Array,
  ephemeral: KeyPair,
  payload: Uint8Array,
  out: Uint8Array,
  off: number,
): TransportKeys | null {
  const s = new Scratch();
  try {
    out.set(ephemeral.publicKey, off);
    let h = hash(st.h, ephemeral.publicKey);
    const ee = dh(ephemeral.keyObject, st.remoteEphemeral);
    const se = dh(ephemeral.keyObject, st.remoteStatic);
    const r = responseKeys(s, st.ck, ephemeral.publicKey, ee, se, psk);
    if (!r) return null;
    h = hash(h, r.tau);
    const encPayload = seal(r.k, 0, payload, h);
    out.set(encPayload, off + 32);
    h = hash(h, encPayload);
    return finish(r.ck, h);
  } finally {
    s.wipe();
  }
}

/** Reads a response body with the initiator's state; null when it does not authenticate. */
export function readResponse(
  st: InitiatorState,
  local: StaticKeys,
  psk: Uint8Array,
  msg: Uint8Array,
  off: number,
  payloadLength: number,
): { keys: TransportKeys; payload: Uint8Array } | null {
  const s = new Scratch();
  try {
    const remoteEphemeral = msg.subarray(off, off + 32);
    let h = hash(st.h, remoteEphemeral);
    const ee = dh(st.ephemeral.keyObject, remoteEphemeral);
    const se = dh(local.keyObject, remoteEphemeral);
    const r = responseKeys(s, st.ck, remoteEphemeral, ee, se, psk);
    if (!r) return null;
    h = hash(h, r.tau);
    const encPayload = msg.subarray(off + 32, off + 32 + payloadLength + 16);
    const payload = open(r.k, 0, encPayload, h);
    if (!payload) return null;
    h = hash(h, encPayload);
    return { keys: finish(r.ck, h), payload };
  } finally {
    s.wipe();
  }
}

/** Wipes an initiator's secrets once the handshake is over or abandoned. */
export function wipeInitiator(st: InitiatorState): void {
  st.ck.fill(0);
  st.h.fill(0);
  st.ephemeral.privateKey.fill(0);
}
