// The native keyed BLAKE2s (src/tun/mac.ts over src/tun/native/mac.c, OpenSSL BLAKE2SMAC): the
// RFC 7693 / reference keyed vectors, agreement with noble over random keys, inputs and output
// lengths, the protocol's MAC and cookie checks with it installed, and refusal of a wrong one.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { blake2s } from '@noble/hashes/blake2.js';
import { hasFastMac, mac, useKeyedBlake2s } from '../../src/noise/crypto.js';
import { CookieChecker, CookieGenerator } from '../../src/noise/cookie.js';
import { native } from '../../src/tun/native.js';
import { installNativeMac } from '../../src/tun/mac.js';
import { nativeAeadAvailable, nativeAeadUnavailableReason } from '../../src/tun/aead.js';

const skip = nativeAeadAvailable() ? false : `addon unavailable: ${nativeAeadUnavailableReason()}`;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (n: number) => new Uint8Array(randomBytes(n));

after(() => useKeyedBlake2s(null));

test('reference keyed vectors (blake2s-kat.txt, key 00..1f)', { skip }, () => {
  const key = Uint8Array.from({ length: 32 }, (_, i) => i);
  const kat = (input: Uint8Array) => {
    const out = new Uint8Array(32);
    native().blake2sMac(key, input, out);
    return hex(out);
  };
  assert.equal(
    kat(new Uint8Array(0)),
    '48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49',
  );
  assert.equal(
    kat(Uint8Array.of(0)),
    '40d15fee7c328830166ac3f918650f807e7e01e177258cdc0a39b11f598066f1',
  );
  // Input 00..fe (255 bytes), the last line of the keyed KAT file.
  assert.equal(
    kat(Uint8Array.from({ length: 255 }, (_, i) => i)),
    '3fb735061abc519dfe979e54c1ee5bfad0a9d858b3315bad34bde999efd724dd',
  );
});

test('agrees with noble for random keys, inputs and output lengths', { skip }, () => {
  for (let i = 0; i < 2000; i++) {
    const key = bytes(1 + (i % 32));
    const data = bytes((i * 37) % 300);
    const outLen = 1 + ((i * 13) % 32);
    const out = new Uint8Array(outLen);
    native().blake2sMac(key, data, out);
    assert.equal(hex(out), hex(blake2s(data, { key, dkLen: outLen })), `case ${i}`);
  }
});

test('bad lengths throw instead of computing something else', { skip }, () => {
  const m = native();
  assert.throws(() => m.blake2sMac(new Uint8Array(0), bytes(4), new Uint8Array(16)), RangeError);
  assert.throws(() => m.blake2sMac(bytes(33), bytes(4), new Uint8Array(16)), RangeError);
  assert.throws(() => m.blake2sMac(bytes(32), bytes(4), new Uint8Array(33)), RangeError);
  assert.throws(() => m.blake2sMac(bytes(32), bytes(4), new Uint8Array(0)), RangeError);
});

test('installed as the MAC: same mac1/mac2/cookie results as noble', { skip }, () => {
  const responderPub = bytes(32);
  const msg = bytes(148);
  const key = bytes(32);
  useKeyedBlake2s(null);
  const gen = new CookieGenerator(responderPub);
  gen.addMacs(msg, 0);
  const want = hex(mac(key, msg));
  assert.equal(installNativeMac(), true);
  assert.equal(hasFastMac(), true);
  assert.equal(hex(mac(key, msg)), want);
  const checker = new CookieChecker(responderPub);
  assert.equal(checker.checkMac1(msg), true, 'mac1 made by noble checks with native');
  const bad = Uint8Array.from(msg);
  bad[10]! ^= 1;
  assert.equal(checker.checkMac1(bad), false);
  // A cookie round with the native MAC: the generator's mac2 passes the checker's check.
  const source = bytes(6);
  const cookie = checker.cookieFor(source, 0, bytes);
  const reply = checker.createReply(msg, 7, cookie, bytes);
  assert.equal(gen.consumeReply(reply, 0), true);
  gen.addMacs(msg, 0);
  assert.equal(checker.checkMac2(msg, checker.cookieFor(source, 0, bytes)), true);
  useKeyedBlake2s(null);
  assert.equal(hasFastMac(), false);
});

test('a MAC that disagrees with noble is refused and noble stays', () => {
  useKeyedBlake2s(null);
  assert.equal(
    useKeyedBlake2s((_k, _d, out) => out.fill(1)),
    false,
  );
  assert.equal(
    useKeyedBlake2s(() => {
      throw new Error('broken');
    }),
    false,
  );
  assert.equal(hasFastMac(), false);
});
