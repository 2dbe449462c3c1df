// Two (or more) in-memory Devices on a virtual clock: handshakes, data, every timer rule of
// PROTOCOL.md §9, cookies under load, replays, spoofing, roaming and bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ipv4, ipv6, text, World, type TestNode } from './harness.js';
import { parseAddress } from '../../src/tunnel/ip.js';
import { paddedLength } from '../../src/tunnel/device.js';
import { Initiation } from '../../src/noise/messages.js';
import { mac } from '../../src/noise/crypto.js';
import { mac1Key } from '../../src/noise/cookie.js';

function pair(opts: { psk?: boolean; rekeyAfterTimeMs?: number } = {}) {
  const w = new World();
  const a = w.node('a', '192.0.2.1:51820');
  const b = w.node('b', '192.0.2.2:51820');
  const psk = opts.psk ? new Uint8Array(randomBytes(32)) : undefined;
  const pa = a.peer(b, ['10.0.0.2/32', 'fd00::2/128'], psk ? { psk } : {});
  const pb = b.peer(a, ['10.0.0.1/32', 'fd00::1/128'], psk ? { psk } : {});
  return { w, a, b, pa, pb };
}

function ping(w: World, from: TestNode, to: TestNode, srcIp: string, dstIp: string, msg: string) {
  const before = to.delivered.length;
  from.send(ipv4(srcIp, dstIp, msg));
  w.pump();
  return to.delivered.slice(before).map((p) => text(p));
}

test('handshake initiated by A, data both ways, IPv4 and IPv6', () => {
  const { w, a, b, pa, pb } = pair();
  assert.deepEqual(ping(w, a, b, '10.0.0.1', '10.0.0.2', 'hello'), ['hello']);
  assert.deepEqual(ping(w, b, a, '10.0.0.2', '10.0.0.1', 'back'), ['back']);
  const v6 = ipv6(parseAddress('fd00::1')!, parseAddress('fd00::2')!, 'six');
  a.send(v6);
  w.pump();
  assert.equal(text(b.delivered.at(-1)!, 48), 'six');
  assert.ok(pa.current?.isInitiator);
  assert.equal(pb.current?.isInitiator, false);
  assert.ok(pa.stats.lastHandshakeWallMs > 0 && pb.stats.lastHandshakeWallMs > 0);
  assert.ok(pa.stats.txBytes > 0 && pb.stats.rxBytes === pa.stats.txBytes);
  assert.deepEqual(a.drops, []);
  assert.deepEqual(b.drops, []);
});

test('handshake initiated by B', () => {
  const { w, a, b, pa } = pair();
  assert.deepEqual(ping(w, b, a, '10.0.0.2', '10.0.0.1', 'from b'), ['from b']);
  assert.equal(pa.current?.isInitiator, false);
});

test('the first packet is staged during the handshake and staging keeps the newest 128', () => {
  const { w, a, b } = pair();
  for (let i = 0; i < 130; i++) a.send(ipv4('10.0.0.1', '10.0.0.2', `p${i}`));
  assert.equal(a.drops.filter((r) => r === 'staged_overflow').length, 2);
  w.pump();
  const got = b.delivered.map((p) => text(p));
  assert.equal(got.length, 128);
  assert.equal(got[0], 'p2');
  assert.equal(got[127], 'p129');
});

test('padding to 16 bytes within the MTU', () => {
  assert.equal(paddedLength(0, 1420), 0);
  assert.equal(paddedLength(1, 1420), 16);
  assert.equal(paddedLength(1419, 1420), 1420);
  assert.equal(paddedLength(1420, 1420), 1420);
  assert.equal(paddedLength(17, 0), 32);
  const { w, a, b } = pair();
  a.send(ipv4('10.0.0.1', '10.0.0.2', 'x'));
  w.pump();
  const data = w.sent(a, 4).at(-1)!;
  assert.equal(data.data.length, 16 + 32 + 16); // 29-byte packet padded to 32
  assert.equal(b.delivered.at(-1)!.length, 29); // padding trimmed by the IP length
});

test('keepalive after 10 s of receiving without sending', () => {
  const { w, a, b } = pair();
  ping(w, a, b, '10.0.0.1', '10.0.0.2', 'one way');
  const mark = w.log.length;
  w.advance(9_900);
  assert.equal(w.sent(b, 4, mark).length, 0);
  w.advance(200);
  const ka = w.sent(b, 4, mark);
  assert.equal(ka.length, 1);
  assert.equal(ka[0]!.data.length, 32);
});

