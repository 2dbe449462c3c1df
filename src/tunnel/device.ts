/**
 * The WireGuard device as a sans-I/O state machine (like boringtun's Tunn and wireguard-go's
 * device): it takes an outbound IP packet, an inbound datagram with its source, or a tick at a
 * monotonic time `now` (ms), and answers through a DeviceOutput: datagrams to send, packets to
 * deliver to the TUN, drops with a reason. It reads no clock, opens no socket, and draws
 * randomness only from the injected environment, so every timer rule is testable on a virtual
 * clock.
 *
 * Outbound: allowed-IPs lookup by destination → peer → stage → (session ready?) counter, pad,
 * seal → send to the peer's endpoint; else initiate a handshake.
 * Inbound: classify by type and exact length → handshake messages: mac1, load check (cookie
 * reply or rate limit), Noise → session; transport: index → keypair → open → replay window →
 * key confirmation → roaming → source address must route back to the same peer → deliver.
 * Timers and their rules follow wireguard-go's timers.go (PROTOCOL.md §9).
 */
import {
  DEFAULT_MTU,
  INITIATIONS_PER_SECOND,
  KEEPALIVE_TIMEOUT_MS,
  MAX_TIMER_HANDSHAKES,
  PADDING_MULTIPLE,
  REJECT_AFTER_MESSAGES,
  REJECT_AFTER_TIME_MS,
  REKEY_AFTER_MESSAGES,
  REKEY_AFTER_TIME_MS,
  REKEY_TIMEOUT_JITTER_MS,
  REKEY_TIMEOUT_MS,
  TRANSPORT_HEADER_SIZE,
  UNDER_LOAD_AFTER_TIME_MS,
  UNDER_LOAD_HANDSHAKES_PER_SECOND,
  ZERO_KEYS_AFTER_MS,
  AEAD_TAG_SIZE,
} from '../constants.js';
import { DROP_REASONS, WgError, type DropReason } from '../errors.js';
import { nodeAead, type AnyAead } from '../noise/aead.js';
import { clamp, dh, equal, generateKeyPair, isZero, type KeyPair } from '../noise/crypto.js';
import { CookieChecker } from '../noise/cookie.js';
import {
  readInitiation,
  readResponse,
  staticKeys,
  writeInitiation,
  writeResponse,
  WIREGUARD,
  type StaticKeys,
} from '../noise/handshake.js';
import { shortKey } from '../noise/keys.js';
import {
  classify,
  Initiation,
  readCounter,
  readU32,
  Response,
  Transport,
  writeU32,
} from '../noise/messages.js';
import { compareTai64n, tai64n, TAI64N_SIZE } from '../noise/tai64n.js';
import { AllowedIps } from './allowed-ips.js';
import { IndexTable } from './index-table.js';
import {
  ipPacketLength,
  ipVersion,
  IPV4_DST_OFFSET,
  IPV4_SRC_OFFSET,
  IPV6_DST_OFFSET,
  IPV6_SRC_OFFSET,
  parseAddress,
  sameEndpoint,
  type Endpoint,
  type IpPrefix,
} from './ip.js';
import { Keypair } from './keypair.js';
import { Peer } from './peer.js';
import { RateLimiter } from './rate-limiter.js';
import {
  timersAnyAuthenticatedPacketReceived,
  timersAnyAuthenticatedPacketSent,
  timersAnyAuthenticatedPacketTraversal,
  timersDataReceived,
  timersDataSent,
  timersHandshakeComplete,
  timersSessionDerived,
} from './timers.js';
import { BatchOpener, BatchScratch, sealPackets } from './transport.js';

export { paddedLength } from './transport.js';

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
}

const silent: Logger = { error() {}, info() {}, debug() {} };
const EMPTY = new Uint8Array(0);

