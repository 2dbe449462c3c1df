/**
 * The impairment relay: a UDP proxy with seeded loss, duplication, reordering and delay, for
 * underlay impairment in the lab (this kernel has no netem). It runs as its own process inside
 * a namespace; the near peer's endpoint is set to the relay's listen address, the relay forwards
 * to the far peer from a second socket, and the far peer's replies go back to the last client.
 * With `record`, every datagram it sees (both directions, before impairment) is appended as
 * `<dir> <hex>` lines, so tests can replay real traffic later.
 *
 *   const r = await startRelay(lab, p.a.ns, { listen: '127.0.0.1:40000',
 *     target: '192.168.241.2:51821', loss: 0.05, duplicate: 0.01, reorder: 0.01, seed: 1 });
 *   await wg(lab, p.a.ns, ['set', p.a.ifname, 'peer', p.b.publicKey, 'endpoint', r.listen]);
 *   ...
 *   (await r.stats()).forward.dropped;     // what the relay did, per direction
 *   await r.stop();
 *
 * As a program: node relay.js '<json RelayOptions>' (prints `ready` then a stats JSON line on
 * SIGUSR2 and on SIGTERM).
 */
import { appendFileSync } from 'node:fs';
import { createSocket, type Socket } from 'node:dgram';
import { fileURLToPath } from 'node:url';
import type { Lab, LabProcess, Netns } from './lab.js';
import { parseEndpoint, type Endpoint } from '../tunnel/ip.js';
import { waitFor } from './wait.js';

export interface Impairment {
  /** Probability a datagram is dropped (0..1). */
  readonly loss?: number;
  /** Probability a datagram is sent twice. */
  readonly duplicate?: number;
  /** Probability a datagram is held back by `reorderMs` extra (so later ones overtake it). */
  readonly reorder?: number;
  readonly reorderMs?: number;
  /** Fixed one-way delay (ms), and uniform jitter on top. */
  readonly delayMs?: number;
  readonly jitterMs?: number;
}

export interface RelayOptions extends Impairment {
  /** `ip:port` the near peer sends to. */
  readonly listen: string;
  /** `ip:port` of the far peer. */
  readonly target: string;
  /** PRNG seed: the same seed and traffic give the same impairment decisions. */
  readonly seed?: number;
  /** Append every datagram seen to this file (`f <hex>` forward, `r <hex>` reverse). */
  readonly record?: string;
  /** Impair only one direction (default both). */
  readonly direction?: 'both' | 'forward' | 'reverse';
}

export interface DirectionStats {
  received: number;
  dropped: number;
  duplicated: number;
  reordered: number;
  sent: number;
}

export interface RelayStats {
  readonly forward: DirectionStats;
  readonly reverse: DirectionStats;
}

/** mulberry32: small, fast, seedable; good enough for impairment decisions. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The decisions for one datagram: how many copies, each after how many ms (empty = lost). */
export function impair(imp: Impairment, rnd: () => number, st: DirectionStats): number[] {
  st.received++;
  if (rnd() < (imp.loss ?? 0)) {
    st.dropped++;
    return [];
  }
  const copies = rnd() < (imp.duplicate ?? 0) ? 2 : 1;
  if (copies === 2) st.duplicated++;
  const out: number[] = [];
  for (let i = 0; i < copies; i++) {
    let d = (imp.delayMs ?? 0) + (imp.jitterMs ? rnd() * imp.jitterMs : 0);
    if (rnd() < (imp.reorder ?? 0)) {
      d += imp.reorderMs ?? 5;
      st.reordered++;
    }
    out.push(d);
  }
  return out;
}

function emptyStats(): DirectionStats {
  return { received: 0, dropped: 0, duplicated: 0, reordered: 0, sent: 0 };
}

function socketFor(e: Endpoint): Socket {
  return createSocket({
    type: e.family === 6 ? 'udp6' : 'udp4',
    recvBufferSize: 4 << 20,
    sendBufferSize: 4 << 20,
  });
}