test('rekey after 120 s by the initiator only; the old session keeps working meanwhile', () => {
  const { w, a, b, pa, pb } = pair();
  ping(w, a, b, '10.0.0.1', '10.0.0.2', 'start');
  const first = pa.current;
  const mark = w.log.length;
  // Traffic both ways every second for 125 s.
  for (let s = 0; s < 125; s++) {
    w.advance(1000);
    ping(w, a, b, '10.0.0.1', '10.0.0.2', `a${s}`);
    ping(w, b, a, '10.0.0.2', '10.0.0.1', `b${s}`);
  }
  const inits = (n: TestNode) => w.sent(n, 1, mark).length;
  assert.equal(inits(a), 1, 'the initiator rekeys once after 120 s');
  assert.equal(inits(b), 0, 'the responder never rekeys on time');
  assert.notEqual(pa.current, first);
  assert.equal(pb.current?.localIndex, pa.current?.remoteIndex);
  assert.equal(a.drops.length + b.drops.length, 0);
});

test('a session is rejected after 180 s: packets are staged and a handshake is attempted', () => {
  const { w, a, b, pa } = pair();
  ping(w, a, b, '10.0.0.1', '10.0.0.2', 'start');
  w.filter = (d) => d.data[0] === 4; // handshakes lost from now on
  w.advance(179_000);
  const before = b.delivered.length;
  a.send(ipv4('10.0.0.1', '10.0.0.2', 'still fresh'));
  w.pump();
  assert.equal(b.delivered.length, before + 1);
  w.advance(1_100);
  const mark = w.log.length;
  a.send(ipv4('10.0.0.1', '10.0.0.2', 'too old'));
  w.pump();
  assert.equal(b.delivered.length, before + 1);
  assert.equal(w.sent(a, 4, mark).length, 0, 'no transport message with an expired session');
  assert.equal(pa.staged.length, 1);
});

test('handshake retried every 5 s + jitter, given up after 20 attempts, staged packets dropped', () => {
  const { w, a } = pair();
  w.filter = () => false; // B unreachable
  a.send(ipv4('10.0.0.1', '10.0.0.2', 'lost'));
  w.advance(150_000, 10);
  const inits = w.log.filter((d) => d.data[0] === 1);
  assert.equal(inits.length, 20);
  // Gaps of REKEY_TIMEOUT + jitter in [0, 334) ms, at the 10 ms tick resolution.
  assert.equal(a.drops.filter((r) => r === 'handshake_gave_up').length, 1);
});

test('retransmit intervals are 5 s plus jitter', () => {
  const { w, a } = pair();
  const stamps: number[] = [];
  w.filter = (d) => {
    if (d.data[0] === 1) stamps.push(w.now);
    return false;
  };
  a.send(ipv4('10.0.0.1', '10.0.0.2', 'x'));
  w.pump();
  w.advance(30_000, 10);
  assert.ok(stamps.length >= 6);
  for (let i = 1; i < stamps.length; i++) {
    const gap = stamps[i]! - stamps[i - 1]!;
    assert.ok(gap >= 5_000 && gap <= 5_344, `gap ${gap}`);
  }
});

test('key material zeroed 540 s after the last session was derived', () => {
  const { w, a, b, pa, pb } = pair();
  ping(w, a, b, '10.0.0.1', '10.0.0.2', 'x');
  w.advance(539_000, 1000);
  assert.ok(pa.current);
  w.advance(2_000, 1000);
  assert.equal(pa.current, null);
  assert.equal(pb.current, null);
  assert.equal(a.device.indexCount, 0);
  assert.equal(b.device.indexCount, 0);
});

test('persistent keepalive every N seconds while idle; turning it on sends one at once', () => {
  const { w, a, b, pa } = pair();
  ping(w, a, b, '10.0.0.1', '10.0.0.2', 'x');
  w.advance(20_000);
  const mark = w.log.length;
  a.device.setPersistentKeepalive(pa, 25, w.now, a.out);
  w.pump();
  assert.equal(w.sent(a, 4, mark).length, 1);
  w.advance(100_000);
  const ka = w.sent(a, 4, mark);
  assert.equal(ka.length, 5); // at once, then 25, 50, 75, 100 s
  assert.ok(ka.every((d) => d.data.length === 32));
});

