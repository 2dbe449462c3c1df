/**
 * The hostile sender for live hardening tests, run as its own process inside a namespace:
 *
 * - `fuzz`: random datagrams, truncated / bit-flipped / retyped copies of real messages of all
 *   four types, and exact replays of recorded traffic (a relay `record` file), at a set rate.
 * - `flood`: handshake initiations with a valid mac1 for the responder's public key (random
 *   ephemeral, static and timestamp, so any DH work is wasted) from many source addresses as
 *   fast as the sender can go, counting the cookie replies that come back.
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
import { parseEndpoint } from '../tunnel/ip.js';
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
  readonly seed?: number;
}

export type BlasterOptions = FuzzBlast | FloodBlast;

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
  const key = mac1Key(new Uint8Array(Buffer.from(o.responderPublicKey, 'base64')));
  const pool: Uint8Array[] = [];
  for (let i = 0; i < 4096; i++) {
    const m = randomBytes(148, rnd);
    m.set([1, 0, 0, 0]);
    m.set(mac(key, m.subarray(0, 116)), 116);
    m.fill(0, 132);
    pool.push(m);
  }
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
  (o.mode === 'flood' ? flood(o) : fuzz(o)).then(
    (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
    (err: Error) => {
      process.stderr.write(`blaster: ${err.message}\n`);
      process.exit(1);
    },
  );
}
