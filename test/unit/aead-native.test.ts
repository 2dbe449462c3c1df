// The native ChaCha20-Poly1305 backend (src/tun/aead.ts over src/tun/native/aead.c): RFC 8439
// vectors, agreement with the node:crypto and noble backends per packet and per batch, mixed
// keys, tampering, in-place and overlapping buffers, and argument checking.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { nobleAead, nodeAead, type Aead } from '../../src/noise/aead.js';
import {
  nativeAead,
  nativeAeadAvailable,
  nativeAeadEngine,
  nativeAeadUnavailableReason,
} from '../../src/tun/aead.js';

const bytes = (n: number) => new Uint8Array(randomBytes(n));
const TAG = 16;
const MAX_COUNTER = Number.MAX_SAFE_INTEGER; // 2^53 − 1

const available = nativeAeadAvailable();
const skip = available ? false : `native AEAD unavailable: ${nativeAeadUnavailableReason()}`;

// Seeded so a failure reproduces; the data itself comes from randomBytes.
let seed = 0x9e3779b9;
function rand(n: number): number {
  seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
  return seed % n;
}

const SPECIAL_COUNTERS = [
  0,
  1,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 32 + 1,
  2 ** 48 + 12345,
  MAX_COUNTER - 1,
  MAX_COUNTER,
];
function randomCounter(i: number): number {
  if (i < SPECIAL_COUNTERS.length) return SPECIAL_COUNTERS[i]!;
  switch (rand(3)) {
    case 0:
      return rand(1 << 20);
    case 1:
      return 2 ** 32 + rand(1 << 30) * 3;
    default:
      return MAX_COUNTER - rand(1 << 30);
  }
}

function sealWith(aead: Aead, key: Uint8Array, counter: number, plain: Uint8Array): Uint8Array {
  const out = new Uint8Array(plain.length + TAG);
  assert.equal(aead.seal(key, counter, plain, null, out, 0), plain.length + TAG);
  return out;
}

/** A batch laid out in a slab with random gaps, so offsets matter. */
function layout(sizes: readonly number[], shared = false) {
  const offsets = new Int32Array(sizes.length);
  let at = 0;
  sizes.forEach((n, i) => {
    at += rand(40);
    offsets[i] = at;
    at += n + TAG;
  });
  const slab = new Uint8Array(shared ? new SharedArrayBuffer(at + 8) : new ArrayBuffer(at + 8));
  return { slab, offsets, lengths: Int32Array.from(sizes) };
}

test('the native backend is available (the addon is built by npm ci)', () => {
  assert.ok(available, nativeAeadUnavailableReason());
  assert.equal(nativeAead.name, 'native');
});

const forcedEvp = process.env['WG_TS_AEAD_EVP'] === '1';

test('the addon names its engine: primitives unless forced to EVP', { skip }, (t) => {
  const engine = nativeAeadEngine();
  t.diagnostic(`engine ${engine}`);
  if (forcedEvp) assert.equal(engine, 'evp');
  // The node binary these tests run on exports ChaCha20_ctr32 and Poly1305_* (static OpenSSL);
  // a Node on a shared libcrypto would fall back to EVP, and this line would say so.
  else assert.equal(engine, 'primitives');
});

