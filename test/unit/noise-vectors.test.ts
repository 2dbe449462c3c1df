// Known-answer tests for the primitives and the handshake: RFC 7748, RFC 8439, the XChaCha
// draft, RFC 7693, wireguard-go's KDF vectors and cacophony's Noise_IKpsk2 vector.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { x25519 } from '@noble/curves/ed25519.js';
import { blake2s } from '@noble/hashes/blake2.js';
import {
  dh,
  generateKeyPair,
  hash,
  hmac,
  kdf1,
  kdf2,
  kdf3,
  mac,
  publicKeyOf,
} from '../../src/noise/crypto.js';
import { nobleAead, nodeAead, xopen, xseal, type Aead } from '../../src/noise/aead.js';
import { nativeAead, nativeAeadAvailable } from '../../src/tun/aead.js';
import {
  protocol,
  readInitiation,
  readResponse,
  staticKeys,
  writeInitiation,
  writeResponse,
  WIREGUARD,
} from '../../src/noise/handshake.js';
import { tai64n, compareTai64n } from '../../src/noise/tai64n.js';
import {
  keyFromBase64,
  keyToBase64,
  keyFromHex,
  generatePrivateKey,
} from '../../src/noise/keys.js';

const hex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const vectorDir = new URL('../../../test/vectors/', import.meta.url);

