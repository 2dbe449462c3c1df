/**
 * The hostile sender for live hardening tests, run as its own process inside a namespace:
 *
 * - `fuzz`: random datagrams, truncated / bit-flipped / retyped copies of real messages of all
 *   four types, and exact replays of recorded traffic (a relay `record` file), at a set rate.
 * - `flood`: handshake initiations with a valid mac1 for the responder's public key (random
 *   ephemeral, static and timestamp, so any DH work is wasted) from many source addresses as
 *   fast as the sender can go, counting the cookie replies that come back.
 * - `spoof`: the same initiations written as raw IPv4/IPv6 + UDP packets into a TUN device of
 *   the sender's namespace, each from a new source (10.128.0.0/9 addresses and
 *   2001:db8:1000::/36 /64s, alternating), so one process floods from millions of sources; the
 *   namespace forwards them to the target (see test/integration/hardening-flood-sources).
 *   mac2 all zero, or random (each then costs the responder a mac2 check and a cookie reply).
 *
 *   const b = await runBlaster(lab, ns, { mode: 'flood', target: '192.168.241.2:51821',
 *     responderPublicKey, sources: ['192.168.241.100', ...], durationMs: 3000 });
 *   b.sent; b.cookies;
 *
 * As a program: node blaster.js '<json BlasterOptions>' prints one JSON BlasterResult line.
 */
import { readFileSync } from 'node:fs';
import { createSocket, type Socket } from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { mac } from '../noise/crypto.js';
import { mac1Key } from '../noise/cookie.js';
import { parseAddress, parseEndpoint } from '../tunnel/ip.js';
import type { Lab, Netns } from './lab.js';
import { seededRandom } from './relay.js';

export interface FuzzBlast {
  readonly mode: 'fuzz';
  readonly target: string;
  readonly count: number;
  /** Datagrams per second (0 = as fast as possible). */
  readonly rate: number;
  /** A relay record file (`f|r <hex>` lines): the real messages to mutate and replay. */
  readonly corpus?: string;
  readonly seed?: number;
  /** Only exact replays of the forward (`f`) records, in recorded order, cycling. */
  readonly replayOnly?: boolean;
}

export interface FloodBlast {
  readonly mode: 'flood';
  readonly target: string;
  /** Base64 public key of the responder (mac1 is keyed with it). */
  readonly responderPublicKey: string;
  /** Local addresses to send from (each gets its own socket). */
  readonly sources: readonly string[];
  readonly durationMs: number;
  /** Initiations per second (0 or absent = as fast as possible). */
  readonly rate?: number;
  /** mac2 all zero (default), or random (a mac2 check for the responder, never valid). */
  readonly mac2?: 'zero' | 'random';
  readonly seed?: number;
}

export interface SpoofBlast {
  readonly mode: 'spoof';
  /** A TUN device (IFF_TUN, no packet info) in the sender's namespace, routed to the target. */
  readonly tun: string;
  /** The responder, `ip:port`, for the IPv4 and the IPv6 half of the flood. */
  readonly target4: string;
  readonly target6: string;
  readonly responderPublicKey: string;
  readonly durationMs: number;
  readonly mac2: 'zero' | 'random';
  /** Packets per second (0 or absent = as fast as possible). */
  readonly rate?: number;
  readonly seed?: number;
}

export type BlasterOptions = FuzzBlast | FloodBlast | SpoofBlast;

export interface BlasterResult {
  readonly sent: number;
  readonly seconds: number;
  /** Sent per category: random, mutated, replayed (fuzz); initiation (flood). */
  readonly kinds: Record<string, number>;
  /** Cookie replies received (flood); datagrams received of any kind (fuzz). */
  readonly cookies: number;
  readonly received: number;
}

const MAX_INFLIGHT = 2048;

