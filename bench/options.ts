/**
 * The command line of `wireguard-ts bench`: parsing and validation. Usage errors throw
 * WgError('ERR_INVALID_VALUE') naming the option, so the CLI can exit 2 with one line.
 */
import { WgError } from '../src/errors.js';

export const CASE_NAMES = ['bare', 'go', 'ts', 'mixed'] as const;
export type CaseName = (typeof CASE_NAMES)[number];

export interface BenchOptions {
  /** Seconds per iperf3 run. */
  readonly durationS: number;
  readonly repeat: number;
  readonly only: readonly CaseName[];
  /** Passed to the wireguard-ts daemon as WG_TS_WORKERS; undefined leaves its default. */
  readonly workers: number | undefined;
  readonly jsonFile: string;
  readonly svgFile: string;
  /** MTU of the tunnel interfaces; the underlay veth gets 80 bytes more (IPv6 outer headers). */
  readonly mtu: number;
  /**
   * Milliseconds between RTT probes. Idle gaps decide the result: after more than a few ms idle,
   * the daemons' runtimes have fallen out of the caches and every hop pays a cold wake-up
   * (docs/performance.md, RTT).
   */
  readonly pingIntervalMs: number;
  /** Skip the tcpdump proof that the marker never crosses the wire in plaintext. */
  readonly skipProof: boolean;
  /** Directory for V8 CPU profiles of the wireguard-ts daemons (node --cpu-prof), if set. */
  readonly cpuProfDir: string | undefined;
  readonly help: boolean;
}

export const USAGE = `Usage: wireguard-ts bench [options]     (as root; end-to-end throughput)
       wireguard-ts bench micro [--help]   (per-function micro-benchmarks)
  --duration S     seconds per iperf3 run (default 10)
  --repeat N       repeats per case; medians are reported (default 3)
  --only LIST      cases, comma-separated: bare,go,ts,mixed (default all)
  --workers N      WG_TS_WORKERS for the wireguard-ts daemons (0 = seal/open inline)
  --json FILE      JSON results (default bench-results/bench-<date>.json)
  --svg FILE       SVG bar chart (default bench-results/bench-<date>.svg)
  --mtu N          inner (tunnel) MTU (default 1420)
  --ping-interval MS  milliseconds between RTT probes, 2..1000 (default 10)
  --no-proof       skip the capture proving only WireGuard UDP crosses the wire
  --cpu-prof DIR   write V8 CPU profiles of the wireguard-ts daemons to DIR
  -h, --help       this text`;

function dateStamp(now: Date): string {
  return now.toISOString().replace(/[:]/g, '').replace(/\..*$/, '');
}

function intOption(name: string, raw: string | undefined, min: number, max: number): number {
  const n = raw !== undefined && /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new WgError(
      'ERR_INVALID_VALUE',
      `${name}: expected an integer ${min}..${max}, got ${raw ?? 'nothing'}`,
      name,
    );
  }
  return n;
}

export function parseOptions(argv: readonly string[], now = new Date()): BenchOptions {
  let durationS = 10;
  let repeat = 3;
  let only: CaseName[] = [...CASE_NAMES];
  let workers: number | undefined;
  let jsonFile: string | undefined;
  let svgFile: string | undefined;
  let mtu = 1420;
  let pingIntervalMs = 10;
  let skipProof = false;
  let cpuProfDir: string | undefined;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const inline = arg.startsWith('--') && eq > 0 ? arg.slice(eq + 1) : undefined;
    const value = (): string | undefined => inline ?? argv[++i];
    switch (name) {
      case '--duration':
        durationS = intOption(name, value(), 1, 3600);
        break;
      case '--repeat':
        repeat = intOption(name, value(), 1, 100);
        break;
      case '--workers':
        workers = intOption(name, value(), 0, 64);
        break;
      case '--mtu':
        mtu = intOption(name, value(), 576, 65_000);
        break;
      case '--ping-interval':
        // iputils ping refuses intervals under 2 ms even for root.
        pingIntervalMs = intOption(name, value(), 2, 1000);
        break;
      case '--only': {
        const raw = value() ?? '';
        const names = raw
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '');
        const bad = names.find((s) => !(CASE_NAMES as readonly string[]).includes(s));
        if (names.length === 0 || bad !== undefined) {
          throw new WgError(
            'ERR_INVALID_VALUE',
            `--only: expected some of ${CASE_NAMES.join(',')}, got ${raw}`,
            name,
          );
        }
        // Keep the canonical order so tables and charts always read bare, go, ts, mixed.
        only = CASE_NAMES.filter((c) => names.includes(c));
        break;
      }
      case '--json':
        jsonFile = value();
        if (!jsonFile) throw new WgError('ERR_INVALID_VALUE', '--json: expected a file name', name);
        break;
      case '--svg':
        svgFile = value();
        if (!svgFile) throw new WgError('ERR_INVALID_VALUE', '--svg: expected a file name', name);
        break;
      case '--cpu-prof':
        cpuProfDir = value();
        if (!cpuProfDir)
          throw new WgError('ERR_INVALID_VALUE', '--cpu-prof: expected a directory', name);
        break;
      case '--no-proof':
        skipProof = true;
        break;
      case '-h':
      case '--help':
        help = true;
        break;
      default:
        throw new WgError('ERR_INVALID_VALUE', `unknown option ${arg}`, arg);
    }
  }
  const stamp = dateStamp(now);
  return {
    durationS,
    repeat,
    only,
    workers,
    jsonFile: jsonFile ?? `bench-results/bench-${stamp}.json`,
    svgFile: svgFile ?? `bench-results/bench-${stamp}.svg`,
    mtu,
    pingIntervalMs,
    skipProof,
    cpuProfDir,
    help,
  };
}
