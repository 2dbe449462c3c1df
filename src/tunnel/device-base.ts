/**
 * The device's state and configuration: identity, peers, allowed IPs, receiver indices, drop
 * counters, and the helpers every layer uses. handshakes.ts adds the handshake messages and
 * device.ts the data path and timers on top (Device is the class to use).
 */
import {
  DEFAULT_MTU,
  PADDING_MULTIPLE,
  REKEY_AFTER_TIME_MS,
  REKEY_TIMEOUT_JITTER_MS,
  UNDER_LOAD_COOKIE_REPLIES_PER_SECOND,
} from '../constants.js';
import { DROP_REASONS, WgError, type DropReason } from '../errors.js';
import { nodeAead, type AnyAead } from '../noise/aead.js';
import { clamp, dh, equal, generateKeyPair, isZero, type KeyPair } from '../noise/crypto.js';
import { CookieChecker } from '../noise/cookie.js';
import { staticKeys, type StaticKeys } from '../noise/handshake.js';
import { shortKey } from '../noise/keys.js';
import { AllowedIps } from './allowed-ips.js';
import { IndexTable } from './index-table.js';
import { parseAddress, type Endpoint, type IpPrefix } from './ip.js';
import { Keypair } from './keypair.js';
import { Peer } from './peer.js';
import { GlobalBudget, keyOf, RateLimiter } from './rate-limiter.js';
import { BatchOpener, BatchScratch, SlabArena } from './transport.js';

/** Where the device's decisions go. Buffers handed out are owned by the receiver. */
export interface DeviceOutput {
  send(datagram: Uint8Array, to: Endpoint, peer: Peer | null): void;
  deliver(packet: Uint8Array, peer: Peer): void;
  /** Optional: told of every drop (the device counts them anyway). */
  drop?(reason: DropReason, peer: Peer | null): void;
}

export interface Logger {
  error(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
}

export interface DeviceEnv {
  randomBytes: (n: number) => Uint8Array;
  /** Wall clock (ms since the Unix epoch): TAI64N timestamps and last-handshake times only. */
  wallClockMs: () => number;
  /** Transport AEAD backend (batch calls used when it has them); node:crypto by default. */
  aead?: AnyAead;
  log?: Logger;
  /** Ephemeral key pairs for handshakes; OpenSSL's generator by default. */
  generateKeyPair?: () => KeyPair;
  /** Test-only: a shorter REKEY_AFTER_TIME (the soak forces frequent rekeys). */
  rekeyAfterTimeMs?: number;
  /**
   * Seal outgoing datagrams into a reused ring of this many bytes instead of fresh memory (less
   * garbage, lower RSS). Datagrams handed to `send()` are then only valid until the caller has
   * sent them, before its next call into the device; the driver does exactly that.
   */
  sendArenaBytes?: number;
}

const silent: Logger = { error() {}, info() {}, debug() {} };
/** The empty packet: a keepalive. */
export const EMPTY = new Uint8Array(0);

export abstract class DeviceBase {
  protected local: StaticKeys | null = null;
  protected checker: CookieChecker | null = null;
  listenPort = 0;
  fwmark = 0;
  /** Inner MTU, for padding; the driver keeps it equal to the TUN link's. */
  mtu = DEFAULT_MTU;
  /**
   * Routes through the tunnel with an MTU below the link's (prefix → MTU), or null: padding
   * stops at the route's MTU, as the kernel's. Kept by the driver from the host's routes.
   */
  routeMtus: AllowedIps<number> | null = null;
  readonly peers = new Map<string, Peer>();
  readonly allowedIps = new AllowedIps<Peer>();
  readonly drops: Record<DropReason, number>;
  protected readonly index: IndexTable<Keypair<Peer> | Peer>;
  protected readonly limiter = new RateLimiter();
  /** Cookie replies per source under load (see HandshakeLayer.receiveHandshake). */
  protected readonly cookieLimiter = new RateLimiter(undefined, true);
  /** Cookie replies under load to sources that are no peer's endpoint, for the whole device. */
  protected readonly strangerReplies = new GlobalBudget(UNDER_LOAD_COOKIE_REPLIES_PER_SECOND);
  private peerSources = new Set<number | string>();
  private peerSourcesAt = -Infinity;
  private peerSourcesCount = -1;
  protected readonly aead: AnyAead;
  protected readonly log: Logger;
  protected readonly rekeyAfterTimeMs: number;
  /** Where send slabs come from: the AEAD's shared arena, our own ring, or fresh memory. */
  protected readonly allocSlab: (size: number) => Uint8Array;
  protected underLoadUntil = -Infinity;
  protected hsWindowStart = 0;
  protected hsCount = 0;
  protected hsPrevCount = 0;
  protected scratch = new Uint8Array(65536 + PADDING_MULTIPLE);
  // Reused per batch: no allocation per packet for the batch bookkeeping. Sending and receiving
  // keep separate scratch: a receive batch can trigger a send (key confirmation flushes staged
  // packets) while it is still being walked.
  protected readonly tx = new BatchScratch();
  protected readonly rx = new BatchScratch();
  protected readonly opener = new BatchOpener();
  protected rxData: Uint8Array[] = [];
  protected rxSrc: Endpoint[] = [];
  protected rxKeypair: Keypair<Peer>[] = [];
  protected txPeers: Peer[] = [];

