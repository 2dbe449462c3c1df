/**
 * A peer's state (whitepaper §5, PROTOCOL.md §8-9): its keys and endpoint, the three keypair
 * slots, the pending handshake, the staged-packet queue, the five timers as deadlines, and its
 * counters. The logic that moves this state lives in device.ts; this file keeps the slots
 * consistent (rotation, freeing indices) and knows nothing about I/O.
 */
import { STAGED_PACKETS_MAX } from '../constants.js';
import { CookieGenerator } from '../noise/cookie.js';
import type { InitiatorState } from '../noise/handshake.js';
import { wipeInitiator } from '../noise/handshake.js';
import type { Endpoint } from './ip.js';
import type { Keypair } from './keypair.js';

/** A deadline in monotonic ms, or 0 when the timer is not armed. */
export type Deadline = number;

export interface PeerTimers {
  retransmitHandshake: Deadline;
  sendKeepalive: Deadline;
  newHandshake: Deadline;
  zeroKeyMaterial: Deadline;
  persistentKeepalive: Deadline;
  handshakeAttempts: number;
  needAnotherKeepalive: boolean;
  sentLastMinuteHandshake: boolean;
}

export interface PeerStats {
  rxBytes: number;
  txBytes: number;
  /** Wall-clock ms of the last completed handshake, 0 if none. */
  lastHandshakeWallMs: number;
}

export class Peer {
  readonly publicKey: Uint8Array;
  /** Hex of the public key: the peer's key in the device's map. */
  readonly id: string;
  presharedKey: Uint8Array = new Uint8Array(32);
  /** DH(our static, their static), or null without a private key or for a low-order key. */
  precomputedStaticStatic: Uint8Array | null = null;
  endpoint: Endpoint | null = null;
  persistentKeepaliveSeconds = 0;
  readonly cookie: CookieGenerator;

  previous: Keypair<Peer> | null = null;
  current: Keypair<Peer> | null = null;
  next: Keypair<Peer> | null = null;

  /** Our pending initiation: its index and the Noise state to read the response with. */
  initiation: { index: number; state: InitiatorState } | null = null;
  /** When we last sent an initiation (or a response): at most one per REKEY_TIMEOUT. */
  lastSentHandshake = -Infinity;
  /** The current initiation was already resent at once after a cookie reply (once per attempt). */
  resentForCookie = false;
  /** Greatest TAI64N accepted from this peer (replay protection for initiations). */
  latestTimestamp: Uint8Array | null = null;
  lastInitiationConsumed = -Infinity;

  /** Packets of the batch being sealed (see Device.sendPackets); empty between calls. */
  txBatch: Uint8Array[] = [];
  /** Packets waiting for a session; oldest dropped beyond STAGED_PACKETS_MAX. */
  staged: Uint8Array[] = [];

  readonly timers: PeerTimers = {
    retransmitHandshake: 0,
    sendKeepalive: 0,
    newHandshake: 0,
    zeroKeyMaterial: 0,
    persistentKeepalive: 0,
    handshakeAttempts: 0,
    needAnotherKeepalive: false,
    sentLastMinuteHandshake: false,
  };

  readonly stats: PeerStats = { rxBytes: 0, txBytes: 0, lastHandshakeWallMs: 0 };

  constructor(publicKey: Uint8Array) {
    this.publicKey = Uint8Array.from(publicKey);
    this.id = Buffer.from(publicKey).toString('hex');
    this.cookie = new CookieGenerator(publicKey);
  }

  /** Stages a copy of a packet; returns false when the oldest had to be dropped to make room. */
  stage(packet: Uint8Array): boolean {
    this.staged.push(Uint8Array.from(packet));
    if (this.staged.length > STAGED_PACKETS_MAX) {
      this.staged.shift();
      return false;
    }
    return true;
  }

  /** The keypairs currently held, for freeing their indices. */
  keypairs(): Keypair<Peer>[] {
    const out: Keypair<Peer>[] = [];
    if (this.previous) out.push(this.previous);
    if (this.current) out.push(this.current);
    if (this.next) out.push(this.next);
    return out;
  }

  /** Forgets the pending initiation and wipes its secrets. Returns its index, if any. */
  clearInitiation(): number | null {
    if (!this.initiation) return null;
    const idx = this.initiation.index;
    wipeInitiator(this.initiation.state);
    this.initiation = null;
    return idx;
  }
}
