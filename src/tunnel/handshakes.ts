/**
 * Handshake messages on the device (whitepaper §5.4, PROTOCOL.md §3-5, §12): sending initiations
 * at most once per REKEY_TIMEOUT, and consuming initiations, responses and cookie replies after
 * mac1 and, under load, mac2, the per-source rate limits and the device-wide budget of cookie
 * replies to sources that are no peer's endpoint. Sessions derived here go to the keypair slots;
 * the data path (device.ts) confirms and uses them.
 */
import {
  INITIATIONS_PER_SECOND,
  REKEY_TIMEOUT_MS,
  UNDER_LOAD_AFTER_TIME_MS,
  UNDER_LOAD_HANDSHAKES_PER_SECOND,
} from '../constants.js';
import {
  readInitiation,
  readResponse,
  writeInitiation,
  writeResponse,
  WIREGUARD,
} from '../noise/handshake.js';
import { isZero } from '../noise/crypto.js';
import { shortKey } from '../noise/keys.js';
import { Initiation, readU32, Response, writeU32 } from '../noise/messages.js';
import { compareTai64n, tai64n, TAI64N_SIZE } from '../noise/tai64n.js';
import { parseAddress, type Endpoint } from './ip.js';
import { Keypair } from './keypair.js';
import { Peer } from './peer.js';
import {
  timersAnyAuthenticatedPacketReceived,
  timersAnyAuthenticatedPacketSent,
  timersAnyAuthenticatedPacketTraversal,
  timersHandshakeComplete,
  timersSessionDerived,
} from './timers.js';

export { paddedLength } from './transport.js';
import { DeviceBase, EMPTY, type DeviceOutput } from './device-base.js';

