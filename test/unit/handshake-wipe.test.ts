// Every handshake step zeroes its intermediate secrets (chaining keys before the last, the first-
// and second-stage AEAD keys, DH results, tau) on success and on each failure. scratchHook sees
// the buffers just before the wipe: the test recomputes the secrets independently to show they
// are the ones tracked, and checks the same buffers are zero once the step has returned.
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { dh, kdf1, kdf2, kdf3, keyPairOf, type KeyPair } from '../../src/noise/crypto.js';
import {
  WIREGUARD,
  readInitiation,
  readResponse,
  scratchHook,
  writeInitiation,
  writeResponse,
  type InitiatorState,
} from '../../src/noise/handshake.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const pair = (): KeyPair => keyPairOf(new Uint8Array(randomBytes(32)));

/** Runs `step`, returning its result, what the hook saw (copied) and whether all of it is zero. */
function observe<T>(step: () => T): {
  result: T;
  seen: Set<string>;
  count: number;
  zeroed: boolean;
} {
  const live: Uint8Array[] = [];
  const seen = new Set<string>();
  scratchHook.beforeWipe = (bufs) => {
    for (const b of bufs) {
      live.push(b);
      seen.add(hex(b));
    }
  };
  const result = step();
  scratchHook.beforeWipe = null;
  return { result, seen, count: live.length, zeroed: live.every((b) => b.every((x) => x === 0)) };
}

afterEach(() => {
  scratchHook.beforeWipe = null;
});

interface Setup {
  init: KeyPair;
  resp: KeyPair;
  eph: KeyPair;
  ssI: Uint8Array;
  ssR: Uint8Array;
  psk: Uint8Array;
  msg: Uint8Array;
  state: InitiatorState;
}

function initiation(): Setup {
  const init = pair();
  const resp = pair();
  const eph = pair();
  const ssI = dh(init.keyObject, resp.publicKey)!;
  const ssR = dh(resp.keyObject, init.publicKey)!;
  const msg = new Uint8Array(32 + 48 + 12 + 16);
  const state = writeInitiation(
    WIREGUARD,
    init,
    resp.publicKey,
    ssI,
    eph,
    new Uint8Array(12),
    msg,
    0,
  )!;
  return { init, resp, eph, ssI, ssR, psk: new Uint8Array(randomBytes(32)), msg, state };
}

/** The first-stage key and chaining keys of an initiation, computed here from scratch. */
function initiationSecrets(s: Setup) {
  const ck1 = kdf1(WIREGUARD.ck0, s.eph.publicKey);
  const es = dh(s.eph.keyObject, s.resp.publicKey)!;
  const [ck2, k1] = kdf2(ck1, es);
  const [ck3, k2] = kdf2(ck2, s.ssI);
  return { ck1, es, ck2, k1, ck3, k2 };
}

