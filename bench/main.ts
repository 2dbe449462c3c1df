/**
 * `wireguard-ts bench`: the end-to-end throughput benchmark. In namespaces and a veth of its own
 * it measures, one case after another, the bare veth, a wireguard-go pair, a wireguard-ts pair
 * and a mixed pair (iperf3 TCP 1 and 4 streams, UDP at full rate, RTT, daemon CPU and peak RSS),
 * repeats each case and reports medians, proves with a capture that only WireGuard UDP crosses
 * the wire, prints a table with ratios against wireguard-go and writes JSON and an SVG chart.
 * The Lab removes everything it made, also on SIGINT/SIGTERM.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { WgError } from '../src/errors.js';
import { Lab } from '../src/lab/lab.js';
import { DEFAULT_GO_COMMAND, REPO_ROOT, implSkipReason, type Impl } from '../src/lab/daemon.js';
import { CPU_PROF_DIR_ENV } from './cpu-prof-preload.js';
import { measureRepeat } from './measure.js';
import { runMicro } from './micro/main.js';
import {
  DEBIAN_WIREGUARD_GO,
  parseOptions,
  USAGE,
  WIREGUARD_GO_ENV,
  type BenchOptions,
  type CaseName,
} from './options.js';
import { proveEncryption } from './proof.js';
import { formatProof, formatReport } from './report.js';
import {
  summarize,
  toJson,
  type BenchReport,
  type CaseResult,
  type EncryptionProof,
  type RepeatResult,
} from './results.js';
import { renderSvg } from './svg.js';
import {
  hasCommand,
  makeUnderlay,
  startTunnel,
  UNDERLAY_B,
  TUNNEL_B,
  type Underlay,
} from './topology.js';

interface CaseSpec {
  readonly label: string;
  /** Short enough for interface names (15 bytes with the lab prefix and side). */
  readonly tag: string;
  readonly impls: readonly [Impl, Impl] | null;
  /** Which wireguard-go build plays 'go': the chosen one (--wireguard-go), or Debian's. */
  readonly goBuild: 'chosen' | 'debian';
}

const CASES: Record<CaseName, CaseSpec> = {
  bare: { label: 'bare veth', tag: 'bare', impls: null, goBuild: 'chosen' },
  go: { label: 'wireguard-go <-> wireguard-go', tag: 'go', impls: ['go', 'go'], goBuild: 'chosen' },
  'go-debian': {
    label: 'Debian wireguard-go pair',
    tag: 'gd',
    impls: ['go', 'go'],
    goBuild: 'debian',
  },
  ts: { label: 'wireguard-ts <-> wireguard-ts', tag: 'ts', impls: ['ts', 'ts'], goBuild: 'chosen' },
  mixed: {
    label: 'wireguard-ts <-> wireguard-go',
    tag: 'mixed',
    impls: ['ts', 'go'],
    goBuild: 'chosen',
  },
};

function goCommand(name: CaseName, opts: BenchOptions): string {
  return CASES[name].goBuild === 'debian'
    ? DEBIAN_WIREGUARD_GO
    : (opts.wireguardGo ?? DEFAULT_GO_COMMAND);
}

const CPU_PROF_PRELOAD = fileURLToPath(new URL('./cpu-prof-preload.js', import.meta.url));

/** The case whose tunnel the capture proof runs on: ours when it runs, else whatever runs. */
const PROOF_PREFERENCE: readonly CaseName[] = ['ts', 'mixed', 'go'];

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function skipReason(name: CaseName, opts: BenchOptions): string | undefined {
  const impls = CASES[name].impls;
  if (!impls) return undefined;
  for (const impl of new Set(impls)) {
    const why = implSkipReason(impl, goCommand(name, opts));
    if (why) return why;
  }
  return undefined;
}

function versionOf(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? (r.stdout.split('\n')[0] ?? '').trim() : 'not installed';
}

