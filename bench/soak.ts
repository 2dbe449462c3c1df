/**
 * `npm run soak -- --minutes N`: a wireguard-ts pair in two namespaces with rekeys forced often
 * (WG_TS_REKEY_AFTER_TIME_MS), TCP transfers through the tunnel back to back in both directions
 * (each checked by sha256), and every few seconds a sample of throughput, each daemon's RSS and
 * open file descriptors (/proc/<pid>/fd) and the latest handshake. Writes soak.json and soak.svg
 * and judges: RSS high-water mark growth < 10% (last quarter against first half), no
 * descriptor leak, all data intact, rekeys seen.
 *
 *   npm run soak -- --minutes 10 --rekey-ms 10000 --chunk-mb 16 --pause-ms 0 --out ./soak-results
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import {
  Lab,
  fdCount,
  latestHandshake,
  linkStats,
  makePair,
  rssKiB,
  tcpTransfer,
  waitPing,
} from '../src/lab/index.js';

export interface SoakOptions {
  readonly minutes: number;
  readonly rekeyMs: number;
  readonly sampleS: number;
  /** Bytes per TCP transfer. */
  readonly chunkBytes: number;
  readonly outDir: string | null;
  /** Idle time between transfers (to share a busy machine); default 0. */
  readonly pauseMs?: number;
  readonly log?: (line: string) => void;
}

export interface SoakSample {
  readonly t: number;
  readonly mbitPerSec: number;
  readonly rssKiB: readonly [number, number];
  readonly fds: readonly [number, number];
  readonly latestHandshake: number;
}

export interface SoakResult {
  readonly options: Omit<SoakOptions, 'log'>;
  readonly samples: readonly SoakSample[];
  readonly transfers: number;
  readonly bytes: number;
  readonly corrupted: number;
  readonly handshakesSeen: number;
  /** Per daemon: max RSS of the last quarter / max RSS of the first half - 1 (judged). */
  readonly rssGrowth: readonly [number, number];
  /** Per daemon: median RSS of the last quarter / of the second quarter - 1 (reported). */
  readonly rssMedianGrowth: readonly [number, number];
  readonly fdGrowth: readonly [number, number];
  readonly ok: boolean;
  readonly verdict: string[];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : 0;
};

/**
 * Leak check on a garbage-collected heap: RSS is a sawtooth, so compare high-water marks: the
 * highest sample of the last quarter against the highest of the first half (after the first
 * sample, which is mostly start-up).
 */
function envelopeGrowth(series: number[]): number {
  if (series.length < 4) return 0;
  const q = Math.max(1, Math.floor(series.length / 4));
  const base = Math.max(...series.slice(1, 2 * q));
  const last = Math.max(...series.slice(series.length - q));
  return base > 0 ? last / base - 1 : 0;
}

/** Median of the last quarter against the median of the second quarter (reported only). */
function medianGrowth(series: number[]): number {
  if (series.length < 4) return 0;
  const q = Math.max(1, Math.floor(series.length / 4));
  const base = median(series.slice(q, 2 * q));
  return base > 0 ? median(series.slice(series.length - q)) / base - 1 : 0;
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const log = o.log ?? (() => undefined);
  const lab = new Lab('wgth');
  try {
    const p = await makePair(lab, 'ts', 'ts', {
      daemonEnv: { WG_TS_REKEY_AFTER_TIME_MS: String(o.rekeyMs) },
    });
    await waitPing(lab, p.a.ns, p.b.inner4, 10_000);
    const pids = [p.a.daemon.pid, p.b.daemon.pid] as const;
    const end = Date.now() + o.minutes * 60_000;
    const t0 = Date.now();
    const samples: SoakSample[] = [];
    const handshakes = new Set<number>();
    let transfers = 0;
    let bytes = 0;
    let corrupted = 0;
    let stop = false;
    const traffic = (async () => {
      for (let i = 0; !stop && Date.now() < end; i++) {
        const [from, to] = i % 2 === 0 ? [p.a, p.b] : [p.b, p.a];
        const r = await tcpTransfer(lab, from.ns, to.ns, to.inner4, {
          bytes: o.chunkBytes,
          timeoutMs: 60_000,
        });
        transfers++;
        bytes += r.receivedBytes;
        if (r.receivedSha256 !== r.sentSha256 || r.receivedBytes !== r.bytes) corrupted++;
        if (o.pauseMs) await new Promise((res) => setTimeout(res, o.pauseMs));
      }
    })();
    let lastTx = (await linkStats(lab, p.a.ns, p.a.ifname)).txBytes;
    let lastRx = (await linkStats(lab, p.a.ns, p.a.ifname)).rxBytes;
    let lastT = Date.now();
    while (Date.now() < end) {
      await new Promise((r) =>
        setTimeout(r, Math.min(o.sampleS * 1000, Math.max(0, end - Date.now()))),
      );
      const st = await linkStats(lab, p.a.ns, p.a.ifname);
      const now = Date.now();
      const moved = st.txBytes - lastTx + (st.rxBytes - lastRx);
      const hs = await latestHandshake(lab, p.a, p.b.publicKey);
      handshakes.add(hs);
      const s: SoakSample = {
        t: (now - t0) / 1000,
        mbitPerSec: (moved * 8) / ((now - lastT) / 1000) / 1e6,
        rssKiB: [rssKiB(pids[0]), rssKiB(pids[1])],
        fds: [fdCount(pids[0]), fdCount(pids[1])],
        latestHandshake: hs,
      };
      samples.push(s);
      log(
        `t=${s.t.toFixed(0)}s ${s.mbitPerSec.toFixed(0)} Mbit/s RSS ${s.rssKiB.join('/')} KiB fds ${s.fds.join('/')} hs ${hs}`,
      );
      lastTx = st.txBytes;
      lastRx = st.rxBytes;
      lastT = now;
    }
    stop = true;
    await traffic;
    const rssOf = (i: number) => samples.map((s) => s.rssKiB[i]!);
    const rssGrowth = [0, 1].map((i) => envelopeGrowth(rssOf(i))) as [number, number];
    const rssMedianGrowth = [0, 1].map((i) => medianGrowth(rssOf(i))) as [number, number];
    const fdGrowth = [0, 1].map((i) =>
      samples.length ? samples.at(-1)!.fds[i]! - samples[0]!.fds[i]! : 0,
    ) as [number, number];
    const verdict: string[] = [];
    if (corrupted > 0) verdict.push(`${corrupted} transfers corrupted`);
    if (rssGrowth.some((g) => g >= 0.1))
      verdict.push(`RSS grew ${rssGrowth.map((g) => (g * 100).toFixed(1)).join('%/')}%`);
    if (fdGrowth.some((g) => g > 2)) verdict.push(`descriptors grew ${fdGrowth.join('/')}`);
    if (handshakes.size < 2) verdict.push('no rekey observed');
    if (transfers === 0) verdict.push('no transfer completed');
    const { log: _log, ...options } = o;
    void _log;
    const result: SoakResult = {
      options,
      samples,
      transfers,
      bytes,
      corrupted,
      handshakesSeen: handshakes.size,
      rssGrowth,
      rssMedianGrowth,
      fdGrowth,
      ok: verdict.length === 0,
      verdict,
    };
    if (o.outDir) {
      mkdirSync(o.outDir, { recursive: true });
      writeFileSync(join(o.outDir, 'soak.json'), `${JSON.stringify(result, null, 2)}\n`);
      writeFileSync(join(o.outDir, 'soak.svg'), soakSvg(result));
    }
    return result;
  } finally {
    await lab.dispose();
  }
}