  constructor(protected readonly env: DeviceEnv) {
    this.index = new IndexTable(env.randomBytes);
    this.aead = env.aead ?? nodeAead;
    this.log = env.log ?? silent;
    this.rekeyAfterTimeMs = env.rekeyAfterTimeMs ?? REKEY_AFTER_TIME_MS;
    const aead = this.aead;
    const arena = env.sendArenaBytes ? new SlabArena(env.sendArenaBytes) : null;
    this.allocSlab = aead.allocSlab
      ? (n) => aead.allocSlab!(n)
      : arena
        ? (n) => arena.alloc(n)
        : (n) => new Uint8Array(n);
    this.drops = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
  }

  /**
   * Whether `address` (4 or 16 bytes) is a peer's endpoint (IPv6: its /64), as the rate limiters
   * key sources. Rebuilt at most once a second, and when the number of peers changes: it is
   * asked only under load, and a peer that just roamed still gets its cookie from the
   * device-wide budget.
   */
  protected isPeerSource(address: Uint8Array, now: number): boolean {
    if (now - this.peerSourcesAt >= 1000 || this.peers.size !== this.peerSourcesCount) {
      const set = new Set<number | string>();
      for (const peer of this.peers.values()) {
        const ep = peer.endpoint;
        const a = ep?.bytes
          ? ep.bytes.subarray(0, ep.bytes.length - 2)
          : ep
            ? parseAddress(ep.address)
            : null;
        const key = a ? keyOf(a) : null;
        if (key !== null) set.add(key);
      }
      this.peerSources = set;
      this.peerSourcesAt = now;
      this.peerSourcesCount = this.peers.size;
    }
    const key = keyOf(address);
    return key !== null && this.peerSources.has(key);
  }

  // ---- configuration -------------------------------------------------------------------

  get privateKey(): Uint8Array | null {
    return this.local?.privateKey ?? null;
  }

  get publicKey(): Uint8Array | null {
    return this.local?.publicKey ?? null;
  }

  /**
   * Sets (or with null, removes) the private key. As wireguard-go's SetPrivateKey: the same key
   * is a no-op; a peer with our new public key is removed; static-static DH is recomputed; and
   * current sessions expire so the next packet triggers a handshake with the new identity.
   */
  setPrivateKey(key: Uint8Array | null): void {
    if (key && isZero(key)) key = null;
    const old = this.local?.privateKey ?? null;
    if (old === null ? key === null : key !== null && equal(old, key)) return;
    this.local = key ? staticKeys(clamp(Uint8Array.from(key))) : null;
    this.checker = this.local ? new CookieChecker(this.local.publicKey, this.aead) : null;
    if (this.local) {
      const self = this.peers.get(Buffer.from(this.local.publicKey).toString('hex'));
      if (self) this.removePeer(self);
    }
    for (const peer of this.peers.values()) {
      this.computeStaticStatic(peer);
      peer.current?.expire();
      peer.next?.expire();
      const idx = peer.clearInitiation();
      if (idx !== null) this.index.delete(idx);
      // An initiation made with the old key is void: the next packet may handshake at once
      // (the kernel's wg_noise_expire_current_peer_keypairs, wireguard-go's ExpireCurrentKeypairs).
      peer.lastSentHandshake = -Infinity;
    }
  }