class Sender {
  inflight = 0;
  private waiters: (() => void)[] = [];
  constructor(
    private readonly port: number,
    private readonly address: string,
  ) {}
  async send(sock: Socket, d: Uint8Array): Promise<void> {
    while (this.inflight >= MAX_INFLIGHT) await new Promise<void>((r) => this.waiters.push(r));
    this.inflight++;
    sock.send(d, this.port, this.address, () => {
      this.inflight--;
      this.waiters.shift()?.();
    });
  }
  async drain(): Promise<void> {
    while (this.inflight > 0) await new Promise<void>((r) => this.waiters.push(r));
  }
}

function mutateRandom(base: Uint8Array, rnd: () => number): Uint8Array {
  const out = Uint8Array.from(base);
  const pick = rnd();
  if (pick < 0.4) {
    const flips = 1 + Math.floor(rnd() * 4);
    for (let i = 0; i < flips; i++) {
      const bit = Math.floor(rnd() * out.length * 8);
      out[bit >> 3] = out[bit >> 3]! ^ (1 << (bit & 7));
    }
    return out;
  }
  if (pick < 0.7) return out.slice(0, Math.floor(rnd() * out.length));
  out[0] = 1 + Math.floor(rnd() * 4); // another type with this body
  return out;
}

function randomBytes(n: number, rnd: () => number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rnd() * 256);
  return b;
}

async function fuzz(o: FuzzBlast): Promise<BlasterResult> {
  const rnd = seededRandom(o.seed ?? 1);
  const target = parseEndpoint(o.target);
  const lines = o.corpus ? readFileSync(o.corpus, 'utf8').split('\n').filter(Boolean) : [];
  const hex = (l: string) => new Uint8Array(Buffer.from(l.slice(2), 'hex'));
  const corpus = lines.map(hex);
  const forward = lines.filter((l) => l.startsWith('f ')).map(hex);
  // Every one of the four types, real ones when recorded, synthetic shapes otherwise.
  const shapes = [148, 92, 64, 32].map((n, i) => {
    const d = randomBytes(n, rnd);
    d.set([i + 1, 0, 0, 0]);
    return d;
  });
  const bases = [...corpus, ...shapes];
  const sock = createSocket(target.family === 6 ? 'udp6' : 'udp4');
  let received = 0;
  sock.on('message', () => received++);
  await new Promise<void>((r) => sock.bind(0, r));
  const sender = new Sender(target.port, target.address);
  const kinds: Record<string, number> = { random: 0, mutated: 0, replayed: 0 };
  const t0 = Date.now();
  for (let i = 0; i < o.count; i++) {
    const r = rnd();
    let d: Uint8Array;
    if (o.replayOnly) {
      d = forward[i % forward.length]!;
      kinds['replayed']!++;
    } else if (r < 0.25 || bases.length === 0) {
      d = randomBytes(Math.floor(rnd() * 200), rnd);
      kinds['random']!++;
    } else if (r < 0.75 || corpus.length === 0) {
      d = mutateRandom(bases[Math.floor(rnd() * bases.length)]!, rnd);
      kinds['mutated']!++;
    } else {
      d = corpus[Math.floor(rnd() * corpus.length)]!;
      kinds['replayed']!++;
    }
    await sender.send(sock, d);
    if (o.rate > 0 && i % 64 === 63) {
      const due = t0 + ((i + 1) / o.rate) * 1000;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((res) => setTimeout(res, wait));
    }
  }
  await sender.drain();
  const seconds = (Date.now() - t0) / 1000;
  await new Promise((res) => setTimeout(res, 200));
  sock.close();
  return { sent: o.count, seconds, kinds, cookies: 0, received };
}