/** Runs the relay in this process until SIGTERM/SIGINT. */
export async function runRelay(o: RelayOptions): Promise<void> {
  const listen = parseEndpoint(o.listen);
  const target = parseEndpoint(o.target);
  const rnd = seededRandom(o.seed ?? 1);
  const stats: RelayStats = { forward: emptyStats(), reverse: emptyStats() };
  const near = socketFor(listen);
  const far = socketFor(target);
  let client: { address: string; port: number } | null = null;
  const none: Impairment = {};
  const impFwd = o.direction === 'reverse' ? none : o;
  const impRev = o.direction === 'forward' ? none : o;
  const pass = (
    msg: Buffer,
    imp: Impairment,
    st: DirectionStats,
    send: (m: Buffer) => void,
    tag: string,
  ) => {
    if (o.record) appendFileSync(o.record, `${tag} ${msg.toString('hex')}\n`);
    for (const d of impair(imp, rnd, st)) {
      const go = () => {
        st.sent++;
        send(msg);
      };
      if (d <= 0) go();
      else setTimeout(go, d);
    }
  };
  near.on('message', (msg, rinfo) => {
    client = { address: rinfo.address, port: rinfo.port };
    pass(msg, impFwd, stats.forward, (m) => far.send(m, target.port, target.address), 'f');
  });
  far.on('message', (msg) => {
    const c = client;
    if (!c) return;
    pass(msg, impRev, stats.reverse, (m) => near.send(m, c.port, c.address), 'r');
  });
  await new Promise<void>((r) => near.bind(listen.port, listen.address, r));
  await new Promise<void>((r) => far.bind(0, r));
  const print = () => process.stdout.write(`${JSON.stringify(stats)}\n`);
  process.on('SIGUSR2', print);
  const quit = () => {
    print();
    near.close();
    far.close();
    process.exit(0);
  };
  process.once('SIGTERM', quit);
  process.once('SIGINT', quit);
  process.stdout.write('ready\n');
}

export interface RelayHandle {
  readonly listen: string;
  readonly proc: LabProcess;
  /** The relay's counters now. */
  stats(): Promise<RelayStats>;
  stop(): Promise<RelayStats>;
}

const RELAY_JS = fileURLToPath(import.meta.url);

function lastStats(proc: LabProcess, seen: number): RelayStats | null {
  const lines = proc
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'));
  return lines.length > seen ? (JSON.parse(lines.at(-1)!) as RelayStats) : null;
}

/** Starts a relay process inside `ns` (owned by the lab) and waits until it listens. */
export async function startRelay(lab: Lab, ns: Netns, o: RelayOptions): Promise<RelayHandle> {
  const proc = lab.spawn(ns, process.execPath, [RELAY_JS, JSON.stringify(o)]);
  await waitFor(
    () => {
      if (proc.exitStatus()) throw new Error(`relay exited: ${proc.output()}`);
      return proc.output().includes('ready');
    },
    5000,
    'relay ready',
    20,
  );
  const count = () =>
    proc
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{')).length;
  return {
    listen: o.listen,
    proc,
    stats: async () => {
      const seen = count();
      proc.child.kill('SIGUSR2');
      let s: RelayStats | null = null;
      await waitFor(() => (s = lastStats(proc, seen)) !== null, 3000, 'relay stats', 10);
      return s!;
    },
    stop: async () => {
      const seen = count();
      await proc.stop(2000);
      const s = lastStats(proc, seen);
      if (!s) throw new Error(`relay gave no stats: ${proc.output()}`);
      return s;
    },
  };
}

if (process.argv[1] === RELAY_JS) {
  runRelay(JSON.parse(process.argv[2] ?? '{}') as RelayOptions).catch((err: Error) => {
    process.stderr.write(`relay: ${err.message}\n`);
    process.exit(1);
  });
}
