// The addon under hostile arguments and what its per-thread state keeps: JavaScript-owned state
// it must bound (tunReadVnet's Int32Array), keys of the wrong size, externals that are not poll
// handles, batch arrays another thread rewrites mid-call, and key or plaintext bytes left in the
// thread's EVP and MAC contexts or the coalescing buffer after a call (docs/security.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { blake2s } from '@noble/hashes/blake2.js';
import { nobleAead } from '../../src/noise/aead.js';
import { native, type NativeAddon } from '../../src/tun/native.js';

let addon: NativeAddon | undefined;
let skip: string | false = false;
try {
  addon = native();
} catch (err) {
  skip = `native addon unavailable: ${(err as Error).message}`;
}
const a = (): NativeAddon => addon!;
const bytes = (n: number) => new Uint8Array(randomBytes(n));
const NATIVE_JS = fileURLToPath(new URL('../../src/tun/native.js', import.meta.url));

/** Runs an ES module snippet in a child node (its own addon state), returning its stdout. */
function child(
  code: string,
  env: Record<string, string> = {},
): { status: number | null; out: string } {
  const { NODE_TEST_CONTEXT: _, ...base } = process.env;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
    env: { ...base, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

// --- tunReadVnet's state -------------------------------------------------------------------

const SLOT = 2048;
const RV_STATE_SIZE = 8;

/** A non-blocking fd with nothing to read (an unbound-to-anyone UDP socket): reads say EAGAIN. */
function quietFd(): number {
  return a().udpOpen(4, 0).fd;
}

function readVnet(state: Int32Array, scratchLen = 10 + SLOT): number {
  const fd = quietFd();
  try {
    return a().tunReadVnet(
      fd,
      new Uint8Array(SLOT * 4),
      SLOT,
      4,
      new Int32Array(4),
      new Uint8Array(scratchLen),
      state,
    );
  } finally {
    a().closeFd(fd);
  }
}

test(
  'tunReadVnet refuses a pending length beyond scratch and a negative next segment',
  { skip },
  () => {
    const state = (pending: number, next: number) => {
      const s = new Int32Array(RV_STATE_SIZE);
      s[0] = 10;
      s[1] = pending;
      s[2] = next;
      return s;
    };
    // Scratch holds 10 + 2048 bytes: 2048 of packet is the most a parked frame can be.
    assert.equal(readVnet(state(SLOT, 0)), 0); // fits (the garbage does not parse: dropped)
    assert.throws(() => readVnet(state(SLOT + 1, 0)), {
      name: 'RangeError',
      message: /pending length or next segment/,
    });
    assert.throws(() => readVnet(state(0x7fffffff, 0)), RangeError);
    assert.throws(() => readVnet(state(-5, 0)), RangeError);
    assert.throws(() => readVnet(state(100, -1)), RangeError);
    assert.throws(() => readVnet(state(100, -0x80000000)), RangeError);
  },
);

test(
  'a parked super-packet resumed from a negative segment is refused, not split',
  { skip },
  () => {
    // A real TCPv4 super-packet parked in scratch (3 segments of 500), state saying "next: -3".
    const pkt = tcp4(1000, 2500, 0x10);
    const scratch = new Uint8Array(10 + SLOT);
    const dv = new DataView(scratch.buffer);
    scratch[0] = 1; // NEEDS_CSUM
    scratch[1] = 1; // GSO_TCPV4
    dv.setUint16(2, 40, true);
    dv.setUint16(4, 500, true);
    dv.setUint16(6, 20, true);
    dv.setUint16(8, 16, true);
    scratch.set(pkt, 10);
    const fd = quietFd();
    try {
      const st = new Int32Array(RV_STATE_SIZE);
      st[0] = 10;
      st[1] = pkt.length;
      st[2] = -3;
      const lengths = new Int32Array(4);
      const slab = new Uint8Array(SLOT * 4);
      assert.throws(() => a().tunReadVnet(fd, slab, SLOT, 4, lengths, scratch, st), RangeError);
      st[2] = 1; // a real index resumes: segments 1 and 2
      assert.equal(a().tunReadVnet(fd, slab, SLOT, 4, lengths, scratch, st), 2);
      assert.deepEqual([...lengths.subarray(0, 2)], [540, 540]);
      assert.equal(st[1], 0, 'the parked frame is done');
    } finally {
      a().closeFd(fd);
    }
  },
);

// --- AEAD arguments ----------------------------------------------------------------------------

interface AeadAddon {
  aeadSeal(k: Uint8Array, n: number, ad: null, p: Uint8Array, d: Uint8Array, o: number): number;
  aeadOpen(k: Uint8Array, n: number, ad: null, s: Uint8Array, d: Uint8Array, o: number): number;
  aeadSealBatch(...args: unknown[]): void;
}
const aead = () => a() as unknown as AeadAddon;

test('aeadSeal and aeadOpen take keys of exactly 32 bytes', { skip }, () => {
  const msg = bytes(50);
  const dst = new Uint8Array(100);
  for (const len of [0, 16, 31, 33, 64]) {
    assert.throws(() => aead().aeadSeal(bytes(len), 0, null, msg, dst, 0), {
      name: 'RangeError',
      message: 'key must be 32 bytes',
    });
    assert.throws(() => aead().aeadOpen(bytes(len), 0, null, dst, dst, 0), RangeError);
  }
  // A 64-byte buffer whose first 32 bytes are the key used to seal as that key: no longer.
  const key = bytes(32);
  assert.equal(aead().aeadSeal(key, 7, null, msg, dst, 0), 66);
  const long = new Uint8Array(64);
  long.set(key);
  assert.throws(() => aead().aeadOpen(long, 7, null, dst.subarray(0, 66), new Uint8Array(50), 0));
});

test(
  'a batch uses the offsets it checked, whatever another thread writes meanwhile',
  { skip },
  () => {
    // A worker flips offsets[i] between 0 and far outside the slab while this thread seals batches
    // over the same SharedArrayBuffer. Each batch checks, then seals: reading the array again after
    // the check (as the addon once did) writes at the flipped offset and crashes the process.
    const code = `
    import { Worker } from 'node:worker_threads';
    import { native } from ${JSON.stringify(NATIVE_JS)};
    const a = native();
    const N = 128;
    const sab = new SharedArrayBuffer(N * 4);
    const offsets = new Int32Array(sab);
    const w = new Worker(\`
      const { workerData } = require('node:worker_threads');
      const o = new Int32Array(workerData);
      for (;;) for (let i = 0; i < o.length; i++) o[i] = o[i] === 0 ? 0x40000000 : 0;
    \`, { eval: true, workerData: sab, execArgv: [] });
    await new Promise((r) => setTimeout(r, 50));
    const slab = new Uint8Array(64 + 16);
    const lengths = new Int32Array(N).fill(64);
    const counters = new Float64Array(N);
    const keys = new Uint8Array(32).fill(1);
    let ok = 0, refused = 0;
    const end = Date.now() + 1500;
    while (Date.now() < end) {
      try { a.aeadSealBatch(keys, slab, offsets, lengths, counters, N); ok++; } catch { refused++; }
    }
    await w.terminate();
    console.log(JSON.stringify({ ok, refused }));
  `;
    const r = child(code, { WG_TS_AEAD_EVP: '0' });
    assert.equal(r.status, 0, `the child crashed or failed:\n${r.out.slice(-2000)}`);
    const { ok, refused } = JSON.parse(r.out.trim().split('\n').pop()!) as Record<string, number>;
    assert.ok(ok + refused > 0);
  },
);

// --- poll handles ------------------------------------------------------------------------------

test('pollStop refuses an external that pollStart did not make', { skip }, () => {
  const foreign = a().foreignExternal() as Parameters<NativeAddon['pollStop']>[0];
  assert.throws(() => a().pollStop(foreign), {
    name: 'TypeError',
    message: /expected a poll handle/,
  });
  assert.throws(() => a().pollStop({} as Parameters<NativeAddon['pollStop']>[0]), TypeError);
  // A real handle still stops, twice.
  const fd = quietFd();
  try {
    const h = a().pollStart(fd, () => {});
    a().pollStop(h);
    a().pollStop(h);
  } finally {
    a().closeFd(fd);
  }
});

// --- secrets left in per-thread state --------------------------------------------------------

test('the MAC context keeps no key after blake2sMac', { skip }, () => {
  const zeroKeyed = blake2s(new Uint8Array(0), { key: new Uint8Array(32), dkLen: 32 });
  for (const keyLen of [32, 16, 1]) {
    const key = bytes(keyLen);
    const out = new Uint8Array(16);
    a().blake2sMac(key, bytes(100), out);
    const probe = a().macKeyProbe();
    assert.ok(probe, 'the context exists after a call');
    const secretKeyed = blake2s(new Uint8Array(0), { key, dkLen: 32 });
    assert.notDeepEqual(new Uint8Array(probe), secretKeyed, 'the key is not left in the context');
    assert.deepEqual(new Uint8Array(probe), zeroKeyed);
  }
});

test(
  'the EVP context keeps no session key after seals and opens (WG_TS_AEAD_EVP=1)',
  { skip },
  () => {
    // The EVP engine is chosen once per process: a child with it forced.
    const code = `
    import { native } from ${JSON.stringify(NATIVE_JS)};
    const a = native();
    const hex = (u) => u ? Buffer.from(u).toString('hex') : null;
    const out = { engine: a.aeadEngine(), probes: [] };
    const key = new Uint8Array(32).fill(0x5a);
    const msg = new Uint8Array(200).fill(7);
    const dst = new Uint8Array(300);
    a.aeadSeal(key, 1, null, msg, dst, 0);
    out.probes.push(hex(a.aeadKeyProbe()));
    a.aeadOpen(key, 1, null, dst.subarray(0, 216), new Uint8Array(200), 0);
    out.probes.push(hex(a.aeadKeyProbe()));
    const slab = new Uint8Array(2 * 100);
    a.aeadSealBatch(key, slab, Int32Array.of(0, 100), Int32Array.of(60, 60), Float64Array.of(1, 2), 2);
    out.probes.push(hex(a.aeadKeyProbe()));
    a.aeadOpenBatch(key, slab, Int32Array.of(0, 100), Int32Array.of(76, 76), Float64Array.of(1, 2), 2, new Uint8Array(2));
    out.probes.push(hex(a.aeadKeyProbe()));
    console.log(JSON.stringify(out));
  `;
    const r = child(code, { WG_TS_AEAD_EVP: '1' });
    assert.equal(r.status, 0, r.out.slice(-2000));
    const res = JSON.parse(r.out.trim().split('\n').pop()!) as { engine: string; probes: string[] };
    assert.equal(res.engine, 'evp');
    const tagUnder = (key: Uint8Array) => {
      const d = new Uint8Array(16);
      nobleAead.seal(key, 0, new Uint8Array(0), new Uint8Array(0), d, 0);
      return Buffer.from(d).toString('hex');
    };
    const zero = tagUnder(new Uint8Array(32));
    const secret = tagUnder(new Uint8Array(32).fill(0x5a));
    assert.equal(res.probes.length, 4);
    for (const p of res.probes) {
      assert.notEqual(p, secret, 'the session key is still in the context');
      assert.equal(p, zero);
    }
  },
);

/** An IPv4 TCP packet with payload bytes [from, to) of a stream, checksum valid. */
function tcp4(seq: number, end: number, flags: number): Uint8Array {
  const payload = end - seq;
  const p = new Uint8Array(40 + payload);
  const dv = new DataView(p.buffer);
  p[0] = 0x45;
  dv.setUint16(2, p.length);
  p[6] = 0x40;
  p[8] = 64;
  p[9] = 6;
  p.set([10, 0, 0, 1, 10, 0, 0, 2], 12);
  dv.setUint16(10, ~fold(sum(p, 0, 20)) & 0xffff);
  dv.setUint16(20, 40000);
  dv.setUint16(22, 5201);
  dv.setUint32(24, seq);
  dv.setUint32(28, 1);
  p[32] = 5 << 4;
  p[33] = flags;
  dv.setUint16(34, 512);
  for (let i = 40; i < p.length; i++) p[i] = (seq + i) & 0xff || 1;
  const pseudo = sum(p, 12, 20) + 6 + (p.length - 20);
  dv.setUint16(36, ~fold(sum(p, 20, p.length, pseudo)) & 0xffff);
  return p;
}
function sum(p: Uint8Array, from: number, to: number, acc = 0): number {
  for (let i = from; i < to; i += 2) acc += (p[i]! << 8) | (i + 1 < to ? p[i + 1]! : 0);
  return acc;
}
function fold(acc: number): number {
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 0x10000);
  return acc;
}

test('tunWrite leaves no merged plaintext in the coalescing buffer', { skip }, () => {
  const pkts = [tcp4(1000, 2000, 0x10), tcp4(2000, 3000, 0x10), tcp4(3000, 3500, 0x18)];
  const slab = new Uint8Array(3 * SLOT);
  const offsets = new Int32Array(3);
  const lengths = new Int32Array(3);
  pkts.forEach((p, i) => {
    slab.set(p, i * SLOT);
    offsets[i] = i * SLOT;
    lengths[i] = p.length;
  });
  // Any fd takes the write: the merge happens before it (and /dev/null accepts everything).
  const fd = openSync('/dev/null', 'w');
  try {
    assert.equal(a().tunWrite(fd, slab, offsets, lengths, 3, 10, 1), 3);
  } finally {
    closeSync(fd);
  }
  assert.equal(a().coalesceProbe(), 0);
});