  protected computeStaticStatic(peer: Peer): void {
    peer.precomputedStaticStatic = this.local ? dh(this.local.keyObject, peer.publicKey) : null;
  }

  getPeer(publicKey: Uint8Array): Peer | undefined {
    return this.peers.get(Buffer.from(publicKey).toString('hex'));
  }

  /** Adds a peer (or returns the existing one). Returns null for our own public key (ignored). */
  addPeer(publicKey: Uint8Array): Peer | null {
    if (publicKey.length !== 32) {
      throw new WgError('ERR_INVALID_KEY', 'public key must be 32 bytes', 'public_key');
    }
    if (this.local && equal(publicKey, this.local.publicKey)) return null;
    const existing = this.getPeer(publicKey);
    if (existing) return existing;
    const peer = new Peer(publicKey);
    this.computeStaticStatic(peer);
    this.peers.set(peer.id, peer);
    this.log.debug(`peer ${shortKey(publicKey)} added`);
    return peer;
  }

  removePeer(peer: Peer): void {
    if (this.peers.get(peer.id) !== peer) return;
    this.zeroAndFlush(peer);
    this.allowedIps.removeValue(peer);
    this.peers.delete(peer.id);
    this.log.debug(`peer ${shortKey(peer.publicKey)} removed`);
  }

  removeAllPeers(): void {
    for (const peer of [...this.peers.values()]) this.removePeer(peer);
  }

  setPresharedKey(peer: Peer, key: Uint8Array | null): void {
    peer.presharedKey = key ? Uint8Array.from(key) : new Uint8Array(32);
  }

  setEndpoint(peer: Peer, endpoint: Endpoint): void {
    peer.endpoint = endpoint;
  }

  /** Turning persistent keepalive on sends a keepalive at once, as wireguard-go does. */
  setPersistentKeepalive(peer: Peer, seconds: number, now: number, out: DeviceOutput): void {
    const was = peer.persistentKeepaliveSeconds;
    peer.persistentKeepaliveSeconds = seconds;
    if (seconds === 0) peer.timers.persistentKeepalive = 0;
    if (was === 0 && seconds > 0) this.sendKeepalive(peer, now, out);
  }

  addAllowedIp(peer: Peer, prefix: IpPrefix): void {
    this.allowedIps.insert(prefix, peer);
  }

  removeAllowedIp(peer: Peer, prefix: IpPrefix): void {
    this.allowedIps.remove(prefix, peer);
  }

  clearAllowedIps(peer: Peer): void {
    this.allowedIps.removeValue(peer);
  }

  protected ephemeral(): KeyPair {
    return (this.env.generateKeyPair ?? generateKeyPair)();
  }

  protected jitter(): number {
    const b = this.env.randomBytes(2);
    return (b[0]! | (b[1]! << 8)) % REKEY_TIMEOUT_JITTER_MS;
  }

  // ---- helpers -------------------------------------------------------------------------

  protected freeKeypair(kp: Keypair<Peer>): void {
    if (this.index.get(kp.localIndex) === kp) this.index.delete(kp.localIndex);
    kp.wipe();
  }

  /** wireguard-go ZeroAndFlushAll: forget every session and the pending handshake. */
  protected zeroAndFlush(peer: Peer): void {
    for (const kp of peer.keypairs()) this.freeKeypair(kp);
    peer.previous = peer.current = peer.next = null;
    const idx = peer.clearInitiation();
    if (idx !== null) this.index.delete(idx);
    peer.staged = [];
  }

  protected drop(reason: DropReason, peer: Peer | null, out: DeviceOutput): void {
    this.drops[reason]++;
    out.drop?.(reason, peer);
  }

  /** Number of live receiver indices (handshakes and sessions); for tests and metrics. */
  get indexCount(): number {
    return this.index.size;
  }

  /** Sends a keepalive (or staged data) to the peer: the data path implements it. */
  protected abstract sendKeepalive(peer: Peer, now: number, out: DeviceOutput): void;
}
