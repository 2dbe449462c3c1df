/**
 * The handshake rate limiter on a virtual clock: burst, refill rate, independence of sources,
 * IPv6 /64 grouping, idle collection and the table bound.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  GlobalBudget,
  RateLimiter,
  RATE_LIMITER_MAX_ENTRIES,
} from '../../src/tunnel/rate-limiter.js';
import { RATE_LIMIT_BURST, RATE_LIMIT_PACKETS_PER_SECOND } from '../../src/constants.js';
import { parseAddress } from '../../src/tunnel/ip.js';

function addr(s: string): Uint8Array {
  const b = parseAddress(s);
  assert.ok(b, s);
  return b;
}

/** How many of `n` packets at the same instant are allowed. */
function burst(rl: RateLimiter, a: Uint8Array, nowMs: number, n: number): number {
  let ok = 0;
  for (let i = 0; i < n; i++) if (rl.allow(a, nowMs)) ok++;
  return ok;
}

test('constants are 20/s with a burst of 5', () => {
  assert.equal(RATE_LIMIT_PACKETS_PER_SECOND, 20);
  assert.equal(RATE_LIMIT_BURST, 5);
});

test('a new source gets a burst of 5, then is denied', () => {
  const rl = new RateLimiter();
  const a = addr('192.0.2.1');
  for (let i = 0; i < 5; i++) assert.equal(rl.allow(a, 1000), true, `packet ${i + 1}`);
  assert.equal(rl.allow(a, 1000), false);
  assert.equal(rl.allow(a, 1000), false);
  assert.equal(rl.size, 1);
});

test('tokens refill at 20 per second (one per 50 ms), capped at the burst', () => {
  const rl = new RateLimiter();
  const a = addr('192.0.2.1');
  let now = 10_000;
  assert.equal(burst(rl, a, now, 10), 5);
  now += 49;
  assert.equal(rl.allow(a, now), false, '49 ms is not enough for a token');
  now += 1;
  assert.equal(rl.allow(a, now), true, '50 ms earns one');
  assert.equal(rl.allow(a, now), false);
  // A steady 20/s stream is allowed indefinitely; 40/s gets half through.
  let ok = 0;
  for (let i = 0; i < 100; i++) if (rl.allow(a, (now += 50))) ok++;
  assert.equal(ok, 100);
  ok = 0;
  for (let i = 0; i < 100; i++) if (rl.allow(a, (now += 25))) ok++;
  assert.equal(ok, 50);
  // A long pause refills only up to the burst.
  now += 60_000;
  assert.equal(burst(rl, a, now, 10), 5);
});

test('sources are independent', () => {
  const rl = new RateLimiter();
  const a = addr('192.0.2.1');
  const b = addr('192.0.2.2');
  assert.equal(burst(rl, a, 0, 10), 5);
  assert.equal(burst(rl, b, 0, 10), 5);
  assert.equal(rl.allow(a, 0), false);
  assert.equal(rl.size, 2);
});

test('IPv6 sources share a bucket per /64', () => {
  const rl = new RateLimiter();
  assert.equal(burst(rl, addr('2001:db8:1:2::1'), 0, 3), 3);
  assert.equal(burst(rl, addr('2001:db8:1:2:ffff:ffff:ffff:ffff'), 0, 3), 2, 'same /64');
  assert.equal(burst(rl, addr('2001:db8:1:3::1'), 0, 10), 5, 'next /64 is separate');
  assert.equal(rl.size, 2);
  // An IPv4 address equal to the first 4 bytes of a v6 key is a different source.
  assert.equal(burst(rl, Uint8Array.of(0x20, 0x01, 0x0d, 0xb8), 0, 10), 5);
  assert.equal(rl.allow(new Uint8Array(7), 0), false, 'malformed address');
});

test('gc drops entries idle for more than 1 s only', () => {
  const rl = new RateLimiter();
  rl.allow(addr('192.0.2.1'), 0);
  rl.allow(addr('192.0.2.2'), 600);
  rl.allow(addr('2001:db8::1'), 900);
  rl.gc(1000);
  assert.equal(rl.size, 3, 'exactly 1 s idle is kept');
  rl.gc(1001);
  assert.equal(rl.size, 2);
  rl.gc(1601);
  assert.equal(rl.size, 1);
  rl.gc(5000);
  assert.equal(rl.size, 0);
  // After collection the source starts over with a fresh burst.
  assert.equal(burst(rl, addr('192.0.2.1'), 5000, 10), 5);
});

test('the table is bounded: new sources are denied when full, known ones still served', () => {
  const rl = new RateLimiter();
  const a = new Uint8Array(4);
  a[0] = 10;
  for (let i = 0; i < RATE_LIMITER_MAX_ENTRIES; i++) {
    a[1] = i >> 16;
    a[2] = (i >> 8) & 0xff;
    a[3] = i & 0xff;
    assert.equal(rl.allow(a, 0), true);
  }
  assert.equal(rl.size, RATE_LIMITER_MAX_ENTRIES);
  assert.equal(rl.allow(addr('192.0.2.1'), 0), false, 'new source, table full');
  assert.equal(rl.allow(addr('2001:db8::1'), 0), false);
  assert.equal(rl.allow(addr('10.0.0.7'), 0), true, 'known source with tokens left');
  assert.equal(rl.size, RATE_LIMITER_MAX_ENTRIES);
  rl.gc(1001);
  assert.equal(rl.size, 0);
  assert.equal(rl.allow(addr('192.0.2.1'), 1001), true, 'room again after gc');
});

