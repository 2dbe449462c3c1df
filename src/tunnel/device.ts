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
  KEEPALIVE_TIMEOUT_MS,
  MAX_TIMER_HANDSHAKES,
  REJECT_AFTER_MESSAGES,
  REJECT_AFTER_TIME_MS,
  REKEY_AFTER_MESSAGES,
  REKEY_TIMEOUT_MS,
  TRANSPORT_HEADER_SIZE,
  ZERO_KEYS_AFTER_MS,
  AEAD_TAG_SIZE,
} from '../constants.js';
import { shortKey } from '../noise/keys.js';
import { classify, readCounter, readU32, Transport } from '../noise/messages.js';
import {
  ipPacketLength,
  ipVersion,
  IPV4_DST_OFFSET,
  IPV4_SRC_OFFSET,
  IPV6_DST_OFFSET,
  IPV6_SRC_OFFSET,
  sameEndpointAndLocal,
  type Endpoint,
} from './ip.js';
import { Keypair } from './keypair.js';
import { Peer } from './peer.js';
import {
  timersAnyAuthenticatedPacketReceived,
  timersAnyAuthenticatedPacketSent,
  timersAnyAuthenticatedPacketTraversal,
  timersDataReceived,
  timersDataSent,
  timersHandshakeComplete,
} from './timers.js';
import { sealPackets } from './transport.js';

export { paddedLength } from './transport.js';
import { HandshakeLayer } from './handshakes.js';
import { EMPTY, type DeviceOutput } from './device-base.js';
export type { DeviceEnv, DeviceOutput, Logger } from './device-base.js';

export class Device extends HandshakeLayer {
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
  protected sendStaged(peer: Peer, now: number, out: DeviceOutput): void {
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
  protected sendTransport(
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
      this.allocSlab,
      this.routeMtus,
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

  protected sendKeepalive(peer: Peer, now: number, out: DeviceOutput): void {
    if (peer.staged.length === 0) peer.staged.push(EMPTY);
    this.sendStaged(peer, now, out);
  }

  /** wireguard-go SendHandshakeInitiation: at most one per REKEY_TIMEOUT. */

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
  protected transportKeypair(d: Uint8Array, now: number, out: DeviceOutput): Keypair<Peer> | null {
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

  protected openTransportBatch(count: number, now: number, out: DeviceOutput): void {
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

  protected receiveTransport(d: Uint8Array, src: Endpoint, now: number, out: DeviceOutput): void {
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
  protected acceptTransport(
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
    // Roaming and the sticky source both follow the last authenticated packet.
    if (!sameEndpointAndLocal(peer.endpoint, src)) peer.endpoint = src;
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
    this.cookieLimiter.gc(now);
  }

  protected expiredRetransmitHandshake(peer: Peer, now: number, out: DeviceOutput): void {
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
}