export class Device {
  private local: StaticKeys | null = null;
  private checker: CookieChecker | null = null;
  listenPort = 0;
  fwmark = 0;
  /** Inner MTU, for padding; the driver keeps it equal to the TUN link's. */
  mtu = DEFAULT_MTU;
  readonly peers = new Map<string, Peer>();
  readonly allowedIps = new AllowedIps<Peer>();
  readonly drops: Record<DropReason, number>;
  private readonly index: IndexTable<Keypair<Peer> | Peer>;
  private readonly limiter = new RateLimiter();
  private readonly aead: AnyAead;
  private readonly log: Logger;
  private readonly rekeyAfterTimeMs: number;
  private underLoadUntil = -Infinity;
  private hsWindowStart = 0;
  private hsCount = 0;
  private hsPrevCount = 0;
  private scratch = new Uint8Array(65536 + PADDING_MULTIPLE);
  // Reused per batch: no allocation per packet for the batch bookkeeping. Sending and receiving
  // keep separate scratch: a receive batch can trigger a send (key confirmation flushes staged
  // packets) while it is still being walked.
  private readonly tx = new BatchScratch();
  private readonly rx = new BatchScratch();
  private readonly opener = new BatchOpener();
  private rxData: Uint8Array[] = [];
  private rxSrc: Endpoint[] = [];
  private rxKeypair: Keypair<Peer>[] = [];
  private txPeers: Peer[] = [];

