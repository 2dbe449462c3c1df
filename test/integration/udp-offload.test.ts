/**
 * UDP GSO (send) and GRO (receive) in UdpBind over real sockets on loopback (root only): a slab of
 * contiguous datagrams arrives intact and in order as separate datagrams with every combination of
 * the WG_TS_UDP_GSO / WG_TS_UDP_GRO switches on IPv4 and IPv6; GSO really coalesces (seen by a
 * raw GRO socket); runs break on gaps, size changes and the segment/byte limits; a kernel refusal
 * (route MTU below the segment size, in a namespace of our own) turns GSO off and resends plainly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { UdpBind } from '../../src/tun/udp.js';
import { native, RAW_ADDR_SIZE } from '../../src/tun/native.js';
import type { Endpoint } from '../../src/tunnel/ip.js';

const skip = process.getuid?.() !== 0 ? 'needs root (UDP offloads, network namespaces)' : false;

type Switch = 'WG_TS_UDP_GSO' | 'WG_TS_UDP_GRO';

/** Runs `fn` with the env switches set (UdpBind reads them at open), then restores them. */
function withEnv<T>(vars: Partial<Record<Switch, string>>, fn: () => T): T {
  const saved = new Map<string, string | undefined>();
  for (const [k, v] of Object.entries(vars)) {
    saved.set(k, process.env[k]);
    process.env[k] = v;
  }
  try {
    return fn();
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

interface Receiver {
  bind: UdpBind;
  port: number;
  got: Uint8Array[];
  sources: Endpoint[];
}

function openReceiver(): Receiver {
  const bind = new UdpBind();
  const r: Receiver = { bind, port: 0, got: [], sources: [] };
  r.port = bind.open(0, (datagrams, sources) => {
    assert.equal(datagrams.length, sources.length);
    for (const d of datagrams) r.got.push(Uint8Array.from(d));
    r.sources.push(...sources);
  });
  return r;
}

async function waitFor(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Datagram i's bytes: its index, then a position-dependent pattern (catches misplaced splits). */
function fill(d: Uint8Array, i: number): void {
  for (let j = 0; j < d.length; j++) d[j] = (i * 7 + j) & 0xff;
  d[0] = i & 0xff;
  d[1] = i >> 8;
}

/** Views of one slab, back to back, with the given sizes (gaps where a size is negative). */
function slabViews(sizes: readonly number[]): Uint8Array[] {
  const total = sizes.reduce((a, s) => a + Math.abs(s), 0);
  const slab = new Uint8Array(total);
  const views: Uint8Array[] = [];
  let off = 0;
  for (const s of sizes) {
    if (s > 0) {
      const v = slab.subarray(off, off + s);
      fill(v, views.length);
      views.push(v);
    }
    off += Math.abs(s);
  }
  return views;
}

function assertSame(got: readonly Uint8Array[], sent: readonly Uint8Array[]): void {
  assert.equal(got.length, sent.length, 'datagram count');
  for (let i = 0; i < sent.length; i++) {
    assert.equal(got[i]!.length, sent[i]!.length, `length of datagram ${i}`);
    assert.ok(Buffer.from(got[i]!).equals(Buffer.from(sent[i]!)), `content of datagram ${i}`);
  }
}

const FAMILIES = [
  { family: 4 as const, address: '127.0.0.1' },
  { family: 6 as const, address: '::1' },
];
const WG_SLAB = [...Array.from({ length: 40 }, () => 1452), 300];

for (const { family, address } of FAMILIES) {
  for (const gso of ['1', '0']) {
    for (const gro of ['1', '0']) {
      test(
        `IPv${family}: 40 x 1452 + 300 in one send, GSO=${gso} GRO=${gro}`,
        { skip },
        async (t) => {
          const env = { WG_TS_UDP_GSO: gso, WG_TS_UDP_GRO: gro };
          const rx = withEnv(env, openReceiver);
          const tx = withEnv(env, openReceiver);
          t.after(() => {
            rx.bind.close();
            tx.bind.close();
          });
          assert.deepEqual(tx.bind.offloads, { gso: gso === '1', gro: gro === '1' });
          const sent = slabViews(WG_SLAB);
          assert.equal(tx.bind.send(sent, { family, address, port: rx.port }), 41);
          await waitFor(() => rx.got.length >= 41, '41 datagrams');
          assertSame(rx.got, sent);
          for (const s of rx.sources) assert.equal(s.port, tx.port);
        },
      );
    }
  }
}

test(
  'GSO sends a run as one coalesced message (seen by a raw UDP_GRO socket)',
  { skip },
  async (t) => {
    const addon = native() as unknown as {
      udpOffload(fd: number, gso: boolean, gro: boolean): number;
      udpRecv(
        fd: number,
        slab: Uint8Array,
        slot: number,
        max: number,
        lengths: Int32Array,
        addrs: Uint8Array,
        offset: number,
        gro: Int32Array,
      ): number;
    };
    const raw = native().udpOpen(4, 0);
    const tx = withEnv({ WG_TS_UDP_GSO: '1' }, openReceiver);
    const plain = withEnv({ WG_TS_UDP_GSO: '0' }, openReceiver);
    t.after(() => {
      native().closeFd(raw.fd);
      tx.bind.close();
      plain.bind.close();
    });
    assert.equal(addon.udpOffload(raw.fd, false, true), 2, 'UDP_GRO enabled on the raw socket');
    const slab = new Uint8Array(8 * 65536);
    const lengths = new Int32Array(8);
    const gro = new Int32Array(8);
    const addrs = new Uint8Array(8 * RAW_ADDR_SIZE);
    const recvAll = async (want: number): Promise<number[][]> => {
      const seen: number[][] = [];
      let bytes = 0;
      const end = Date.now() + 3000;
      while (bytes < want && Date.now() < end) {
        const n = addon.udpRecv(raw.fd, slab, 65536, 8, lengths, addrs, 0, gro);
        assert.ok(n >= 0, `udpRecv ${n}`);
        for (let i = 0; i < n; i++) {
          seen.push([lengths[i]!, gro[i]!]);
          bytes += lengths[i]!;
        }
        if (n === 0) await new Promise((r) => setTimeout(r, 5));
      }
      return seen;
    };
    const to = { family: 4 as const, address: '127.0.0.1', port: raw.port };
    assert.equal(tx.bind.send(slabViews(WG_SLAB), to), 41);
    // Loopback keeps the GSO packet whole up to the GRO socket: one buffer, segment size 1452.
    assert.deepEqual(await recvAll(40 * 1452 + 300), [[40 * 1452 + 300, 1452]]);
    assert.equal(plain.bind.send(slabViews(WG_SLAB), to), 41);
    const each = await recvAll(40 * 1452 + 300);
    assert.equal(each.length, 41, 'without GSO every datagram is its own message');
    assert.ok(each.every(([, size]) => size === 0));
  },
);

test(
  'runs break on gaps, size changes and the 64-segment / 65507-byte limits',
  { skip },
  async (t) => {
    const rx = withEnv({ WG_TS_UDP_GRO: '1' }, openReceiver);
    const tx = withEnv({ WG_TS_UDP_GSO: '1' }, openReceiver);
    t.after(() => {
      rx.bind.close();
      tx.bind.close();
    });
    const sizes = [
      ...Array.from({ length: 100 }, () => 600), // 64 + 36 segments
      ...Array.from({ length: 50 }, () => 1452), // 45 fit in 65507 bytes, then 5
      -16, // a gap: not contiguous
      1452,
      1452,
      200, // shorter: ends the run
      1452, // larger after a shorter one: a new run
      -1,
      1,
      1,
      1,
      64000, // alone
      5000,
      5000,
      4999,
      5000,
    ];
    const sent = slabViews(sizes);
    const to = { family: 4 as const, address: '127.0.0.1', port: rx.port };
    assert.equal(tx.bind.send(sent, to), sent.length);
    await waitFor(() => rx.got.length >= sent.length, `${sent.length} datagrams`);
    assertSame(rx.got, sent);

    // Views of separate buffers (copied into the bind's slab), and a single datagram.
    rx.got.length = 0;
    const separate = Array.from({ length: 30 }, (_, i) => {
      const d = new Uint8Array(i < 29 ? 1200 : 77);
      fill(d, i);
      return d;
    });
    assert.equal(tx.bind.send(separate, to), 30);
    const one = slabViews([999]);
    assert.equal(tx.bind.send(one, to), 1);
    await waitFor(() => rx.got.length >= 31, '31 datagrams');
    assertSame(rx.got, [...separate, ...one]);
  },
);

const NETNS = `wgts-h9-${process.pid}`;
const UDP_JS = fileURLToPath(new URL('../../src/tun/udp.js', import.meta.url));

// Runs in a child inside the test's namespace (Node cannot move its own thread to a netns): lo has
// MTU 1280, below a 1452-byte segment, so the kernel answers EMSGSIZE to the GSO run. (The EIO
// that turns GSO off cannot be provoked here: since Linux 6.11 only an IPsec route gives it, and
// this kernel has no ESP.)
const CHILD = `
  import { UdpBind } from ${JSON.stringify(UDP_JS)};
  const got = [];
  const errors = [];
  const rx = new UdpBind();
  const port = rx.open(0, (ds) => { for (const d of ds) got.push(Array.from(d)); });
  const tx = new UdpBind();
  tx.onOffloadError = (m) => errors.push(m);
  tx.open(0, () => {});
  const slab = new Uint8Array(5 * 1452);
  for (let i = 0; i < slab.length; i++) slab[i] = (i * 13) & 0xff;
  const views = [0, 1, 2, 3, 4].map((i) => slab.subarray(i * 1452, (i + 1) * 1452));
  const local = tx.send(views, { family: 4, address: '127.0.0.1', port });
  const gsoAfterLocal = tx.offloads.gso;
  const end = Date.now() + 3000;
  const wait = () => {
    if (got.length < 5 && Date.now() < end) return setTimeout(wait, 5);
    const intact = got.length === 5 && got.every((d, i) =>
      d.length === 1452 && d.every((b, j) => b === slab[i * 1452 + j]));
    console.log(JSON.stringify({ local, gsoAfterLocal, received: got.length, intact, errors }));
    rx.close();
    tx.close();
  };
  wait();
`;

test(
  'a GSO run refused with EMSGSIZE (route MTU) is resent datagram by datagram',
  { skip },
  (t) => {
    const ip = (...args: string[]): void => {
      const r = spawnSync('ip', args, { encoding: 'utf8' });
      assert.equal(r.status, 0, `ip ${args.join(' ')}: ${r.stderr}`);
    };
    ip('netns', 'add', NETNS);
    t.after(() => spawnSync('ip', ['netns', 'del', NETNS]));
    ip('-n', NETNS, 'link', 'set', 'lo', 'up');
    ip('-n', NETNS, 'link', 'set', 'lo', 'mtu', '1280');
    const r = spawnSync(
      'ip',
      ['netns', 'exec', NETNS, process.execPath, '--input-type=module', '-e', CHILD],
      { encoding: 'utf8', timeout: 15_000, env: { ...process.env, WG_TS_UDP_GSO: '1' } },
    );
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
      local: number;
      gsoAfterLocal: boolean;
      received: number;
      intact: boolean;
      errors: string[];
    };
    assert.equal(out.local, 5, 'the run refused with EMSGSIZE was sent datagram by datagram');
    assert.equal(out.gsoAfterLocal, true, 'EMSGSIZE is about the route: GSO stays on');
    assert.equal(out.received, 5);
    assert.ok(out.intact, 'fragmented datagrams arrive intact');
    assert.deepEqual(out.errors, [], 'nothing to report');
  },
);
