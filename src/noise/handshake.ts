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
  let ck = p.ck0;
  let h = hash(p.h0, remoteStatic);
  ck = kdf1(ck, ephemeral.publicKey);
  out.set(ephemeral.publicKey, off);
  h = hash(h, ephemeral.publicKey);
  const es = dh(ephemeral.keyObject, remoteStatic);
  if (!es) return null;
  let k: Uint8Array;
  [ck, k] = kdf2(ck, es);
  const encStatic = seal(k, 0, local.publicKey, h);
  out.set(encStatic, off + 32);
  h = hash(h, encStatic);
  [ck, k] = kdf2(ck, ss);
  const encPayload = seal(k, 0, payload, h);
  out.set(encPayload, off + 80);
  h = hash(h, encPayload);
  k.fill(0);
  es.fill(0);
  return { ck, h, ephemeral, remoteStatic };
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
  const remoteEphemeral = msg.slice(off, off + 32);
  let ck = p.ck0;
  let h = hash(p.h0, local.publicKey);
  ck = kdf1(ck, remoteEphemeral);
  h = hash(h, remoteEphemeral);
  const es = dh(local.keyObject, remoteEphemeral);
  if (!es) return { ok: false, reason: 'bad_key' };
  let k: Uint8Array;
  [ck, k] = kdf2(ck, es);
  const encStatic = msg.subarray(off + 32, off + 80);
  const remoteStatic = open(k, 0, encStatic, h);
  if (!remoteStatic) return { ok: false, reason: 'decrypt_failed' };
  h = hash(h, encStatic);
  const ss = ssFor(remoteStatic);
  if (!ss) return { ok: false, reason: 'unknown_peer' };
  [ck, k] = kdf2(ck, ss);
  const encPayload = msg.subarray(off + 80, off + 80 + payloadLength + 16);
  const payload = open(k, 0, encPayload, h);
  if (!payload) return { ok: false, reason: 'decrypt_failed' };
  h = hash(h, encPayload);
  k.fill(0);
  es.fill(0);
  return { ok: true, value: { ck, h, remoteStatic, remoteEphemeral, payload } };
}

function finish(ck: Uint8Array, h: Uint8Array): TransportKeys {
  const [sendInitiator, sendResponder] = kdf2(ck, new Uint8Array(0));
  return { sendInitiator, sendResponder, handshakeHash: h };
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
  let ck = kdf1(st.ck, ephemeral.publicKey);
  out.set(ephemeral.publicKey, off);
  let h = hash(st.h, ephemeral.publicKey);
  const ee = dh(ephemeral.keyObject, st.remoteEphemeral);
  const se = dh(ephemeral.keyObject, st.remoteStatic);
  if (!ee || !se) return null;
  ck = kdf1(ck, ee);
  ck = kdf1(ck, se);
  const [ck2, tau, k] = kdf3(ck, psk);
  h = hash(h, tau);
  const encPayload = seal(k, 0, payload, h);
  out.set(encPayload, off + 32);
  h = hash(h, encPayload);
  k.fill(0);
  ee.fill(0);
  se.fill(0);
  return finish(ck2, h);
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
  const remoteEphemeral = msg.subarray(off, off + 32);
  let ck = kdf1(st.ck, remoteEphemeral);
  let h = hash(st.h, remoteEphemeral);
  const ee = dh(st.ephemeral.keyObject, remoteEphemeral);
  const se = dh(local.keyObject, remoteEphemeral);
  if (!ee || !se) return null;
  ck = kdf1(ck, ee);
  ck = kdf1(ck, se);
  const [ck2, tau, k] = kdf3(ck, psk);
  h = hash(h, tau);
  const encPayload = msg.subarray(off + 32, off + 32 + payloadLength + 16);
  const payload = open(k, 0, encPayload, h);
  k.fill(0);
  ee.fill(0);
  se.fill(0);
  if (!payload) return null;
  h = hash(h, encPayload);
  return { keys: finish(ck2, h), payload };
}

/** Wipes an initiator's secrets once the handshake is over or abandoned. */
export function wipeInitiator(st: InitiatorState): void {
  st.ck.fill(0);
  st.h.fill(0);
  st.ephemeral.privateKey.fill(0);
}