test('PSK: the same PSK works, a mismatch fails the handshake', () => {
  const ok = pair({ psk: true });
  assert.deepEqual(ping(ok.w, ok.a, ok.b, '10.0.0.1', '10.0.0.2', 'psk'), ['psk']);
  const bad = pair({ psk: true });
  bad.b.device.setPresharedKey(bad.pb, new Uint8Array(32).fill(7));
  assert.deepEqual(ping(bad.w, bad.a, bad.b, '10.0.0.1', '10.0.0.2', 'psk'), []);
  assert.ok(bad.a.drops.includes('handshake_failed'));
  assert.equal(bad.pa.current, null);
});

test('replayed transport data is rejected', () => {
  const { w, a, b } = pair();
  ping(w, a, b, '10.0.0.1', '10.0.0.2', 'once');
  const data = w.sent(a, 4).find((d) => d.data.length > 32)!;
  const n = b.delivered.length;
  w.queue.push({ ...data });
  w.pump();
  assert.equal(b.delivered.length, n);
  assert.ok(b.drops.includes('replayed_counter'));
});

test('a replayed or older initiation is rejected', () => {
  const { w, a, b } = pair();
  ping(w, a, b, '10.0.0.1', '10.0.0.2', 'x');
  const init = w.sent(a, 1)[0]!;
  const indexCount = b.device.indexCount;
  w.advance(1000);
  w.queue.push({ ...init });
  w.pump();
  assert.ok(b.drops.includes('replayed_timestamp'));
  assert.equal(b.device.indexCount, indexCount);
});

test('initiations faster than 50/s from one peer are dropped', () => {
  const { w, a, b, pa } = pair();
  a.send(ipv4('10.0.0.1', '10.0.0.2', 'x'));
  w.pump();
  // A new initiation 17 ms later (a newer TAI64N, but bypassing A's own rate limit) is refused.
  pa.lastSentHandshake = -Infinity;
  w.now += 17;
  a.device['sendInitiation'](pa, false, w.now, a.out);
  w.pump();
  assert.ok(b.drops.includes('initiation_flood'));
});

test('a spoofed inner source address is dropped', () => {
  const { w, a, b } = pair();
  ping(w, a, b, '10.0.0.1', '10.0.0.2', 'x');
  const n = b.delivered.length;
  a.send(ipv4('10.9.9.9', '10.0.0.2', 'spoof'));
  w.pump();
  assert.equal(b.delivered.length, n);
  assert.ok(b.drops.includes('spoofed_source'));
});

test('endpoint roaming follows authenticated packets only', () => {
  const { w, a, b, pb } = pair();
  ping(w, a, b, '10.0.0.1', '10.0.0.2', 'x');
  assert.equal(pb.endpoint?.port, 51820);
  // Garbage from a new address does not move the endpoint.
  b.device.receiveDatagram(
    new Uint8Array(64).fill(4, 0, 1),
    { family: 4, address: '203.0.113.9', port: 9 },
    w.now,
    b.out,
  );
  assert.equal(pb.endpoint?.address, '192.0.2.1');
  // A moves to a new address and port: its next packet moves B's endpoint.
  a.endpoint = { family: 4, address: '198.51.100.7', port: 4000 };
  assert.deepEqual(ping(w, a, b, '10.0.0.1', '10.0.0.2', 'moved'), ['moved']);
  assert.equal(pb.endpoint?.address, '198.51.100.7');
  assert.equal(pb.endpoint?.port, 4000);
  assert.deepEqual(ping(w, b, a, '10.0.0.2', '10.0.0.1', 'reply'), ['reply']);
});

test('simultaneous initiation from both sides converges', () => {
  const { w, a, b, pa, pb } = pair();
  a.send(ipv4('10.0.0.1', '10.0.0.2', 'from a'));
  b.send(ipv4('10.0.0.2', '10.0.0.1', 'from b'));
  w.pump();
  w.advance(30_000);
  assert.ok(pa.current && pb.current);
  assert.equal(pa.current.localIndex, pb.current.remoteIndex);
  assert.equal(pb.current.localIndex, pa.current.remoteIndex);
  assert.deepEqual(ping(w, a, b, '10.0.0.1', '10.0.0.2', 'after'), ['after']);
  assert.deepEqual(ping(w, b, a, '10.0.0.2', '10.0.0.1', 'after'), ['after']);
  assert.ok(b.delivered.some((p) => text(p) === 'from a'));
  assert.ok(a.delivered.some((p) => text(p) === 'from b'));
});