/** Three stacked line charts over time: throughput, RSS of both daemons, open descriptors. */
export function soakSvg(r: SoakResult): string {
  const W = 720;
  const H = 160;
  const pad = 40;
  const xs = r.samples.map((s) => s.t);
  const tMax = Math.max(1, ...xs);
  const panel = (
    i: number,
    title: string,
    series: { name: string; color: string; ys: number[] }[],
  ) => {
    const yMax = Math.max(1, ...series.flatMap((s) => s.ys)) * 1.1;
    const top = i * (H + pad) + pad;
    const px = (t: number) => pad + (t / tMax) * (W - 2 * pad);
    const py = (y: number) => top + H - (y / yMax) * H;
    const lines = series
      .map(
        (s) =>
          `<polyline fill="none" stroke="${s.color}" stroke-width="1.5" points="${s.ys.map((y, k) => `${px(xs[k]!).toFixed(1)},${py(y).toFixed(1)}`).join(' ')}"/>`,
      )
      .join('');
    const legend = series
      .map(
        (s, k) =>
          `<text x="${W - pad - 150 + k * 75}" y="${top - 6}" fill="${s.color}" font-size="11">${s.name}</text>`,
      )
      .join('');
    return `<text x="${pad}" y="${top - 6}" font-size="12">${title} (max ${yMax.toFixed(0)})</text>${legend}<rect x="${pad}" y="${top}" width="${W - 2 * pad}" height="${H}" fill="none" stroke="#ccc"/>${lines}<text x="${W - pad}" y="${top + H + 14}" font-size="10" text-anchor="end">${tMax.toFixed(0)} s</text>`;
  };
  const body = [
    panel(0, 'throughput, Mbit/s', [
      { name: 'A tx+rx', color: '#1f77b4', ys: r.samples.map((s) => s.mbitPerSec) },
    ]),
    panel(1, 'RSS, KiB', [
      { name: 'daemon A', color: '#d62728', ys: r.samples.map((s) => s.rssKiB[0]) },
      { name: 'daemon B', color: '#2ca02c', ys: r.samples.map((s) => s.rssKiB[1]) },
    ]),
    panel(2, 'open descriptors', [
      { name: 'daemon A', color: '#d62728', ys: r.samples.map((s) => s.fds[0]) },
      { name: 'daemon B', color: '#2ca02c', ys: r.samples.map((s) => s.fds[1]) },
    ]),
  ].join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${3 * (H + pad) + pad}" font-family="sans-serif">${body}</svg>\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '10' },
      'rekey-ms': { type: 'string', default: '10000' },
      'sample-s': { type: 'string', default: '5' },
      'chunk-mb': { type: 'string', default: '16' },
      'pause-ms': { type: 'string', default: '0' },
      out: { type: 'string', default: 'soak-results' },
    },
  });
  const r = await runSoak({
    minutes: Number(values.minutes),
    rekeyMs: Number(values['rekey-ms']),
    sampleS: Number(values['sample-s']),
    chunkBytes: Number(values['chunk-mb']) * (1 << 20),
    outDir: resolve(values.out!),
    pauseMs: Number(values['pause-ms']),
    log: (l) => process.stdout.write(`${l}\n`),
  });
  process.stdout.write(
    `soak: ${r.transfers} transfers, ${(r.bytes / 2 ** 20).toFixed(0)} MiB, ${r.handshakesSeen} handshakes seen, RSS growth ${r.rssGrowth.map((g) => (g * 100).toFixed(1)).join('%/')}% (medians ${r.rssMedianGrowth.map((g) => (g * 100).toFixed(1)).join('%/')}%), fd growth ${r.fdGrowth.join('/')}: ${r.ok ? 'PASS' : `FAIL (${r.verdict.join('; ')})`}\n`,
  );
  process.exit(r.ok ? 0 : 1);
}