async function flood(o: FloodBlast): Promise<BlasterResult> {
  const rnd = seededRandom(o.seed ?? 1);
  const target = parseEndpoint(o.target);
  const pool = initiations(o.responderPublicKey, rnd, 4096);
  if (o.mac2 === 'random') for (const m of pool) m.set(randomBytes(16, rnd), 132);
  let cookies = 0;
  let received = 0;
  const socks: Socket[] = [];
  for (const src of o.sources) {
    const s = createSocket(target.family === 6 ? 'udp6' : 'udp4');
    s.on('message', (m) => {
      received++;
      if (m.length === 64 && m[0] === 3) cookies++;
    });
    await new Promise<void>((r) => s.bind(0, src, r));
    socks.push(s);
  }
  const sender = new Sender(target.port, target.address);
  const t0 = Date.now();
  let sent = 0;
  while (Date.now() - t0 < o.durationMs) {
    for (let i = 0; i < 256; i++) {
      await sender.send(socks[sent % socks.length]!, pool[sent % pool.length]!);
      sent++;
    }
    const wait = o.rate ? t0 + (sent / o.rate) * 1000 - Date.now() : 0;
    await new Promise((r) => (wait > 0 ? setTimeout(r, wait) : setImmediate(r)));
  }
  await sender.drain();
  const seconds = (Date.now() - t0) / 1000;
  await new Promise((res) => setTimeout(res, 300));
  for (const s of socks) s.close();
  return { sent, seconds, kinds: { initiation: sent }, cookies, received };
}

/** Valid-mac1 initiations (random bodies) for `publicKey`, mac2 zero. */
function initiations(publicKey: string, rnd: () => number, n: number): Uint8Array[] {
  const key = mac1Key(new Uint8Array(Buffer.from(publicKey, 'base64')));
  const pool: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const m = randomBytes(148, rnd);
    m.set([1, 0, 0, 0]);
    m.set(mac(key, m.subarray(0, 116)), 116);
    m.fill(0, 132);
    pool.push(m);
  }
  return pool;
}

/** Sums 16-bit big-endian words of p[from, to) into acc (unfolded). */
function sum16(p: Uint8Array, from: number, to: number, acc: number): number {
  for (let i = from; i < to; i += 2) acc += (p[i]! << 8) | (i + 1 < to ? p[i + 1]! : 0);
  return acc;
}
function fold(acc: number): number {
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 0x10000);
  return acc;
}

/**
 * Writes, at `at`, an IPv4 or IPv6 + UDP packet carrying `msg` from source number `k` (IPv4:
 * 10.128.0.0/9; IPv6: the /64 2001:db8:1XXX:XXXX::/64) to the target. Returns its length.
 */
function spoofed(
  out: Uint8Array,
  at: number,
  v6: boolean,
  k: number,
  dst: Uint8Array,
  port: number,
  msg: Uint8Array,
): number {
  const ipLen = v6 ? 40 : 20;
  const len = ipLen + 8 + msg.length;
  const p = out.subarray(at, at + len);
  p.fill(0, 0, ipLen + 8);
  if (v6) {
    p[0] = 0x60;
    p[4] = (len - 40) >> 8;
    p[5] = (len - 40) & 0xff;
    p[6] = 17;
    p[7] = 64;
    p.set([0x20, 0x01, 0x0d, 0xb8, 0x10 | ((k >>> 24) & 0x0f), (k >>> 16) & 0xff], 8);
    p[14] = (k >>> 8) & 0xff;
    p[15] = k & 0xff;
    p[23] = 1;
    p.set(dst, 24);
  } else {
    p[0] = 0x45;
    p[2] = len >> 8;
    p[3] = len & 0xff;
    p[6] = 0x40;
    p[8] = 64;
    p[9] = 17;
    p.set([10, 128 | ((k >>> 16) & 0x7f), (k >>> 8) & 0xff, k & 0xff], 12);
    p.set(dst, 16);
    const c = ~fold(sum16(p, 0, 20, 0)) & 0xffff;
    p[10] = c >> 8;
    p[11] = c & 0xff;
  }
  const u = ipLen;
  const sport = 1024 + (k % 60000);
  p[u] = sport >> 8;
  p[u + 1] = sport & 0xff;
  p[u + 2] = port >> 8;
  p[u + 3] = port & 0xff;
  p[u + 4] = (8 + msg.length) >> 8;
  p[u + 5] = (8 + msg.length) & 0xff;
  p.set(msg, u + 8);
  if (v6) {
    // UDP over IPv6 needs its checksum (IPv4 may leave it 0).
    let acc = sum16(p, 8, 40, 0) + 17 + 8 + msg.length;
    acc = sum16(p, u, len, acc);
    const c = ~fold(acc) & 0xffff || 0xffff;
    p[u + 6] = c >> 8;
    p[u + 7] = c & 0xff;
  }
  return len;
}