test('a smaller bound can be chosen', () => {
  const rl = new RateLimiter(2);
  assert.equal(rl.allow(addr('192.0.2.1'), 0), true);
  assert.equal(rl.allow(addr('192.0.2.2'), 0), true);
  assert.equal(rl.allow(addr('192.0.2.3'), 0), false);
  assert.equal(rl.size, 2);
});

test('allowWhenFull (the cookie-reply limiter): a full table lets new sources through, untracked', () => {
  const rl = new RateLimiter(3, true);
  for (const s of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) assert.equal(rl.allow(addr(s), 0), true);
  for (let i = 0; i < 10; i++) assert.equal(rl.allow(addr('192.0.2.1'), 0), true, 'fail open');
  assert.equal(rl.size, 3, 'the table does not grow');
  assert.equal(burst(rl, addr('10.0.0.1'), 0, 10), 4, 'known sources keep their budget');
});

test('wouldAllow answers what allow would, without spending a token', () => {
  const rl = new RateLimiter(2);
  const a = addr('192.0.2.1');
  for (let i = 0; i < 10; i++) assert.equal(rl.wouldAllow(a, 0), true, 'asking costs nothing');
  for (let i = 0; i < 6; i++) assert.equal(rl.wouldAllow(a, 0), rl.allow(a, 0), `message ${i}`);
  assert.equal(rl.wouldAllow(a, 0), false, 'burst spent');
  assert.equal(rl.wouldAllow(a, 50), true, 'one token back after 50 ms');
  rl.allow(addr('192.0.2.2'), 0);
  assert.equal(rl.wouldAllow(addr('192.0.2.3'), 0), false, 'full table, new source');
  assert.equal(new RateLimiter(0, true).wouldAllow(a, 0), true, 'fails open when asked to');
});

test('more than 65,536 IPv6 /64s: the 65,537th is denied, hosts inside a known /64 are not new', () => {
  const rl = new RateLimiter();
  const a = new Uint8Array(16);
  a[0] = 0x20;
  a[1] = 0x01;
  for (let i = 0; i < RATE_LIMITER_MAX_ENTRIES; i++) {
    a[4] = i >> 8;
    a[5] = i & 0xff;
    a[15] = i & 0xff; // the host part varies too: it must not matter
    assert.equal(rl.allow(a, 0), true);
  }
  assert.equal(rl.size, RATE_LIMITER_MAX_ENTRIES);
  a[3] = 1; // the 65,537th /64
  assert.equal(rl.allow(a, 0), false);
  a[3] = 0;
  a[4] = 0;
  a[5] = 7;
  a[8] = 0xff; // another host in a known /64: its bucket, not a new entry
  assert.equal(rl.allow(a, 0), true);
  assert.equal(rl.size, RATE_LIMITER_MAX_ENTRIES);
});

test('a sustained flood of new sources, gc every 100 ms: bounded table, known peers keep their rate', () => {
  // 200,000 new sources a second for 5 virtual seconds, IPv4 and IPv6 /64s alternating; a peer
  // known before the flood sends 10 handshakes a second (under the 20/s budget) throughout.
  for (const allowWhenFull of [false, true]) {
    const rl = new RateLimiter(RATE_LIMITER_MAX_ENTRIES, allowWhenFull);
    const peer = addr('192.0.2.10');
    assert.equal(rl.allow(peer, 0), true);
    const v4 = new Uint8Array(4);
    const v6 = new Uint8Array(16);
    v6[0] = 0xfd;
    let n = 0;
    let peerOk = 0;
    let peerSent = 0;
    let maxSize = 0;
    for (let ms = 1; ms <= 5_000; ms++) {
      for (let k = 0; k < 200; k++, n++) {
        if (n & 1) {
          v4[0] = 10 + ((n >>> 24) & 0x3f);
          v4[1] = n >>> 16;
          v4[2] = n >>> 8;
          v4[3] = n;
          rl.allow(v4, ms);
        } else {
          v6[4] = n >>> 24;
          v6[5] = n >>> 16;
          v6[6] = n >>> 8;
          v6[7] = n;
          rl.allow(v6, ms);
        }
      }
      if (ms % 100 === 0) {
        peerSent++;
        if (rl.allow(peer, ms)) peerOk++;
        rl.gc(ms);
      }
      maxSize = Math.max(maxSize, rl.size);
    }
    assert.equal(n, 1_000_000);
    assert.ok(maxSize <= RATE_LIMITER_MAX_ENTRIES, `size ${maxSize}`);
    assert.equal(maxSize, RATE_LIMITER_MAX_ENTRIES, 'the flood does fill the table');
    assert.equal(peerOk, peerSent, `peer allowed ${peerOk}/${peerSent}`);
    rl.gc(6_001);
    assert.equal(rl.size, 0, 'everything idle is collected after the flood');
  }
});

test('the device-wide budget: its burst at once, then its rate, never more than the burst saved', () => {
  const b = new GlobalBudget(4096);
  let n = 0;
  while (b.take(1000)) n++;
  assert.equal(n, 4096, 'the whole burst at the first instant');
  assert.equal(b.wouldAllow(1000), false);
  // 10 ms earn 40.96 tokens: 40 takes, the fraction kept for later.
  n = 0;
  while (b.take(1010)) n++;
  assert.equal(n, 40);
  n = 0;
  while (b.take(1020)) n++;
  assert.equal(n, 41, 'the fractions add up');
  // A long idle refills to the burst, not beyond it; a clock going back earns nothing.
  n = 0;
  while (b.take(60_000)) n++;
  assert.equal(n, 4096);
  assert.equal(b.take(59_000), false);
  assert.equal(b.wouldAllow(60_000), false, 'wouldAllow takes nothing');
});