test('RFC 7748 §6.1 X25519 Alice and Bob', () => {
  const alicePriv = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
  const bobPriv = hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
  assert.equal(
    toHex(publicKeyOf(alicePriv)),
    '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a',
  );
  const bobPub = publicKeyOf(bobPriv);
  assert.equal(toHex(bobPub), 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
  assert.equal(
    toHex(dh(alicePriv, bobPub)!),
    '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742',
  );
});

test('RFC 7748 §5.2 X25519 function vectors', () => {
  const cases = [
    [
      'a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4',
      'e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c',
      'c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552',
    ],
    [
      '4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d',
      'e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493',
      '95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957',
    ],
  ] as const;
  for (const [k, u, out] of cases) assert.equal(toHex(dh(hex(k), hex(u))!), out);
});

test('X25519 rejects a low-order point (all-zero shared secret)', () => {
  const priv = generatePrivateKey();
  assert.equal(dh(priv, new Uint8Array(32)), null);
  const order8 = hex('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800');
  assert.equal(dh(priv, order8), null);
});

test('X25519 agrees with noble on random keys', () => {
  for (let i = 0; i < 50; i++) {
    const a = randomBytes(32);
    const b = randomBytes(32);
    const bPub = x25519.getPublicKey(b);
    assert.equal(toHex(publicKeyOf(a)), toHex(x25519.getPublicKey(a)));
    assert.equal(toHex(dh(a, bPub)!), toHex(x25519.getSharedSecret(a, bPub)));
  }
});

const sunscreen = new TextEncoder().encode(
  "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
);

const backends: Aead[] = [nodeAead, nobleAead];
if (nativeAeadAvailable()) backends.push(nativeAead);

for (const aead of backends) {
  test(`RFC 8439 §2.8.2 ChaCha20-Poly1305 (${aead.name})`, () => {
    const key = hex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f');
    const nonce = hex('070000004041424344454647');
    const ad = hex('50515253c0c1c2c3c4c5c6c7');
    const out = new Uint8Array(sunscreen.length + 16);
    aead.sealWithNonce(key, nonce, sunscreen, ad, out, 0);
    assert.equal(
      toHex(out),
      'd31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b' +
        '1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7' +
        'bc3ff4def08e4b7a9de576d26586cec64b61161ae10b594f09e26a7e902ecbd0600691',
    );
    const back = new Uint8Array(sunscreen.length);
    assert.equal(aead.openWithNonce(key, nonce, out, ad, back, 0), sunscreen.length);
    assert.deepEqual(back, sunscreen);
    assert.equal(aead.openWithNonce(key, nonce, out, null, back, 0), -1, 'AD is authenticated');
    out[5] = out[5]! ^ 1;
    assert.equal(aead.openWithNonce(key, nonce, out, ad, back, 0), -1);
  });

  test(`RFC 8439 A.5 ChaCha20-Poly1305 decryption (${aead.name})`, () => {
    const key = hex('1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0');
    const nonce = hex('000000000102030405060708');
    const ad = hex('f33388860000000000004e91');
    const ct = hex(
      `64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb24c6cfc18755d43eea09ee94e382d26b0bdb7b73c321b0100d4f03b7f355894cf332f830e710b97ce98c8a84abd0b948114ad176e008d33bd60f982b1ff37c8559797a06ef4f0ef61c186324e2b3506383606907b6a7c02b0f9f6157b53c867e4b9166c767b804d46a59b5216cde7a4e99040c5a40433225ee282a1b0a06c523eaf4534d7f83fa1155b0047718cbc546a0d072b04b3564eea1b422273f548271a0bb2316053fa76991955ebd63159434ecebb4e466dae5a1073a6727627097a1049e617d91d361094fa68f0ff77987130305beaba2eda04df997b714d6c6f2c29a6ad5cb4022b02709b`,
    );
    const tag = hex('eead9d67890cbb22392336fea1851f38');
    const sealed = new Uint8Array(ct.length + 16);
    sealed.set(ct);
    sealed.set(tag, ct.length);
    const out = new Uint8Array(ct.length);
    assert.equal(aead.openWithNonce(key, nonce, sealed, ad, out, 0), ct.length);
    const text = Buffer.from(out).toString('utf8');
    assert.ok(
      text.startsWith('Internet-Drafts are draft documents valid for a maximum of six months'),
    );
    assert.ok(text.endsWith('/\u201cwork in progress./\u201d'));
    const again = new Uint8Array(sealed.length);
    aead.sealWithNonce(key, nonce, out, ad, again, 0);
    assert.deepEqual(again, sealed, 'sealing the plaintext gives the vector back');
  });
}

test('XChaCha20-Poly1305 draft-irtf-cfrg-xchacha-03 A.3.1', () => {
  const key = hex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f');
  const nonce = hex('404142434445464748494a4b4c4d4e4f5051525354555657');
  const ad = hex('50515253c0c1c2c3c4c5c6c7');
  const sealed = xseal(key, nonce, sunscreen, ad);
  assert.equal(toHex(sealed.subarray(0, 16)), 'bd6d179d3e83d43b9576579493c0e939');
  assert.equal(toHex(sealed.subarray(sealed.length - 16)), 'c0875924c1c7987947deafd8780acf49');
  assert.deepEqual(xopen(key, nonce, sealed, ad), sunscreen);
  sealed[0] = sealed[0]! ^ 1;
  assert.equal(xopen(key, nonce, sealed, ad), null);
});

test('RFC 7693 BLAKE2s: "abc", the Appendix E self-test, and keyed KAT', () => {
  assert.equal(
    toHex(hash(new TextEncoder().encode('abc'))),
    '508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982',
  );
  // RFC 7693 Appendix E: BLAKE2s self-test over digest lengths 16..32 and keyed/unkeyed inputs.
  const selftestSeq = (len: number, seed: number) => {
    const out = new Uint8Array(len);
    let a = Math.imul(0xdead4bad, seed) >>> 0;
    let b = 1;
    for (let i = 0; i < len; i++) {
      const t = (a + b) >>> 0;
      a = b;
      b = t;
      out[i] = (t >>> 24) & 0xff;
    }
    return out;
  };
  const outer = new Uint8Array(32);
  const hasher = blake2s.create({ dkLen: 32 });
  for (const outlen of [16, 20, 28, 32]) {
    for (const inlen of [0, 3, 64, 65, 255, 1024]) {
      const input = selftestSeq(inlen, inlen);
      hasher.update(blake2s(input, { dkLen: outlen }));
      const key = selftestSeq(outlen, outlen);
      hasher.update(blake2s(input, { dkLen: outlen, key }));
    }
  }
  hasher.digestInto(outer);
  assert.equal(toHex(outer), '6a411f08ce25adcdfb02aba641451cec53c598b24f4fc787fbdc88797f4c1dfe');
  // Keyed KAT (BLAKE2 reference blake2s-kat.txt), key 00..1f, input empty and 00.
  const key = new Uint8Array(32).map((_, i) => i);
  assert.equal(
    toHex(blake2s(new Uint8Array(0), { key })),
    '48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49',
  );
  assert.equal(
    toHex(blake2s(Uint8Array.of(0), { key })),
    '40d15fee7c328830166ac3f918650f807e7e01e177258cdc0a39b11f598066f1',
  );
  // Our 16-byte MAC is keyed BLAKE2s with dkLen 16 (a different parameter block, not a prefix).
  assert.equal(mac(key, new Uint8Array(0)).length, 16);
  assert.notEqual(
    toHex(mac(key, new Uint8Array(0))),
    toHex(blake2s(new Uint8Array(0), { key }).subarray(0, 16)),
  );
});

test('WireGuard KDF vectors (wireguard-go kdf_test.go) and HMAC-BLAKE2s', () => {
  const file = JSON.parse(readFileSync(new URL('wireguard-kdf.json', vectorDir), 'utf8')) as {
    vectors: { key: string; input: string; t0: string; t1: string; t2: string }[];
  };
  assert.equal(file.vectors.length, 3);
  for (const v of file.vectors) {
    const [t0, t1, t2] = kdf3(hex(v.key), hex(v.input));
    assert.equal(toHex(t0), v.t0);
    assert.equal(toHex(t1), v.t1);
    assert.equal(toHex(t2), v.t2);
    const [u0, u1] = kdf2(hex(v.key), hex(v.input));
    assert.equal(toHex(u0), v.t0);
    assert.equal(toHex(u1), v.t1);
    assert.equal(toHex(kdf1(hex(v.key), hex(v.input))), v.t0);
  }
  assert.equal(hmac(new Uint8Array(0), new Uint8Array(0)).length, 32);
});

test('WireGuard construction constants C0 and H0', () => {
  assert.equal(
    toHex(WIREGUARD.ck0),
    '60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36',
  );
  assert.equal(
    toHex(WIREGUARD.h0),
    '2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3',
  );
});

test('cacophony Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s vector through our handshake', () => {
  const file = JSON.parse(readFileSync(new URL('noise-ikpsk2.json', vectorDir), 'utf8')) as {
    vectors: {
      init_prologue: string;
      init_psks: string[];
      init_static: string;
      init_ephemeral: string;
      resp_static: string;
      resp_ephemeral: string;
      handshake_hash: string;
      messages: { payload: string; ciphertext: string }[];
    }[];
  };
  const v = file.vectors[0]!;
  const p = protocol(hex(v.init_prologue));
  const psk = hex(v.init_psks[0]!);
  const init = staticKeys(hex(v.init_static));
  const resp = staticKeys(hex(v.resp_static));
  const m = v.messages;

  // Message 1: initiator → responder.
  const p1 = hex(m[0]!.payload);
  const msg1 = new Uint8Array(80 + p1.length + 16);
  const ss = dh(init.keyObject, resp.publicKey)!;
  const ist = writeInitiation(
    p,
    init,
    resp.publicKey,
    ss,
    staticKeys(hex(v.init_ephemeral)),
    p1,
    msg1,
    0,
  )!;
  assert.equal(toHex(msg1), m[0]!.ciphertext);

  const got = readInitiation(p, resp, msg1, 0, p1.length, (s) =>
    toHex(s) === toHex(init.publicKey) ? dh(resp.keyObject, s) : null,
  );
  assert.ok(got.ok);
  assert.deepEqual(got.value.payload, p1);
  assert.deepEqual(got.value.remoteStatic, init.publicKey);

  // Message 2: responder → initiator.
  const p2 = hex(m[1]!.payload);
  const msg2 = new Uint8Array(32 + p2.length + 16);
  const rkeys = writeResponse(got.value, psk, staticKeys(hex(v.resp_ephemeral)), p2, msg2, 0)!;
  assert.equal(toHex(msg2), m[1]!.ciphertext);
  const back = readResponse(ist, init, psk, msg2, 0, p2.length)!;
  assert.deepEqual(back.payload, p2);
  assert.equal(toHex(back.keys.handshakeHash), v.handshake_hash);
  assert.equal(toHex(rkeys.handshakeHash), v.handshake_hash);

  // Transport messages alternate, each direction counting from 0, empty associated data.
  const counters = [0, 0];
  for (let i = 2; i < m.length; i++) {
    const fromInitiator = i % 2 === 0;
    const key = fromInitiator ? back.keys.sendInitiator : rkeys.sendResponder;
    const pt = hex(m[i]!.payload);
    const out = new Uint8Array(pt.length + 16);
    nodeAead.seal(key, counters[fromInitiator ? 0 : 1]!++, pt, null, out, 0);
    assert.equal(toHex(out), m[i]!.ciphertext, `message ${i + 1}`);
  }
});

test('a wrong responder key or PSK fails the handshake', () => {
  const a = staticKeys(generatePrivateKey());
  const b = staticKeys(generatePrivateKey());
  const c = staticKeys(generatePrivateKey());
  const msg = new Uint8Array(80 + 12 + 16);
  const st = writeInitiation(
    WIREGUARD,
    a,
    b.publicKey,
    dh(a.keyObject, b.publicKey)!,
    generateKeyPair(),
    tai64n(Date.now()),
    msg,
    0,
  )!;
  // c is not the intended responder: the static key does not decrypt.
  const wrong = readInitiation(WIREGUARD, c, msg, 0, 12, () => null);
  assert.deepEqual(wrong, { ok: false, reason: 'decrypt_failed' });
  const unknown = readInitiation(WIREGUARD, b, msg, 0, 12, () => null);
  assert.deepEqual(unknown, { ok: false, reason: 'unknown_peer' });
  const ok = readInitiation(WIREGUARD, b, msg, 0, 12, (s) => dh(b.keyObject, s));
  assert.ok(ok.ok);
  const resp = new Uint8Array(48);
  writeResponse(
    ok.value,
    new Uint8Array(32).fill(1),
    generateKeyPair(),
    new Uint8Array(0),
    resp,
    0,
  );
  assert.equal(readResponse(st, a, new Uint8Array(32), resp, 0, 0), null);
});

test('TAI64N encoding and 2^24 ns rounding', () => {
  const t = tai64n(1_700_000_000_123.456);
  assert.equal(toHex(t.subarray(0, 8)), (0x400000000000000an + 1_700_000_000n).toString(16));
  const nanos = Buffer.from(t).readUInt32BE(8);
  assert.equal(nanos % 2 ** 24, 0);
  assert.ok(nanos <= 123_456_000 && nanos > 123_456_000 - 2 ** 24);
  assert.ok(compareTai64n(tai64n(2_000), tai64n(1_000)) > 0);
  assert.equal(compareTai64n(tai64n(1_000), tai64n(1_001)), 0); // same 16.8 ms bucket
});

test('keys: base64 and hex round trip, bad keys refused with the field name', () => {
  const k = generatePrivateKey();
  assert.equal(k[0]! & 7, 0);
  assert.equal(k[31]! & 0xc0, 0x40);
  assert.deepEqual(keyFromBase64(keyToBase64(k)), k);
  assert.deepEqual(keyFromHex(Buffer.from(k).toString('hex')), k);
  assert.throws(() => keyFromBase64('abc', 'PrivateKey'), /PrivateKey/);
  assert.throws(() => keyFromBase64(keyToBase64(k).slice(0, 43) + 'B'), {
    code: 'ERR_INVALID_KEY',
  });
  assert.throws(() => keyFromHex('zz'.repeat(32)), { code: 'ERR_INVALID_KEY' });
});

test('node:crypto and noble AEAD backends agree on thousands of random inputs', () => {
  for (let i = 0; i < 3000; i++) {
    const key = randomBytes(32);
    const counter = i < 10 ? 2 ** 53 - 1 - i : Math.floor(Math.random() * 2 ** 40);
    const pt = randomBytes(i % 7 === 0 ? 0 : Math.floor(Math.random() * 1500));
    const ad = i % 3 === 0 ? randomBytes(32) : null;
    const a = new Uint8Array(pt.length + 16);
    const b = new Uint8Array(pt.length + 16);
    nodeAead.seal(key, counter, pt, ad, a, 0);
    nobleAead.seal(key, counter, pt, ad, b, 0);
    assert.deepEqual(a, b);
    const o1 = new Uint8Array(pt.length);
    const o2 = new Uint8Array(pt.length);
    assert.equal(nobleAead.open(key, counter, a, ad, o1, 0), pt.length);
    assert.equal(nodeAead.open(key, counter, b, ad, o2, 0), pt.length);
    assert.deepEqual(o1, new Uint8Array(pt));
    assert.deepEqual(o2, new Uint8Array(pt));
  }
});