  constructor(private readonly env: DeviceEnv) {
    this.index = new IndexTable(env.randomBytes);
    this.aead = env.aead ?? nodeAead;
    this.log = env.log ?? silent;
    this.rekeyAfterTimeMs = env.rekeyAfterTimeMs ?? REKEY_AFTER_TIME_MS;
    this.drops = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
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
    this.checker = this.local ? new CookieChecker(this.local.publicKey) : null;
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
    }
  }

  private computeStaticStatic(peer: Peer): void {
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

  // ---- outbound ------------------------------------------------------------------------

  /** An IP packet read from the TUN device. */
  sendPacket(packet: Uint8Array, now: number, out: DeviceOutput): void {
    this.sendPackets([packet], now, out);
  }

  /**
   * A batch of IP packets read from the TUN device. Packets of a peer with a live session are
   * sealed together (one slab, one batch AEAD call); the others are staged behind a handshake.
   * The buffers are only read during the call.
   */
  sendPackets(packets: readonly Uint8Array[], now: number, out: DeviceOutput): void {
    const touched = this.txPeers;
    for (let i = 0; i < packets.length; i++) {
      const packet = packets[i]!;
      const v = ipVersion(packet);
      let peer: Peer | undefined;
      if (v === 4) peer = this.allowedIps.lookupV4(packet, IPV4_DST_OFFSET);
      else if (v === 6) peer = this.allowedIps.lookupV6(packet, IPV6_DST_OFFSET);
      else {
        this.drop('bad_outbound_packet', null, out);
        continue;
      }
      if (!peer) {
        this.drop('no_route', null, out);
        continue;
      }
      if (peer.txBatch.length > 0) {
        peer.txBatch.push(packet);
        continue;
      }
      const kp = peer.current;
      if (peer.staged.length === 0 && kp && kp.canSend(now) && peer.endpoint) {
        touched.push(peer);
        peer.txBatch.push(packet);
        continue;
      }
      if (!peer.stage(packet)) this.drop('staged_overflow', peer, out);
      this.sendStaged(peer, now, out);
    }
    for (let i = 0; i < touched.length; i++) {
      const peer = touched[i]!;
      const list = peer.txBatch;
      peer.txBatch = [];
      this.sendTransport(peer, peer.current!, list, now, out);
    }
    touched.length = 0;
  }

  /** wireguard-go SendStagedPackets: flush the queue with the current session, or handshake. */
  private sendStaged(peer: Peer, now: number, out: DeviceOutput): void {
    if (peer.staged.length === 0) return;
    const kp = peer.current;
    if (!kp || !kp.canSend(now)) {
      this.sendInitiation(peer, false, now, out);
      return;
    }
    if (!peer.endpoint) return; // kept staged; the handshake that comes will flush it
    const packets = peer.staged;
    peer.staged = [];
    this.sendTransport(peer, kp, packets, now, out);
  }

  /**
   * Seals and sends packets (an empty packet is a keepalive) with one session, then runs the
   * send-side timers. All datagrams of the batch live in one slab, sealed in place, so the bind
   * can hand them to sendmmsg without copying.
   */
  private sendTransport(
    peer: Peer,
    kp: Keypair<Peer>,
    packets: readonly Uint8Array[],
    now: number,
    out: DeviceOutput,
  ): void {
    const endpoint = peer.endpoint!;
    const { slab, count, dataSent, exhausted } = sealPackets(
      this.aead,
      this.tx,
      this.scratch,
      kp,
      packets,
      this.mtu,
    );
    for (let i = 0; i < exhausted; i++) this.drop('expired_keypair', peer, out);
    const { offsets, lengths } = this.tx;
    for (let i = 0; i < count; i++) {
      const start = offsets[i]! - TRANSPORT_HEADER_SIZE;
      const end = offsets[i]! + lengths[i]! + AEAD_TAG_SIZE;
      peer.stats.txBytes += end - start;
      out.send(slab.subarray(start, end), endpoint, peer);
    }
    timersAnyAuthenticatedPacketTraversal(peer, now);
    timersAnyAuthenticatedPacketSent(peer);
    if (dataSent) timersDataSent(peer, now, this.jitter());
    // keep-key-fresh on send
    if (
      kp.sendCounter > REKEY_AFTER_MESSAGES ||
      (kp.isInitiator && now - kp.createdAt > this.rekeyAfterTimeMs)
    ) {
      this.sendInitiation(peer, false, now, out);
    }
  }

  private sendKeepalive(peer: Peer, now: number, out: DeviceOutput): void {
    if (peer.staged.length === 0) peer.staged.push(EMPTY);
    this.sendStaged(peer, now, out);
  }

  /** wireguard-go SendHandshakeInitiation: at most one per REKEY_TIMEOUT. */
  private sendInitiation(peer: Peer, isRetry: boolean, now: number, out: DeviceOutput): void {
    if (!isRetry) peer.timers.handshakeAttempts = 0;
    if (now - peer.lastSentHandshake < REKEY_TIMEOUT_MS) return;
    peer.lastSentHandshake = now;
    const msg = this.createInitiation(peer, now);
    if (msg) {
      timersAnyAuthenticatedPacketTraversal(peer, now);
      timersAnyAuthenticatedPacketSent(peer);
      if (peer.endpoint) {
        peer.stats.txBytes += msg.length;
        out.send(msg, peer.endpoint, peer);
      } else {
        this.drop('no_endpoint', peer, out);
      }
    }
    // Armed even when nothing could be sent, so retries and the give-up rule still run.
    peer.timers.retransmitHandshake = now + REKEY_TIMEOUT_MS + this.jitter();
  }

  private createInitiation(peer: Peer, now: number): Uint8Array | null {
    if (!this.local || !peer.precomputedStaticStatic) return null;
    const old = peer.clearInitiation();
    if (old !== null) this.index.delete(old);
    const msg = new Uint8Array(Initiation.size);
    const eph = this.ephemeral();
    const st = writeInitiation(
      WIREGUARD,
      this.local,
      peer.publicKey,
      peer.precomputedStaticStatic,
      eph,
      tai64n(this.env.wallClockMs()),
      msg,
      Initiation.ephemeral,
    );
    if (!st) return null;
    const index = this.index.allocate(peer);
    peer.initiation = { index, state: st };
    writeU32(msg, 0, 1);
    writeU32(msg, Initiation.sender, index);
    peer.cookie.addMacs(msg, now);
    return msg;
  }

  // ---- inbound -------------------------------------------------------------------------

  /**
   * A batch of UDP datagrams, `sources[i]` the sender of `datagrams[i]`. Transport messages are
   * opened together (one batch AEAD call) and decrypted in place, so delivered packets are views
   * of the caller's buffers, valid only during the call (the driver writes them to the TUN
   * before returning). Handshake messages are handled one by one, in order.
   */
  receiveDatagrams(
    datagrams: readonly Uint8Array[],
    sources: readonly Endpoint[],
    now: number,
    out: DeviceOutput,
  ): void {
    let count = 0;
    for (let i = 0; i < datagrams.length; i++) {
      const d = datagrams[i]!;
      if (d.length < 32 || d[0] !== 4 || d[1] !== 0 || d[2] !== 0 || d[3] !== 0) {
        if (count > 0) this.openTransportBatch(count, now, out);
        count = 0;
        this.receiveDatagram(d, sources[i]!, now, out);
        continue;
      }
      const kp = this.transportKeypair(d, now, out);
      if (!kp) continue;
      this.rxData[count] = d;
      this.rxSrc[count] = sources[i]!;
      this.rxKeypair[count] = kp;
      count++;
    }
    if (count > 0) this.openTransportBatch(count, now, out);
  }

  /** The session a transport message names, if it may still receive; else counted and null. */
  private transportKeypair(d: Uint8Array, now: number, out: DeviceOutput): Keypair<Peer> | null {
    const entry = this.index.get(readU32(d, Transport.receiver));
    if (!(entry instanceof Keypair)) {
      this.drop('unknown_index', null, out);
      return null;
    }
    if (!entry.canReceive(now)) {
      this.drop('expired_keypair', entry.peer, out);
      return null;
    }
    const counter = readCounter(d, Transport.counter);
    if (counter < 0 || counter >= REJECT_AFTER_MESSAGES) {
      this.drop('counter_limit', entry.peer, out);
      return null;
    }
    return entry;
  }

  private openTransportBatch(count: number, now: number, out: DeviceOutput): void {
    const data = this.rxData;
    this.opener.open(this.aead, this.rx, this.scratch, data, this.rxKeypair, count);
    const { ok, lengths, counters } = this.rx;
    for (let i = 0; i < count; i++) {
      const d = data[i]!;
      const kp = this.rxKeypair[i]!;
      if (!ok[i]) this.drop('decrypt_failed', kp.peer, out);
      else {
        const n = lengths[i]! - AEAD_TAG_SIZE;
        const plain = d.subarray(Transport.data, Transport.data + n);
        this.acceptTransport(kp, counters[i]!, plain, d.length, this.rxSrc[i]!, now, out);
      }
    }
    // Drop references to the caller's buffers.
    for (let i = 0; i < count; i++) {
      this.rxData[i] = EMPTY;
      this.rxKeypair[i] = undefined as unknown as Keypair<Peer>;
    }
  }

  /** A UDP datagram that arrived from `src`. */
  receiveDatagram(d: Uint8Array, src: Endpoint, now: number, out: DeviceOutput): void {
    const kind = classify(d);
    switch (kind) {
      case 'transport':
        return this.receiveTransport(d, src, now, out);
      case 'initiation':
      case 'response':
      case 'cookie':
        return this.receiveHandshake(kind, d, src, now, out);
      default:
        return this.drop(kind, null, out);
    }
  }

  private receiveHandshake(
    kind: 'initiation' | 'response' | 'cookie',
    d: Uint8Array,
    src: Endpoint,
    now: number,
    out: DeviceOutput,
  ): void {
    if (kind === 'cookie') return this.receiveCookieReply(d, now, out);
    if (!this.local || !this.checker) return this.drop('no_private_key', null, out);
    const underLoad = this.countHandshake(now);
    if (!this.checker.checkMac1(d)) return this.drop('bad_mac1', null, out);
    if (underLoad) {
      const source = sourceBytes(src);
      if (!this.checker.checkMac2(d, source, now)) {
        const reply = this.checker.createReply(d, readU32(d, 4), source, now, this.env.randomBytes);
        out.send(reply, src, null);
        return this.drop('cookie_required', null, out);
      }
      if (!this.limiter.allow(source.subarray(0, source.length - 2), now)) {
        return this.drop('rate_limited', null, out);
      }
    }
    if (kind === 'initiation') this.receiveInitiation(d, src, now, out);
    else this.receiveResponse(d, src, now, out);
  }

  /** Under load when handshake messages arrive faster than we want to do DH (PROTOCOL.md §12). */
  private countHandshake(now: number): boolean {
    const elapsed = now - this.hsWindowStart;
    if (elapsed >= 1000) {
      this.hsPrevCount = elapsed >= 2000 ? 0 : this.hsCount;
      this.hsCount = 0;
      this.hsWindowStart = now - (elapsed % 1000);
    }
    this.hsCount++;
    const frac = (now - this.hsWindowStart) / 1000;
    const rate = this.hsPrevCount * (1 - frac) + this.hsCount;
    if (rate > UNDER_LOAD_HANDSHAKES_PER_SECOND)
      this.underLoadUntil = now + UNDER_LOAD_AFTER_TIME_MS;
    return now < this.underLoadUntil;
  }

  /** Whether handshake messages now need a valid mac2 (for tests and metrics). */
  isUnderLoad(now: number): boolean {
    return now < this.underLoadUntil;
  }

  private receiveInitiation(d: Uint8Array, src: Endpoint, now: number, out: DeviceOutput): void {
    const local = this.local!;
    const r = readInitiation(WIREGUARD, local, d, Initiation.ephemeral, TAI64N_SIZE, (s) => {
      return this.getPeer(s)?.precomputedStaticStatic ?? null;
    });
    if (!r.ok)
      return this.drop(
        r.reason === 'unknown_peer' ? 'unknown_peer' : 'handshake_failed',
        null,
        out,
      );
    const peer = this.getPeer(r.value.remoteStatic)!;
    const ts = r.value.payload;
    if (peer.latestTimestamp && compareTai64n(ts, peer.latestTimestamp) <= 0) {
      return this.drop('replayed_timestamp', peer, out);
    }
    if (now - peer.lastInitiationConsumed < 1000 / INITIATIONS_PER_SECOND) {
      return this.drop('initiation_flood', peer, out);
    }
    peer.latestTimestamp = ts;
    peer.lastInitiationConsumed = now;
    peer.stats.rxBytes += d.length;
    peer.endpoint = src;
    timersAnyAuthenticatedPacketReceived(peer);
    timersAnyAuthenticatedPacketTraversal(peer, now);

    // Our own pending initiation, if any, is abandoned: the peer's wins (wireguard-go does the same).
    const old = peer.clearInitiation();
    if (old !== null) this.index.delete(old);
    const resp = new Uint8Array(Response.size);
    const eph = this.ephemeral();
    const keys = writeResponse(r.value, peer.presharedKey, eph, EMPTY, resp, Response.ephemeral);
    eph.privateKey.fill(0);
    r.value.ck.fill(0);
    if (!keys) return this.drop('handshake_failed', peer, out);
    const remoteIndex = readU32(d, Initiation.sender);
    const kp = new Keypair<Peer>(
      peer,
      keys.sendResponder,
      keys.sendInitiator,
      0,
      remoteIndex,
      now,
      false,
    );
    const localIndex = this.index.allocate(kp);
    kp.localIndex = localIndex;
    writeU32(resp, 0, 2);
    writeU32(resp, Response.sender, localIndex);
    writeU32(resp, Response.receiver, remoteIndex);
    peer.cookie.addMacs(resp, now);

    // Responder: the new session waits in `next` until the initiator's first packet confirms it.
    if (peer.next) this.freeKeypair(peer.next);
    if (peer.previous) this.freeKeypair(peer.previous);
    peer.next = kp;
    peer.previous = null;
    peer.lastSentHandshake = now;
    timersSessionDerived(peer, now);
    timersAnyAuthenticatedPacketSent(peer);
    peer.stats.txBytes += resp.length;
    out.send(resp, src, peer);
    this.log.debug(
      `peer ${shortKey(peer.publicKey)}: handshake initiation consumed, response sent`,
    );
  }

  private receiveResponse(d: Uint8Array, src: Endpoint, now: number, out: DeviceOutput): void {
    const entry = this.index.get(readU32(d, Response.receiver));
    if (!(entry instanceof Peer)) return this.drop('unknown_index', null, out);
    const peer = entry;
    const init = peer.initiation;
    if (!init || init.index !== readU32(d, Response.receiver)) {
      return this.drop('unexpected_response', peer, out);
    }
    const r = readResponse(init.state, this.local!, peer.presharedKey, d, Response.ephemeral, 0);
    if (!r) return this.drop('handshake_failed', peer, out);
    peer.initiation = null; // its index moves to the keypair
    init.state.ck.fill(0);
    init.state.ephemeral.privateKey.fill(0);
    const kp = new Keypair<Peer>(
      peer,
      r.keys.sendInitiator,
      r.keys.sendResponder,
      init.index,
      readU32(d, Response.sender),
      now,
      true,
    );
    this.index.replace(init.index, kp);
    // Initiator: the new session is current at once (PROTOCOL.md §8).
    if (peer.next) {
      if (peer.previous) this.freeKeypair(peer.previous);
      peer.previous = peer.next;
      peer.next = null;
      if (peer.current) this.freeKeypair(peer.current);
    } else {
      if (peer.previous) this.freeKeypair(peer.previous);
      peer.previous = peer.current;
    }
    peer.current = kp;
    peer.stats.rxBytes += d.length;
    peer.endpoint = src;
    timersSessionDerived(peer, now);
    timersHandshakeComplete(peer, this.env.wallClockMs());
    timersAnyAuthenticatedPacketReceived(peer);
    timersAnyAuthenticatedPacketTraversal(peer, now);
    this.log.info(`peer ${shortKey(peer.publicKey)}: handshake complete (initiator)`);
    // Confirm the session to the responder: staged data if any, else a keepalive.
    this.sendKeepalive(peer, now, out);
  }

  private receiveCookieReply(d: Uint8Array, now: number, out: DeviceOutput): void {
    const entry = this.index.get(readU32(d, 4));
    const peer = entry instanceof Peer ? entry : entry?.peer;
    if (!peer) return this.drop('unknown_index', null, out);
    if (!peer.cookie.consumeReply(d, now)) return this.drop('bad_cookie', peer, out);
    this.log.debug(`peer ${shortKey(peer.publicKey)}: cookie received`);
  }

  private receiveTransport(d: Uint8Array, src: Endpoint, now: number, out: DeviceOutput): void {
    const kp = this.transportKeypair(d, now, out);
    if (!kp) return;
    const counter = readCounter(d, Transport.counter);
    const plain = new Uint8Array(d.length - TRANSPORT_HEADER_SIZE - AEAD_TAG_SIZE);
    const n = this.aead.open(kp.recvKey, counter, d.subarray(Transport.data), null, plain, 0);
    if (n < 0) return this.drop('decrypt_failed', kp.peer, out);
    this.acceptTransport(kp, counter, plain, d.length, src, now, out);
  }

  /**
   * After a transport message authenticated: replay window, key confirmation, roaming, timers,
   * then the inner packet's source must route back to the same peer (PROTOCOL.md §6).
   */
  private acceptTransport(
    kp: Keypair<Peer>,
    counter: number,
    plain: Uint8Array,
    wireLength: number,
    src: Endpoint,
    now: number,
    out: DeviceOutput,
  ): void {
    const peer = kp.peer;
    const n = plain.length;
    if (!kp.replay.check(counter)) return this.drop('replayed_counter', peer, out);

    if (kp === peer.next) {
      // Key confirmation: the initiator used the session we offered.
      if (peer.previous) this.freeKeypair(peer.previous);
      peer.previous = peer.current;
      peer.current = kp;
      peer.next = null;
      timersHandshakeComplete(peer, this.env.wallClockMs());
      this.log.info(`peer ${shortKey(peer.publicKey)}: handshake complete (responder)`);
      this.sendStaged(peer, now, out);
    }
    if (!sameEndpoint(peer.endpoint, src)) peer.endpoint = src;
    peer.stats.rxBytes += wireLength;
    // keep-key-fresh on receive: the initiator rekeys before the session is rejected.
    const cur = peer.current;
    if (
      !peer.timers.sentLastMinuteHandshake &&
      cur &&
      cur.isInitiator &&
      now - cur.createdAt > REJECT_AFTER_TIME_MS - KEEPALIVE_TIMEOUT_MS - REKEY_TIMEOUT_MS
    ) {
      peer.timers.sentLastMinuteHandshake = true;
      this.sendInitiation(peer, false, now, out);
    }
    timersAnyAuthenticatedPacketTraversal(peer, now);
    timersAnyAuthenticatedPacketReceived(peer);
    if (n === 0) return; // keepalive
    timersDataReceived(peer, now);
    const len = ipPacketLength(plain, n);
    if (len < 0) return this.drop('bad_inner_packet', peer, out);
    const v = plain[0]! >> 4;
    const owner =
      v === 4
        ? this.allowedIps.lookupV4(plain, IPV4_SRC_OFFSET)
        : this.allowedIps.lookupV6(plain, IPV6_SRC_OFFSET);
    if (owner !== peer) return this.drop('spoofed_source', peer, out);
    out.deliver(len === plain.length ? plain : plain.subarray(0, len), peer);
  }

  // ---- timers --------------------------------------------------------------------------

  /** Runs every due timer. The driver calls it often (every 100 ms or so). */
  tick(now: number, out: DeviceOutput): void {
    for (const peer of this.peers.values()) {
      const t = peer.timers;
      if (t.retransmitHandshake && now >= t.retransmitHandshake) {
        t.retransmitHandshake = 0;
        this.expiredRetransmitHandshake(peer, now, out);
      }
      if (t.sendKeepalive && now >= t.sendKeepalive) {
        t.sendKeepalive = 0;
        this.sendKeepalive(peer, now, out);
        if (t.needAnotherKeepalive) {
          t.needAnotherKeepalive = false;
          t.sendKeepalive = now + KEEPALIVE_TIMEOUT_MS;
        }
      }
      if (t.newHandshake && now >= t.newHandshake) {
        t.newHandshake = 0;
        this.log.debug(
          `peer ${shortKey(peer.publicKey)}: no reply after sending data, new handshake`,
        );
        this.sendInitiation(peer, false, now, out);
      }
      if (t.zeroKeyMaterial && now >= t.zeroKeyMaterial) {
        t.zeroKeyMaterial = 0;
        this.log.debug(`peer ${shortKey(peer.publicKey)}: zeroing key material`);
        this.zeroAndFlush(peer);
      }
      if (t.persistentKeepalive && now >= t.persistentKeepalive) {
        t.persistentKeepalive = 0;
        if (peer.persistentKeepaliveSeconds > 0) this.sendKeepalive(peer, now, out);
      }
    }
    this.limiter.gc(now);
  }

  private expiredRetransmitHandshake(peer: Peer, now: number, out: DeviceOutput): void {
    const t = peer.timers;
    if (t.handshakeAttempts > MAX_TIMER_HANDSHAKES) {
      this.log.info(
        `peer ${shortKey(peer.publicKey)}: handshake did not complete after ${MAX_TIMER_HANDSHAKES + 2} attempts, giving up`,
      );
      t.sendKeepalive = 0;
      for (let i = 0; i < peer.staged.length; i++) this.drop('handshake_gave_up', peer, out);
      peer.staged = [];
      if (!t.zeroKeyMaterial) t.zeroKeyMaterial = now + ZERO_KEYS_AFTER_MS;
      return;
    }
    t.handshakeAttempts++;
    this.log.debug(`peer ${shortKey(peer.publicKey)}: handshake retry ${t.handshakeAttempts}`);
    this.sendInitiation(peer, true, now, out);
  }

  private ephemeral(): KeyPair {
    return (this.env.generateKeyPair ?? generateKeyPair)();
  }

  private jitter(): number {
    const b = this.env.randomBytes(2);
    return (b[0]! | (b[1]! << 8)) % REKEY_TIMEOUT_JITTER_MS;
  }

  // ---- helpers -------------------------------------------------------------------------

  private freeKeypair(kp: Keypair<Peer>): void {
    if (this.index.get(kp.localIndex) === kp) this.index.delete(kp.localIndex);
    kp.wipe();
  }

  /** wireguard-go ZeroAndFlushAll: forget every session and the pending handshake. */
  private zeroAndFlush(peer: Peer): void {
    for (const kp of peer.keypairs()) this.freeKeypair(kp);
    peer.previous = peer.current = peer.next = null;
    const idx = peer.clearInitiation();
    if (idx !== null) this.index.delete(idx);
    peer.staged = [];
  }

  private drop(reason: DropReason, peer: Peer | null, out: DeviceOutput): void {
    this.drops[reason]++;
    out.drop?.(reason, peer);
  }

  /** Number of live receiver indices (handshakes and sessions); for tests and metrics. */
  get indexCount(): number {
    return this.index.size;
  }
}

/** Address bytes ‖ big-endian port: what a cookie is bound to. */
function sourceBytes(src: Endpoint): Uint8Array {
  const addr = parseAddress(src.address) ?? new Uint8Array(4);
  const out = new Uint8Array(addr.length + 2);
  out.set(addr);
  out[addr.length] = src.port >> 8;
  out[addr.length + 1] = src.port & 0xff;
  return out;
}