function underLoadPair() {
  const p = pair();
  const { w, b } = p;
  // An attacker who knows B's public key floods valid-mac1 initiations from many addresses.
  const k1 = mac1Key(b.publicKey);
  const flood = (count: number) => {
    for (let i = 0; i < count; i++) {
      const m = new Uint8Array(randomBytes(Initiation.size));
      m.set([1, 0, 0, 0]);
      m.set(mac(k1, m.subarray(0, Initiation.mac1)), Initiation.mac1);
      b.device.receiveDatagram(
        m,
        { family: 4, address: `203.0.113.${i % 250}`, port: 1000 + i },
        w.now,
        b.out,
      );
    }
    w.queue = w.queue.filter((d) => !d.to.address.startsWith('203.')); // replies go nowhere
  };
  return { ...p, flood };
}

test('under load: cookie reply instead of DH; the initiator resends with mac2 at once', () => {
  const { w, a, b, pa, flood } = underLoadPair();
  flood(200);
  assert.ok(b.device.isUnderLoad(w.now));
  assert.equal(b.device.drops.handshake_failed, 128, 'DH work stops once under load');
  const since = w.log.length;
  const t0 = w.now;
  a.send(ipv4('10.0.0.1', '10.0.0.2', 'through the flood'));
  w.pump();
  assert.ok(b.drops.includes('cookie_required'), 'the first initiation earned a cookie');
  // wireguard-go and the kernel would wait REKEY_TIMEOUT (5 s) for their retransmit.
  assert.equal(w.now, t0, 'no time passed');
  assert.ok(pa.current, 'handshake completed under load');
  assert.equal(w.sent(a, 1, since).length, 2, 'the initiation and one resend with mac2');
  assert.equal(w.sent(b, 3, since).length, 1, 'one cookie reply');
  assert.ok(b.delivered.some((p) => text(p) === 'through the flood'));
});

test('under load: a responder that keeps sending cookies gets one resend per attempt', () => {
  const { w, a, pa, flood } = underLoadPair();
  flood(200);
  // Spoil mac2 of everything A sends, so B answers every initiation with a cookie reply.
  w.filter = (d) => {
    if (d.data[0] === 1 && d.from.address === a.endpoint.address) d.data[147]! ^= 1;
    return true;
  };
  const since = w.log.length;
  a.send(ipv4('10.0.0.1', '10.0.0.2', 'x'));
  w.pump();
  assert.equal(w.sent(a, 1, since).length, 2, 'the initiation and one resend, not a loop');
  for (let i = 0; i < 6; i++) {
    flood(150);
    w.advance(1000);
  }
  // One regular retransmit (5 s + jitter) and its one resend.
  assert.equal(w.sent(a, 1, since).length, 4);
  assert.equal(pa.current, null);
});

test('under load: one source gets at most its burst of cookie replies; others still get theirs', () => {
  const { w, a, b, pa, flood } = underLoadPair();
  flood(200);
  const k1 = mac1Key(b.publicKey);
  const attacker = { family: 4 as const, address: '198.51.100.7', port: 4444 };
  const replies0 = w.queue.length;
  for (let i = 0; i < 1000; i++) {
    const m = new Uint8Array(randomBytes(Initiation.size));
    m.set([1, 0, 0, 0]);
    m.set(mac(k1, m.subarray(0, Initiation.mac1)), Initiation.mac1);
    m.fill(0, Initiation.mac2); // no mac2: a flooder that ignores cookies
    b.device.receiveDatagram(m, attacker, w.now, b.out);
  }
  const toAttacker = w.queue.slice(replies0).filter((d) => d.to.address === attacker.address);
  assert.equal(toAttacker.length, 5, 'the burst, then nothing');
  assert.equal(b.device.drops.cookie_rate_limited, 995);
  w.queue = w.queue.filter((d) => d.to.address !== attacker.address);
  // The legitimate peer, from its own address, still gets a cookie and completes at once.
  a.send(ipv4('10.0.0.1', '10.0.0.2', 'legit'));
  w.pump();
  assert.ok(pa.current, 'handshake completed');
  // A second later the attacker's budget is full again: its burst, no more.
  w.advance(1000);
  flood(150);
  const r1 = w.queue.length;
  for (let i = 0; i < 100; i++) {
    const m = new Uint8Array(randomBytes(Initiation.size));
    m.set([1, 0, 0, 0]);
    m.set(mac(k1, m.subarray(0, Initiation.mac1)), Initiation.mac1);
    m.fill(0, Initiation.mac2);
    b.device.receiveDatagram(m, attacker, w.now, b.out);
  }
  assert.equal(w.queue.slice(r1).filter((d) => d.to.address === attacker.address).length, 5);
});