async function spoof(o: SpoofBlast): Promise<BlasterResult> {
  // The addon is loaded only in this mode (the lab's other modes need no build).
  const { native } = await import('../tun/native.js');
  const addon = native();
  const rnd = seededRandom(o.seed ?? 1);
  const pool = initiations(o.responderPublicKey, rnd, 1024);
  const target = (text: string) => {
    const e = parseEndpoint(text);
    return { bytes: parseAddress(e.address)!, port: e.port };
  };
  const t4 = target(o.target4);
  const t6 = target(o.target6);
  const { fd } = addon.tunOpen(o.tun);
  const BATCH = 128;
  const SLOT = 256;
  const slab = new Uint8Array(BATCH * SLOT);
  const offsets = new Int32Array(BATCH);
  const lengths = new Int32Array(BATCH);
  const rslab = new Uint8Array(64 * 2048);
  const rlengths = new Int32Array(64);
  for (let i = 0; i < BATCH; i++) offsets[i] = i * SLOT;
  const kinds: Record<string, number> = { v4: 0, v6: 0 };
  let sent = 0;
  let cookies = 0;
  let received = 0;
  let k = 0;
  const t0 = Date.now();
  while (Date.now() - t0 < o.durationMs) {
    for (let i = 0; i < BATCH; i++, k++) {
      const msg = pool[k % pool.length]!;
      if (o.mac2 === 'random') {
        // A different mac2 every packet (mac1 covers bytes 0..115 only).
        for (let j = 132; j < 148; j++) msg[j] = (rnd() * 256) | 0;
      }
      const v6 = (k & 1) === 1;
      const t = v6 ? t6 : t4;
      lengths[i] = spoofed(slab, offsets[i]!, v6, k >>> 1, t.bytes, t.port, msg);
    }
    const n = addon.tunWrite(fd, slab, offsets, lengths, BATCH);
    for (let i = 0; i < n; i++) kinds[(offsets[i]! / SLOT) % 2 === 1 ? 'v6' : 'v4']!++;
    sent += n;
    // Replies come back through the TUN device (the namespace routes the spoofed ranges to it).
    const r = addon.tunRead(fd, rslab, 2048, 64, rlengths);
    for (let i = 0; i < r; i++) {
      received++;
      const ip = rslab[i * 2048]! >> 4 === 6 ? 40 : 20;
      if (rlengths[i] === ip + 8 + 64 && rslab[i * 2048 + ip + 8] === 3) cookies++;
    }
    const wait = o.rate ? t0 + (sent / o.rate) * 1000 - Date.now() : 0;
    if (wait > 0) await new Promise((res) => setTimeout(res, wait));
    else if (n < BATCH) await new Promise((res) => setImmediate(res)); // the device queue is full
  }
  const seconds = (Date.now() - t0) / 1000;
  addon.closeFd(fd);
  return { sent, seconds, kinds, cookies, received };
}

const BLASTER_JS = fileURLToPath(import.meta.url);

/** Runs the blaster inside `ns` to completion and returns its result. */
export async function runBlaster(
  lab: Lab,
  ns: Netns,
  o: BlasterOptions,
  timeoutMs = 600_000,
): Promise<BlasterResult> {
  const r = await lab.tryExec(ns, process.execPath, [BLASTER_JS, JSON.stringify(o)], {
    timeoutMs,
  });
  if (r.code !== 0) throw new Error(`blaster failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as BlasterResult;
}

if (process.argv[1] === BLASTER_JS) {
  const o = JSON.parse(process.argv[2] ?? '{}') as BlasterOptions;
  (o.mode === 'flood' ? flood(o) : o.mode === 'spoof' ? spoof(o) : fuzz(o)).then(
    (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
    (err: Error) => {
      process.stderr.write(`blaster: ${err.message}\n`);
      process.exit(1);
    },
  );
}
