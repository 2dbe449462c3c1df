/**
 * The responder's record of sources it gave a cookie to (CookieChecker.issue / mayHold): past the
 * device-wide cookie budget under load, a message with a mac2 is hashed only when its source may
 * hold a cookie, so the record must never forget a source it gave one to (no false negatives, at
 * the sizes a flood produces), must forget them all when the secret changes, and must say no to
 * nearly every source it never answered.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { CookieChecker } from '../../src/noise/cookie.js';

const rnd = (n: number) => new Uint8Array(randomBytes(n));

function source(i: number, v6 = false): Uint8Array {
  const b = new Uint8Array(v6 ? 18 : 6);
  const dv = new DataView(b.buffer);
  if (v6) {
    dv.setUint32(0, 0x20010db8);
    dv.setUint32(4, i);
  } else dv.setUint32(0, (10 << 24) | i);
  dv.setUint16(b.length - 2, 51820 + (i & 7));
  return b;
}

test('every source given a cookie may hold one; of 500,000 never answered, under 2% are let through', () => {
  const c = new CookieChecker(rnd(32));
  const now = 1000;
  for (let i = 0; i < 250_000; i++) {
    c.issue(source(i), now, rnd);
    c.issue(source(i, true), now, rnd);
  }
  for (let i = 0; i < 250_000; i++) {
    assert.ok(c.mayHold(source(i), now + 60_000), `IPv4 source ${i}`);
    assert.ok(c.mayHold(source(i, true), now + 60_000), `IPv6 source ${i}`);
  }
  let wrong = 0;
  for (let i = 250_000; i < 500_000; i++) {
    if (c.mayHold(source(i), now)) wrong++;
    if (c.mayHold(source(i, true), now)) wrong++;
  }
  assert.ok(wrong < 10_000, `${wrong} of 500,000 unanswered sources let through`);
});

test('the same address on another port holds no cookie; none survives the secret', () => {
  const c = new CookieChecker(rnd(32));
  const s = source(1);
  assert.equal(c.mayHold(s, 0), false, 'nothing issued yet');
  c.issue(s, 0, rnd);
  assert.ok(c.mayHold(s, 119_000));
  const otherPort = s.slice();
  otherPort[5] ^= 0x40;
  assert.equal(c.mayHold(otherPort, 0), false);
  // Two minutes on the secret is renewed: every cookie given before is invalid.
  assert.equal(c.mayHold(s, 121_000), false, 'secret expired');
  c.cookieFor(source(2), 121_000, rnd);
  assert.equal(c.mayHold(s, 121_000), false, 'forgotten with the old secret');
});