/** A valid-mac1 initiation to `b` with mac2 all zero, or random when `mac2` says so. */
function floodInitiation(k1: Uint8Array, mac2: 'zero' | 'random' = 'zero'): Uint8Array {
  const m = new Uint8Array(randomBytes(Initiation.size));
  m.set([1, 0, 0, 0]);
  m.set(mac(k1, m.subarray(0, Initiation.mac1)), Initiation.mac1);
  if (mac2 === 'zero') m.fill(0, Initiation.mac2);
  return m;
}

for (const mac2 of ['zero', 'random'] as const) {
  test(`under load from 70,000 sources (mac2 ${mac2}): 4,096 stranger cookies a second, peers still get theirs`, () => {
    const { w, a, b, pa, flood } = underLoadPair();
    flood(200);
    const k1 = mac1Key(b.publicKey);
    const budget = 4096;
    const earlier = b.device.drops.cookie_required; // the warm-up flood's strangers
    let replies = 0;
    const sendFrom = (i: number) => {
      const src = {
        family: 4 as const,
        address: `10.${128 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`,
        port: 7,
      };
      b.device.receiveDatagram(floodInitiation(k1, mac2), src, w.now, b.out);
    };
    // 70,000 distinct sources within one instant: past the per-source table (65,536).
    for (let i = 0; i < 70_000; i++) {
      sendFrom(i);
      if (w.queue.length > 0) {
        replies += w.queue.filter((d) => d.to.address.startsWith('10.')).length;
        w.queue = w.queue.filter((d) => !d.to.address.startsWith('10.'));
      }
    }
    // The burst that the device had saved up (all of it), none past it.
    assert.equal(replies + earlier, budget, 'cookie replies to strangers');
    assert.equal(b.device.drops.cookie_over_budget, 70_000 - replies);
    // The peer at its configured endpoint still gets its cookie and completes at once.
    const t0 = w.now;
    a.send(ipv4('10.0.0.1', '10.0.0.2', 'legit'));
    w.pump();
    assert.equal(w.now, t0);
    assert.ok(pa.current, 'handshake completed through the flood');
    // Half a second on, half the budget is back: strangers get 2,048 more, then nothing.
    w.advance(500);
    const before = b.device.drops.cookie_required;
    flood(150); // keeps the device under load; its strangers take from the same budget
    replies = b.device.drops.cookie_required - before;
    for (let i = 70_000; i < 80_000; i++) {
      sendFrom(i);
      replies += w.queue.filter((d) => d.to.address.startsWith('10.')).length;
      w.queue = w.queue.filter((d) => !d.to.address.startsWith('10.'));
    }
    assert.ok(
      replies >= budget / 2 - 8 && replies <= budget / 2 + 8,
      `${replies} replies after 0.5 s`,
    );
  });
}

test('under load, past the device-wide budget, a message with a valid mac2 still gets its DH', () => {
  // A roaming peer B does not know yet: a stranger. Its cookie came before the flood; its
  // resend with mac2 gets through although strangers get no more cookie replies.
  const { w, a, b, pa, pb, flood } = underLoadPair();
  pb.endpoint = null;
  flood(200);
  const k1 = mac1Key(b.publicKey);
  for (let i = 0; i < 70_000; i++) {
    const src = {
      family: 4 as const,
      address: `10.${128 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`,
      port: 7,
    };
    b.device.receiveDatagram(floodInitiation(k1), src, w.now, b.out);
  }
  w.queue = w.queue.filter((d) => !d.to.address.startsWith('10.'));
  const over = b.device.drops.cookie_over_budget;
  a.send(ipv4('10.0.0.1', '10.0.0.2', 'roamed'));
  w.pump();
  assert.equal(pa.current, null, 'no cookie for a stranger past the budget');
  assert.equal(b.device.drops.cookie_over_budget, over + 1);
  // A second later the budget is back: A's retransmit earns a cookie, its resend the session.
  w.advance(5_500);
  flood(150);
  w.pump();
  assert.ok(pa.current, 'handshake completed at the retransmit');
});