/** Versions of what ran; `wireguard-go` is the build of the go and mixed cases. */
function versions(opts: BenchOptions): Record<string, string> {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
    version: string;
  };
  const out: Record<string, string> = {
    'wireguard-ts': pkg.version,
    'wireguard-go': versionOf(opts.wireguardGo ?? DEFAULT_GO_COMMAND, ['--version']),
  };
  if (opts.only.includes('go-debian')) {
    out['wireguard-go-debian'] = versionOf(DEBIAN_WIREGUARD_GO, ['--version']);
  }
  out['iperf3'] = versionOf('iperf3', ['--version']);
  return out;
}

function describeRepeat(r: RepeatResult): string {
  const g = (v: number | undefined): string => (v === undefined ? '-' : v.toFixed(3));
  return (
    `TCP1 ${g(r.tcp1?.gbps)} TCP4 ${g(r.tcp4?.gbps)} UDP ${g(r.udp?.gbps)} Gbit/s ` +
    `(loss ${r.udp ? r.udp.lossPercent.toFixed(1) : '-'}%), RTT median ${g(r.rtt?.medianMs)} ms` +
    (r.daemons.length > 0
      ? `, CPU ${r.daemons.map((d) => d.cpuSeconds.toFixed(1)).join('/')} s`
      : '')
  );
}

async function runCase(
  lab: Lab,
  u: Underlay,
  name: CaseName,
  opts: BenchOptions,
  proofHere: boolean,
): Promise<{ result: CaseResult; proof: EncryptionProof | null }> {
  const { label, tag, impls } = CASES[name];
  const skip = skipReason(name, opts);
  if (skip) {
    log(`[${name}] skipped: ${skip}`);
    return {
      result: { name, label, status: 'skipped', note: skip, repeats: [], summary: null },
      proof: null,
    };
  }
  log(`[${name}] ${label}`);
  // Both daemons get the same environment; wireguard-go ignores these variables.
  const env: Record<string, string> = {};
  if (opts.workers !== undefined) env['WG_TS_WORKERS'] = String(opts.workers);
  if (opts.cpuProfDir !== undefined) {
    mkdirSync(opts.cpuProfDir, { recursive: true });
    // Node refuses --cpu-prof in NODE_OPTIONS but allows --import: a preload does the profiling.
    env[CPU_PROF_DIR_ENV] = resolve(opts.cpuProfDir);
    env['NODE_OPTIONS'] =
      `${process.env['NODE_OPTIONS'] ?? ''} --import=${pathToFileURL(CPU_PROF_PRELOAD).href}`.trim();
  }

  let tunnel = null;
  const repeats: RepeatResult[] = [];
  let proof: EncryptionProof | null = null;
  try {
    if (impls) {
      tunnel = await startTunnel(lab, u, tag, impls[0], impls[1], opts.mtu, env, {
        goCommand: goCommand(name, opts),
      });
    }
    for (let i = 0; i < opts.repeat; i++) {
      const r = await measureRepeat({
        lab,
        ns: u.a,
        server: impls ? TUNNEL_B : UNDERLAY_B,
        daemons: tunnel?.daemons ?? [],
        durationS: opts.durationS,
        mtu: opts.mtu,
        pingIntervalMs: opts.pingIntervalMs,
        log,
      });
      repeats.push(r);
      log(`  repeat ${i + 1}/${opts.repeat}: ${describeRepeat(r)}`);
    }
    if (proofHere) {
      log(`  capturing the underlay while a marker crosses the tunnel`);
      proof = await proveEncryption(lab, u, name);
      log(formatProof(proof, null).replace(/^/gm, '  '));
    }
  } catch (err) {
    const note = (err as Error).message.split('\n')[0] ?? 'failed';
    log(`[${name}] failed: ${(err as Error).message}`);
    return {
      result: {
        name,
        label,
        status: 'failed',
        note,
        repeats,
        summary: repeats.length ? summarize(repeats, opts.durationS) : null,
      },
      proof,
    };
  } finally {
    await tunnel?.stop();
  }
  const anyFigure = repeats.some((r) => r.tcp1 || r.tcp4 || r.udp || r.rtt);
  const errors = repeats.flatMap((r) => r.errors);
  return {
    result: {
      name,
      label,
      status: anyFigure ? 'ok' : 'failed',
      note: errors.length > 0 ? errors.join('; ') : null,
      repeats,
      summary: summarize(repeats, opts.durationS),
    },
    proof,
  };
}