export abstract class HandshakeLayer extends DeviceBase {
  protected sendInitiation(peer: Peer, isRetry: boolean, now: number, out: DeviceOutput): void {
    if (!isRetry) peer.timers.handshakeAttempts = 0;
    if (now - peer.lastSentHandshake < REKEY_TIMEOUT_MS) return;
    peer.lastSentHandshake = now;
    peer.resentForCookie = false;
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

  protected createInitiation(peer: Peer, now: number): Uint8Array | null {
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

  protected receiveHandshake(
    kind: 'initiation' | 'response' | 'cookie',
    d: Uint8Array,
    src: Endpoint,
    now: number,
    out: DeviceOutput,
  ): void {
    if (kind === 'cookie') return this.receiveCookieReply(d, now, out);
    if (!this.local || !this.checker) return this.drop('no_private_key', null, out);
    const underLoad = this.countHandshake(now);
    // An all-zero mac2 cannot be valid: it needs a cookie. Under load, a source out of cookie
    // replies gets nothing whatever its mac1, so that case is dropped before any hashing.
    const mac2Absent = underLoad && isZero(d.subarray(d.length - 16));
    const source = underLoad ? sourceBytes(src) : null;
    const address = source?.subarray(0, source.length - 2);
    if (mac2Absent && address && !this.cookieLimiter.wouldAllow(address, now)) {
      return this.drop('cookie_rate_limited', null, out);
    }
    // A flood from more sources than the per-source table holds passes every per-source budget.
    // Past the device-wide budget only peers' own endpoints still get cookie replies, and a
    // stranger's message without mac2 is dropped before any hashing, so the daemon reads as fast
    // as the flood comes and a peer's initiation is not lost in the socket queue.
    // A message with some mac2 is then worth a filter lookup, and its mac2 check only if we
    // gave its source a cookie (mac1 waits until mac2 passes).
    const stranger = address !== undefined && !this.isPeerSource(address, now);
    const overBudget = stranger && !this.strangerReplies.wouldAllow(now);
    let cookie: Uint8Array | null = null;
    let mac2Valid: boolean | null = null;
    if (overBudget && source) {
      // Only a source we gave a cookie to can have a valid mac2: others are refused unhashed.
      if (mac2Absent || !this.checker.mayHold(source, now)) {
        return this.drop('cookie_over_budget', null, out);
      }
      cookie = this.checker.cookieFor(source, now, this.env.randomBytes);
      mac2Valid = this.checker.checkMac2(d, cookie);
      if (!mac2Valid) return this.drop('cookie_over_budget', null, out);
    }
    if (!this.checker.checkMac1(d)) return this.drop('bad_mac1', null, out);
    if (source && address) {
      if (!mac2Absent) {
        cookie ??= this.checker.cookieFor(source, now, this.env.randomBytes);
        if (mac2Valid ?? this.checker.checkMac2(d, cookie)) {
          if (!this.limiter.allow(address, now)) return this.drop('rate_limited', null, out);
          return kind === 'initiation'
            ? this.receiveInitiation(d, src, now, out)
            : this.receiveResponse(d, src, now, out);
        }
      }
      // Stricter than wireguard-go and the kernel, which answer every such message: a source
      // gets at most 20 cookie replies/s (burst 5). A peer needs one per handshake; a flooder
      // beyond its budget costs us a table lookup (above) instead of mac1, ~6 us of cookie
      // sealing and a send, so the daemon reads about as fast as a flood comes and legitimate
      // messages are not lost in the socket queue.
      if (!this.cookieLimiter.allow(address, now)) {
        return this.drop('cookie_rate_limited', null, out);
      }
      if (stranger) this.strangerReplies.take(now);
      cookie = this.checker.issue(source, now, this.env.randomBytes);
      const reply = this.checker.createReply(d, readU32(d, 4), cookie, this.env.randomBytes);
      out.send(reply, src, null);
      return this.drop('cookie_required', null, out);
    }
    if (kind === 'initiation') this.receiveInitiation(d, src, now, out);
    else this.receiveResponse(d, src, now, out);
  }

  /** Under load when handshake messages arrive faster than we want to do DH (PROTOCOL.md §12). */
  protected countHandshake(now: number): boolean {
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

  protected receiveInitiation(d: Uint8Array, src: Endpoint, now: number, out: DeviceOutput): void {
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
      r.value.ck.fill(0);
      return this.drop('replayed_timestamp', peer, out);
    }
    if (now - peer.lastInitiationConsumed < 1000 / INITIATIONS_PER_SECOND) {
      r.value.ck.fill(0);
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

  protected receiveResponse(d: Uint8Array, src: Endpoint, now: number, out: DeviceOutput): void {
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

  protected receiveCookieReply(d: Uint8Array, now: number, out: DeviceOutput): void {
    const entry = this.index.get(readU32(d, 4));
    const peer = entry instanceof Peer ? entry : entry?.peer;
    if (!peer) return this.drop('unknown_index', null, out);
    if (!peer.cookie.consumeReply(d, now)) return this.drop('bad_cookie', peer, out);
    this.log.debug(`peer ${shortKey(peer.publicKey)}: cookie received`);
    // The responder is under load and refused our initiation for want of mac2. wireguard-go and
    // the kernel wait for their retransmit timer (REKEY_TIMEOUT + jitter, 5 s or more); we resend
    // a fresh initiation, now with mac2, at once: once per attempt, so a responder that keeps
    // answering with cookies gets no more from us than from them. A cookie reply is
    // authenticated against the mac1 we sent, so no third party can trigger this.
    const pending = peer.initiation?.index === readU32(d, 4);
    if (pending && !peer.resentForCookie) {
      peer.lastSentHandshake = -Infinity;
      this.sendInitiation(peer, true, now, out);
      peer.resentForCookie = true;
    }
  }
}

/**
 * Address bytes ‖ big-endian port: what a cookie is bound to. Binds hand out one Endpoint object
 * per source (a cache), so the bytes are kept with it: parsing the address text for every
 * message was an eighth of the time under a handshake flood.
 */
const sourceCache = new WeakMap<Endpoint, Uint8Array>();
function sourceBytes(src: Endpoint): Uint8Array {
  if (src.bytes) return src.bytes;
  let b = sourceCache.get(src);
  if (!b) {
    b = parseSourceBytes(src);
    sourceCache.set(src, b);
  }
  return b;
}

function parseSourceBytes(src: Endpoint): Uint8Array {
  const addr = parseAddress(src.address) ?? new Uint8Array(4);
  const out = new Uint8Array(addr.length + 2);
  out.set(addr);
  out[addr.length] = src.port >> 8;
  out[addr.length + 1] = src.port & 0xff;
  return out;
}