test('malformed datagrams are dropped with a counted reason and leave no state', () => {
  const { w, b } = pair();
  const src = { family: 4 as const, address: '203.0.113.1', port: 1 };
  const cases: [Uint8Array, string][] = [
    [new Uint8Array(0), 'short_packet'],
    [Uint8Array.of(1, 0, 0), 'short_packet'],
    [Uint8Array.of(9, 0, 0, 0, 1, 2), 'unknown_type'],
    [Uint8Array.of(1, 1, 0, 0), 'unknown_type'],
    [new Uint8Array(147).fill(1, 0, 1), 'bad_length'],
    [new Uint8Array(93).fill(2, 0, 1), 'bad_length'],
    [new Uint8Array(63).fill(3, 0, 1), 'bad_length'],
    [new Uint8Array(31).fill(4, 0, 1), 'bad_length'],
    [new Uint8Array(148).fill(1, 0, 1), 'bad_mac1'],
    [new Uint8Array(92).fill(2, 0, 1), 'bad_mac1'],
    [new Uint8Array(64).fill(3, 0, 1), 'unknown_index'],
    [new Uint8Array(48).fill(4, 0, 1), 'unknown_index'],
  ];
  for (const [d, reason] of cases) {
    b.drops.length = 0;
    assert.doesNotThrow(() => b.device.receiveDatagram(d, src, w.now, b.out));
    assert.deepEqual(b.drops, [reason], `datagram of ${d.length} bytes`);
  }
  for (let i = 0; i < 2000; i++) {
    const d = new Uint8Array(randomBytes(1 + (i % 200)));
    if (d.length >= 4 && i % 2 === 0) d.set([(i % 4) + 1, 0, 0, 0]);
    b.device.receiveDatagram(d, src, w.now, b.out);
  }
  assert.equal(b.device.indexCount, 0);
  assert.equal(b.device.peers.size, 1);
  assert.equal(b.delivered.length, 0);
});

test('a transport packet with a bad tag or a counter far beyond the window', () => {
  const { w, a, b } = pair();
  ping(w, a, b, '10.0.0.1', '10.0.0.2', 'x');
  const data = w.sent(a, 4).find((d) => d.data.length > 32)!;
  const bad = Uint8Array.from(data.data);
  bad[bad.length - 1] = bad[bad.length - 1]! ^ 1;
  b.device.receiveDatagram(bad, data.from, w.now, b.out);
  assert.ok(b.drops.includes('decrypt_failed'));
  const huge = Uint8Array.from(data.data);
  huge.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 8);
  b.device.receiveDatagram(huge, data.from, w.now, b.out);
  assert.ok(b.drops.includes('counter_limit'));
  // The real sender is not locked out.
  assert.deepEqual(ping(w, a, b, '10.0.0.1', '10.0.0.2', 'still'), ['still']);
});

test('a private-key change lets the next packet handshake at once (netns.sh, the kernel)', () => {
  const { w, a, b, pa } = pair();
  ping(w, a, b, '10.0.0.1', '10.0.0.2', 'x'); // A sent an initiation just now
  a.device.setPrivateKey(new Uint8Array(randomBytes(32)));
  const since = w.log.length;
  a.send(ipv4('10.0.0.1', '10.0.0.2', 'y'));
  w.pump();
  // Not held back by the one-initiation-per-REKEY_TIMEOUT rule: the old attempt is void.
  assert.equal(w.sent(a, 1, since).length, 1);
  assert.equal(pa.current!.canSend(w.now), false);
});

test('changing the private key expires sessions and the next packet handshakes again', () => {
  const { w, a, b, pa } = pair();
  ping(w, a, b, '10.0.0.1', '10.0.0.2', 'x');
  const old = pa.current;
  a.device.setPrivateKey(a.privateKey); // same key: nothing happens
  assert.equal(pa.current, old);
  assert.ok(pa.current!.canSend(w.now));
  const otherKey = new Uint8Array(randomBytes(32));
  a.device.setPrivateKey(otherKey);
  assert.equal(pa.current!.canSend(w.now), false);
  // B does not know A's new key: A's initiations now fail at B.
  w.advance(5_000);
  a.send(ipv4('10.0.0.1', '10.0.0.2', 'y'));
  w.pump();
  assert.ok(b.drops.includes('unknown_peer'));
});