function missingTools(opts: BenchOptions): string[] {
  const tools = ['ip', 'iperf3', 'ncat', 'wg'];
  if (!opts.skipProof) tools.push('tcpdump');
  return tools.filter((t) => !hasCommand(t));
}

function writeOutputs(report: BenchReport, opts: BenchOptions): void {
  for (const f of [opts.jsonFile, opts.svgFile]) mkdirSync(dirname(f), { recursive: true });
  writeFileSync(opts.jsonFile, toJson(report));
  const title = `wireguard-ts bench: ${report.options.durationS} s runs, median of ${report.options.repeat}, inner MTU ${report.options.mtu}`;
  writeFileSync(opts.svgFile, renderSvg(report.cases, title));
}

/**
 * Runs the benchmark with command-line arguments (`micro ...` runs the micro-benchmarks
 * instead); resolves the process exit code.
 */
export async function runBench(argv: string[]): Promise<number> {
  if (argv[0] === 'micro') return runMicro(argv.slice(1));
  let opts: BenchOptions;
  try {
    opts = parseOptions(argv);
  } catch (err) {
    if (!(err instanceof WgError)) throw err;
    process.stderr.write(`wireguard-ts bench: ${err.message}\n${USAGE}\n`);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (
    opts.wireguardGo !== undefined &&
    versionOf(opts.wireguardGo, ['--version']) === 'not installed'
  ) {
    const from = argv.some((a) => a.startsWith('--wireguard-go'))
      ? '--wireguard-go'
      : WIREGUARD_GO_ENV;
    process.stderr.write(
      `wireguard-ts bench: ${from}: ${opts.wireguardGo} --version failed: not a wireguard-go\n${USAGE}\n`,
    );
    return 2;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('wireguard-ts bench: needs root (network namespaces, TUN devices)\n');
    return 1;
  }
  const missing = missingTools(opts);
  if (missing.length > 0) {
    process.stderr.write(
      `wireguard-ts bench: missing tools: ${missing.join(' ')} (see scripts/setup.sh)\n`,
    );
    return 1;
  }
  const startedAt = new Date().toISOString();
  const proofCandidates = opts.skipProof
    ? []
    : PROOF_PREFERENCE.filter((c) => opts.only.includes(c) && !skipReason(c, opts));
  const attempted = new Set<CaseName>();
  // The proof runs on the most preferred case, or on the next one if that case failed first.
  const proofHere = (name: CaseName): boolean => {
    const i = proofCandidates.indexOf(name);
    return proof === null && i >= 0 && proofCandidates.slice(0, i).every((c) => attempted.has(c));
  };
  const lab = new Lab('wgtb');
  const cases: CaseResult[] = [];
  let proof: EncryptionProof | null = null;
  try {
    const u = await makeUnderlay(lab, opts.mtu);
    for (const name of opts.only) {
      const r = await runCase(lab, u, name, opts, proofHere(name));
      attempted.add(name);
      cases.push(r.result);
      proof ??= r.proof;
    }
  } catch (err) {
    process.stderr.write(`wireguard-ts bench: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await lab.dispose();
  }
  const proofNote = opts.skipProof
    ? '--no-proof'
    : proofCandidates.length === 0
      ? 'no tunnel case ran'
      : proof
        ? null
        : `the ${proofCandidates.join('/')} case failed before the capture finished`;
  const report: BenchReport = {
    startedAt,
    host: { cpus: cpus().length, kernel: release(), node: process.version },
    versions: versions(opts),
    options: {
      durationS: opts.durationS,
      repeat: opts.repeat,
      only: opts.only,
      wireguardGo: opts.wireguardGo ?? null,
      workers: opts.workers ?? null,
      mtu: opts.mtu,
      pingIntervalMs: opts.pingIntervalMs,
    },
    cases,
    proof,
    proofNote,
  };
  process.stdout.write(`${formatReport(report)}\n`);
  writeOutputs(report, opts);
  process.stdout.write(`\nJSON: ${opts.jsonFile}\nSVG:  ${opts.svgFile}\n`);
  const failed = cases.some((c) => c.status === 'failed') || (proof !== null && !proof.passed);
  return failed ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runBench(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`wireguard-ts bench: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