test(
  'the EVP engine passes this file and the RFC 8439 vectors too (WG_TS_AEAD_EVP=1)',
  { skip: skip || (forcedEvp ? 'this is the EVP run' : false) },
  () => {
    const here = fileURLToPath(import.meta.url);
    const vectors = here.replace('aead-native.test.js', 'noise-vectors.test.js');
    // Without NODE_TEST_CONTEXT, or the child would report to a parent runner, not to stdout.
    const { NODE_TEST_CONTEXT: _, ...env } = process.env;
    const r = spawnSync(process.execPath, ['--test', '--test-reporter=tap', here, vectors], {
      env: { ...env, WG_TS_AEAD_EVP: '1' },
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(r.status, 0, `${r.stdout.slice(-3000)}\n${r.stderr.slice(-2000)}`);
    assert.match(r.stdout, /# fail 0/);
    assert.match(r.stdout, /engine evp/);
  },
);

// The RFC 8439 vectors run for every backend, native included, in noise-vectors.test.ts.

test(
  'per packet: agrees with node:crypto and noble on random packets and counters',
  { skip },
  () => {
    const key = bytes(32);
    const sizes = [0, 1, 15, 16, 17, 63, 64, 65, 1420, 1500, 65535, 65535];
    for (let i = 0; i < 1500; i++) sizes.push(rand(1501));
    sizes.forEach((n, i) => {
      const plain = bytes(n);
      const counter = randomCounter(i);
      const want = sealWith(nodeAead, key, counter, plain);
      const got = sealWith(nativeAead, key, counter, plain);
      assert.ok(
        Buffer.from(got).equals(want),
        `seal differs from node at ${n} B, counter ${counter}`,
      );
      if (i % 8 === 0 || n === 65535) {
        const noble = sealWith(nobleAead, key, counter, plain);
        assert.ok(Buffer.from(got).equals(noble), `seal differs from noble at ${n} B`);
      }
      // Open into a buffer at an offset, and check node can open what native sealed.
      const back = new Uint8Array(n + 3);
      assert.equal(nativeAead.open(key, counter, want, null, back, 3), n);
      assert.ok(Buffer.from(back.subarray(3)).equals(plain));
      assert.equal(nodeAead.open(key, counter, got, null, back, 0), n);
      // A neighbouring counter, or the same one under another key, must not verify.
      const wrong = counter === MAX_COUNTER ? counter - 1 : counter + 1;
      assert.equal(nativeAead.open(key, wrong, got, null, back, 0), -1);
    });
  },
);

test('per packet: in place, overlapping buffers and short input', { skip }, () => {
  const key = bytes(32);
  for (const shift of [0, 1, 7, 16, 100, -1, -9, -100]) {
    const plain = bytes(300);
    const want = sealWith(nodeAead, key, 42, plain);
    const buf = new Uint8Array(300 + TAG + 200);
    const src = 100;
    buf.set(plain, src);
    // Seal from buf[100..400) into buf[100+shift..), overlapping unless the shift is large.
    assert.equal(
      nativeAead.seal(key, 42, buf.subarray(src, src + 300), null, buf, src + shift),
      316,
    );
    assert.ok(
      Buffer.from(buf.subarray(src + shift, src + shift + 316)).equals(want),
      `seal ${shift}`,
    );
    // And open it back, shifted again.
    const at = src + shift;
    const sealed = buf.subarray(at, at + 316);
    assert.equal(nativeAead.open(key, 42, sealed, null, buf, at - shift), 300, `open ${shift}`);
    assert.ok(Buffer.from(buf.subarray(at - shift, at - shift + 300)).equals(plain));
  }
  const out = new Uint8Array(16);
  assert.equal(nativeAead.open(key, 1, bytes(15), null, out, 0), -1);
  assert.equal(
    nativeAead.open(key, 1, sealWith(nodeAead, key, 1, new Uint8Array(0)), null, out, 0),
    0,
  );
  assert.throws(() => nativeAead.seal(key, 1, bytes(10), null, new Uint8Array(25), 0), {
    code: 'ERR_OUT_OF_RANGE',
  });
  assert.throws(() => nativeAead.seal(key, 2 ** 53, bytes(10), null, new Uint8Array(26), 0), {
    code: 'ERR_OUT_OF_RANGE',
  });
  assert.throws(() => nativeAead.seal(bytes(31), 1, bytes(10), null, new Uint8Array(26), 0), {
    code: 'ERR_OUT_OF_RANGE',
  });
  assert.throws(
    () => nativeAead.sealWithNonce(key, bytes(8), bytes(10), null, new Uint8Array(26), 0),
    { code: 'ERR_OUT_OF_RANGE' },
  );
});

test('batches: seal equals per-packet node:crypto, open recovers every packet', { skip }, () => {
  const key = bytes(32);
  for (const [count, shared] of [
    [1, false],
    [32, true],
    [128, false],
    [300, true],
  ] as const) {
    const sizes = Array.from({ length: count }, (_, i) => (i === 0 ? 0 : rand(1501)));
    if (count === 32) sizes[5] = 65535;
    const { slab, offsets, lengths } = layout(sizes, shared);
    const counters = Float64Array.from(sizes, () => randomCounter(rand(40)));
    const plains = sizes.map((n) => bytes(n));
    plains.forEach((p, i) => slab.set(p, offsets[i]!));
    const before = new Uint8Array(slab);

    nativeAead.sealBatch(key, slab, offsets, lengths, counters, count);
    for (let i = 0; i < count; i++) {
      const got = slab.subarray(offsets[i]!, offsets[i]! + sizes[i]! + TAG);
      assert.ok(
        Buffer.from(got).equals(sealWith(nodeAead, key, counters[i]!, plains[i]!)),
        `batch ${count}: packet ${i} differs`,
      );
    }
    // Bytes outside the packets and their tags are untouched.
    for (let i = 0, at = 0; i <= count; i++) {
      const end = i < count ? offsets[i]! : slab.length;
      assert.ok(Buffer.from(slab.subarray(at, end)).equals(before.subarray(at, end)), 'gap');
      if (i < count) at = end + sizes[i]! + TAG;
    }

    const sealedLengths = Int32Array.from(sizes, (n) => n + TAG);
    const ok = new Uint8Array(count).fill(7);
    assert.equal(
      nativeAead.openBatch(key, slab, offsets, sealedLengths, counters, count, ok),
      count,
    );
    assert.ok(ok.every((v) => v === 1));
    plains.forEach((p, i) =>
      assert.ok(Buffer.from(slab.subarray(offsets[i]!, offsets[i]! + p.length)).equals(p)),
    );
  }
});

test('batches: mixed keys by keyIdx, opened by per-packet noble', { skip }, () => {
  const keys = bytes(32 * 3);
  const keyOf = (k: number) => keys.subarray(32 * k, 32 * k + 32);
  const count = 64;
  const sizes = Array.from({ length: count }, () => rand(1421));
  const { slab, offsets, lengths } = layout(sizes);
  const counters = Float64Array.from(sizes, (_, i) => randomCounter(i));
  const keyIdx = Int32Array.from(sizes, () => rand(3));
  const plains = sizes.map((n) => bytes(n));
  plains.forEach((p, i) => slab.set(p, offsets[i]!));
  nativeAead.sealBatch(keys, slab, offsets, lengths, counters, count, keyIdx);
  const out = new Uint8Array(1421);
  for (let i = 0; i < count; i++) {
    const sealed = slab.subarray(offsets[i]!, offsets[i]! + sizes[i]! + TAG);
    const k = keyIdx[i]!;
    assert.equal(nobleAead.open(keyOf(k), counters[i]!, sealed, null, out, 0), sizes[i]);
    assert.ok(Buffer.from(out.subarray(0, sizes[i])).equals(plains[i]!));
    assert.equal(nodeAead.open(keyOf((k + 1) % 3), counters[i]!, sealed, null, out, 0), -1);
  }
  // Opening with every packet pointed at key 0 verifies exactly the ones sealed under key 0.
  const ok = new Uint8Array(count);
  const sealedLengths = Int32Array.from(sizes, (n) => n + TAG);
  const zeros = new Int32Array(count);
  const copy = new Uint8Array(slab);
  const n = nativeAead.openBatch(keys, copy, offsets, sealedLengths, counters, count, ok, zeros);
  assert.equal(n, keyIdx.filter((k) => k === 0).length);
  keyIdx.forEach((k, i) => assert.equal(ok[i], k === 0 ? 1 : 0, `packet ${i}`));
  // With the right indices, all verify.
  assert.equal(
    nativeAead.openBatch(keys, slab, offsets, sealedLengths, counters, count, ok, keyIdx),
    count,
  );
});

test('batches: tampered, replayed-counter and short packets fail alone', { skip }, () => {
  const key = bytes(32);
  const count = 40;
  const sizes = Array.from({ length: count }, () => 1 + rand(1420));
  const { slab, offsets, lengths } = layout(sizes);
  const counters = Float64Array.from(sizes, (_, i) => 2 ** 32 - 20 + i);
  const plains = sizes.map((n) => bytes(n));
  plains.forEach((p, i) => slab.set(p, offsets[i]!));
  nativeAead.sealBatch(key, slab, offsets, lengths, counters, count);

  const sealedLengths = Int32Array.from(sizes, (n) => n + TAG);
  const bad = new Set<number>();
  const at = (i: number, k: number) => offsets[i]! + k;
  slab[at(3, sizes[3]!)]! ^= 0x01; // tag, first byte
  bad.add(3);
  slab[at(9, sizes[9]! + 15)]! ^= 0x80; // tag, last byte
  bad.add(9);
  slab[at(14, 0)]! ^= 0x01; // ciphertext, first byte
  bad.add(14);
  slab[at(20, sizes[20]! - 1)]! ^= 0x40; // ciphertext, last byte
  bad.add(20);
  counters[25] = counters[25]! + 1; // wrong nonce
  bad.add(25);
  sealedLengths[30] = 15; // shorter than a tag
  bad.add(30);
  sealedLengths[33] = sizes[33]! + TAG - 1; // truncated
  bad.add(33);

  const ok = new Uint8Array(count);
  const n = nativeAead.openBatch(key, slab, offsets, sealedLengths, counters, count, ok);
  assert.equal(n, count - bad.size);
  for (let i = 0; i < count; i++) {
    if (bad.has(i)) {
      assert.equal(ok[i], 0, `packet ${i} should fail`);
      if (i !== 30) {
        const region = slab.subarray(offsets[i]!, offsets[i]! + sealedLengths[i]! - TAG);
        assert.ok(
          region.every((b) => b === 0),
          `failed packet ${i} is zeroed`,
        );
      }
    } else {
      assert.equal(ok[i], 1, `packet ${i} should verify`);
      const got = slab.subarray(offsets[i]!, offsets[i]! + sizes[i]!);
      assert.ok(Buffer.from(got).equals(plains[i]!), `packet ${i} plaintext`);
    }
  }
});

test('batches: bad arguments throw before any packet is touched', { skip }, () => {
  const key = bytes(32);
  const { slab, offsets, lengths } = layout([100, 100, 100]);
  const counters = Float64Array.of(1, 2, 3);
  const pristine = new Uint8Array(slab);
  const ok = new Uint8Array(3);
  const range = { code: 'ERR_OUT_OF_RANGE', name: 'RangeError' };
  const type = { code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' };
  const seal =
    (
      over: Partial<{
        keys: Uint8Array;
        offsets: Int32Array;
        lengths: Int32Array;
        counters: Float64Array;
        count: number;
        keyIdx: Int32Array;
      }>,
    ) =>
    () =>
      nativeAead.sealBatch(
        over.keys ?? key,
        slab,
        over.offsets ?? offsets,
        over.lengths ?? lengths,
        over.counters ?? counters,
        over.count ?? 3,
        ...(over.keyIdx ? [over.keyIdx] : []),
      );
  // The last packet's tag would run past the slab: nothing may be sealed.
  const last = Int32Array.from(offsets);
  last[2] = slab.length - 100 - TAG + 1;
  assert.throws(seal({ offsets: last }), range);
  assert.throws(seal({ lengths: Int32Array.of(100, -1, 100) }), range);
  assert.throws(seal({ offsets: Int32Array.of(0, -5, 0) }), range);
  assert.throws(seal({ counters: Float64Array.of(1, 2, 2 ** 53) }), range);
  assert.throws(seal({ counters: Float64Array.of(1, -1, 3) }), range);
  assert.throws(seal({ counters: Float64Array.of(1, 2.5, 3) }), range);
  assert.throws(seal({ counters: Float64Array.of(1, NaN, 3) }), range);
  assert.throws(seal({ count: 4 }), range);
  assert.throws(seal({ count: -1 }), range);
  assert.throws(seal({ keys: bytes(31) }), range);
  assert.throws(seal({ keys: bytes(64) }), range); // two keys but no keyIdx
  assert.throws(seal({ keys: bytes(64), keyIdx: Int32Array.of(0, 2, 1) }), range);
  assert.throws(seal({ keyIdx: Int32Array.of(0, 0) }), range); // too short
  assert.deepEqual(slab, pristine);
  assert.throws(
    () =>
      nativeAead.sealBatch(key, slab, offsets, lengths, counters, 3, [
        0, 0, 0,
      ] as unknown as Int32Array),
    type,
  );
  const plainOffsets = Array.from(offsets) as unknown as Int32Array;
  assert.throws(() => nativeAead.sealBatch(key, slab, plainOffsets, lengths, counters, 3), type);
  const f32 = Float32Array.from(counters) as unknown as Float64Array;
  assert.throws(() => nativeAead.sealBatch(key, slab, offsets, lengths, f32, 3), type);
  assert.throws(
    () => nativeAead.openBatch(key, slab, offsets, lengths, counters, 3, new Uint8Array(2)),
    range,
  );
  assert.deepEqual(slab, pristine);
  // count 0 does nothing.
  nativeAead.sealBatch(key, slab, offsets, lengths, counters, 0);
  assert.equal(nativeAead.openBatch(key, slab, offsets, lengths, counters, 0, ok), 0);
  assert.deepEqual(slab, pristine);
});

test(
  'worker threads: each has its own context, and exiting frees it cleanly',
  { skip },
  async () => {
    const { Worker } = await import('node:worker_threads');
    const key = bytes(32);
    const plain = bytes(1000);
    const want = sealWith(nodeAead, key, 2 ** 40, plain);
    const url = new URL('../../src/tun/aead.js', import.meta.url).href;
    const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    import(workerData.url).then(({ nativeAead }) => {
      const out = new Uint8Array(workerData.plain.length + 16);
      for (let i = 0; i < 3; i++) nativeAead.seal(workerData.key, 2 ** 40, workerData.plain, null, out, 0);
      parentPort.postMessage(out);
    });`;
    const results = await Promise.all(
      [0, 1].map(
        () =>
          new Promise<Uint8Array>((resolve, reject) => {
            const w = new Worker(code, { eval: true, workerData: { url, key, plain } });
            let got: Uint8Array | undefined;
            w.on('message', (m: Uint8Array) => (got = m));
            w.on('error', reject);
            w.on('exit', (c) => (c === 0 && got ? resolve(got) : reject(new Error(`exit ${c}`))));
          }),
      ),
    );
    for (const r of results) assert.deepEqual(new Uint8Array(r), want);
    // The main thread's context still works after the workers' were freed.
    assert.deepEqual(sealWith(nativeAead, key, 2 ** 40, plain), want);
  },
);