describe('handshake steps wipe their intermediate secrets', () => {
  it('writeInitiation: first-stage key, chaining keys, es; the returned ck is kept', () => {
    const init = pair();
    const resp = pair();
    const eph = pair();
    const ss = dh(init.keyObject, resp.publicKey)!;
    const out = new Uint8Array(108);
    const o = observe(() =>
      writeInitiation(WIREGUARD, init, resp.publicKey, ss, eph, new Uint8Array(12), out, 0),
    );
    const want = initiationSecrets({ init, resp, eph, ssI: ss } as Setup);
    for (const [name, v] of Object.entries({
      ck1: want.ck1,
      es: want.es,
      ck2: want.ck2,
      k1: want.k1,
      k2: want.k2,
    })) {
      assert.ok(o.seen.has(hex(v)), `${name} is wiped`);
    }
    assert.ok(!o.seen.has(hex(want.ck3)), "the returned chaining key is the caller's");
    assert.equal(hex(o.result!.ck), hex(want.ck3));
    assert.equal(o.count, 5);
    assert.ok(o.zeroed);
    assert.ok(
      ss.some((x) => x !== 0),
      "the precomputed static-static DH is the peer's, kept",
    );
  });

  it('readInitiation: success and every failure', () => {
    const s = initiation();
    const want = initiationSecrets(s);
    const read = (msg: Uint8Array, ssFor: (k: Uint8Array) => Uint8Array | null) =>
      observe(() => readInitiation(WIREGUARD, s.resp, msg, 0, 12, ssFor));

    const ok = read(s.msg, () => s.ssR);
    assert.equal(ok.result.ok, true);
    for (const v of [want.ck1, want.es, want.ck2, want.k1, want.k2]) assert.ok(ok.seen.has(hex(v)));
    assert.ok(ok.zeroed);
    assert.equal(ok.count, 5);

    // The static key does not decrypt (tampered): ck1, es, ck2 and k1 are wiped.
    const tampered = Uint8Array.from(s.msg);
    tampered[40]! ^= 1;
    const bad = read(tampered, () => s.ssR);
    assert.deepEqual(bad.result, { ok: false, reason: 'decrypt_failed' });
    for (const v of [want.ck1, want.es, want.ck2, want.k1]) assert.ok(bad.seen.has(hex(v)));
    assert.ok(bad.zeroed);

    // An initiator we do not know.
    const unknown = read(s.msg, () => null);
    assert.deepEqual(unknown.result, { ok: false, reason: 'unknown_peer' });
    assert.ok(unknown.seen.has(hex(want.k1)) && unknown.zeroed);

    // The payload does not decrypt (a wrong static-static DH): k2 and the last ck too.
    const wrongSs = read(s.msg, () => new Uint8Array(32).fill(7));
    assert.deepEqual(wrongSs.result, { ok: false, reason: 'decrypt_failed' });
    const [ck3, k2] = kdf2(want.ck2, new Uint8Array(32).fill(7));
    assert.ok(wrongSs.seen.has(hex(ck3)) && wrongSs.seen.has(hex(k2)));
    assert.equal(wrongSs.count, 6);
    assert.ok(wrongSs.zeroed);

    // A low-order ephemeral: es is refused before any key exists; ck1 is still wiped.
    const lowOrder = Uint8Array.from(s.msg);
    lowOrder.fill(0, 0, 32);
    const low = read(lowOrder, () => s.ssR);
    assert.deepEqual(low.result, { ok: false, reason: 'bad_key' });
    assert.equal(low.count, 1);
    assert.ok(low.zeroed);
  });

  it('writeResponse and readResponse: tau, the payload key and the chaining keys', () => {
    const s = initiation();
    const consumed = readInitiation(WIREGUARD, s.resp, s.msg, 0, 12, () => s.ssR);
    assert.ok(consumed.ok);
    const reph = pair();
    const resp = new Uint8Array(48);
    const w = observe(() => writeResponse(consumed.value, s.psk, reph, new Uint8Array(0), resp, 0));
    assert.ok(w.result);
    // Independently: ck after e, ee, se; then tau and the key from the psk.
    let ck = kdf1(consumed.value.ck, reph.publicKey);
    const ee = dh(reph.keyObject, s.eph.publicKey)!;
    const se = dh(reph.keyObject, s.init.publicKey)!;
    ck = kdf1(kdf1(ck, ee), se);
    const [ckLast, tau, k] = kdf3(ck, s.psk);
    for (const [name, v] of Object.entries({ ee, se, ckLast, tau, k })) {
      assert.ok(w.seen.has(hex(v)), `${name} is wiped`);
    }
    assert.equal(w.count, 8);
    assert.ok(w.zeroed);

    const r = observe(() => readResponse(s.state, s.init, s.psk, resp, 0, 0));
    assert.ok(r.result);
    assert.equal(hex(r.result.keys.sendInitiator), hex(w.result.sendInitiator));
    assert.ok(r.seen.has(hex(tau)) && r.seen.has(hex(k)) && r.seen.has(hex(ckLast)));
    assert.equal(r.count, 8);
    assert.ok(r.zeroed);
    assert.ok(
      r.result.keys.sendInitiator.some((x) => x !== 0),
      'the transport keys are kept',
    );
  });

  it('readResponse failures: a response that does not authenticate, a low-order ephemeral', () => {
    const s = initiation();
    const consumed = readInitiation(WIREGUARD, s.resp, s.msg, 0, 12, () => s.ssR);
    assert.ok(consumed.ok);
    const resp = new Uint8Array(48);
    assert.ok(writeResponse(consumed.value, s.psk, pair(), new Uint8Array(0), resp, 0));

    const wrongPsk = observe(() => readResponse(s.state, s.init, new Uint8Array(32), resp, 0, 0));
    assert.equal(wrongPsk.result, null);
    assert.equal(wrongPsk.count, 8);
    assert.ok(wrongPsk.zeroed);

    const low = Uint8Array.from(resp);
    low.fill(0, 0, 32);
    const lowOrder = observe(() => readResponse(s.state, s.init, s.psk, low, 0, 0));
    assert.equal(lowOrder.result, null);
    assert.equal(lowOrder.count, 1);
    assert.ok(lowOrder.zeroed);

    const w = observe(() =>
      writeResponse(
        { ...consumed.value, remoteEphemeral: new Uint8Array(32) },
        s.psk,
        pair(),
        new Uint8Array(0),
        new Uint8Array(48),
        0,
      ),
    );
    assert.equal(w.result, null);
    assert.ok(w.count >= 1 && w.zeroed);
  });
});
