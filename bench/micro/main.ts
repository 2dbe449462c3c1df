/**
 * `wireguard-ts bench micro`: the per-function micro-benchmarks (AEAD per packet for both
 * backends, native AEAD batches, handshakes, allowed-IPs lookups, replay-window checks). Each
 * suite checks its outputs first; results print as a table and optionally go to a JSON file.
 *
 *   node dist/bench/micro/main.js [--only aead,aead-native,handshake,allowed-ips,replay]
 *     [--max-time S] [--json F]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { aeadSuite } from './aead.bench.js';
import { aeadNativeSuite } from './aead-native.bench.js';
import { allowedIpsSuite } from './allowed-ips.bench.js';
import { handshakeSuite } from './handshake.bench.js';
import { replaySuite } from './replay.bench.js';
import { runSuite, type MicroResult, type MicroSuite } from './harness.js';

const SUITES: readonly MicroSuite[] = [
  aeadSuite,
  aeadNativeSuite,
  handshakeSuite,
  allowedIpsSuite,
  replaySuite,
];

export const MICRO_USAGE = `Usage: wireguard-ts bench micro [options]
  --only LIST      suites, comma-separated: ${SUITES.map((s) => s.name).join(',')} (default all)
  --max-time S     seconds per case (default 1)
  --json FILE      write the results as JSON
  -h, --help       this text`;

interface MicroOptions {
  readonly only: readonly string[];
  readonly maxTimeS: number;
  readonly jsonFile: string | undefined;
}

function parse(argv: readonly string[]): MicroOptions {
  let only = SUITES.map((s) => s.name);
  let maxTimeS = 1;
  let jsonFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--only') {
      only = (argv[++i] ?? '').split(',').filter(Boolean);
      const bad = only.find((n) => !SUITES.some((s) => s.name === n));
      if (only.length === 0 || bad !== undefined)
        throw new Error(`--only: unknown suite ${bad ?? '(none)'}`);
    } else if (arg === '--max-time') {
      maxTimeS = Number(argv[++i]);
      if (!(maxTimeS > 0 && maxTimeS <= 60))
        throw new Error('--max-time: expected seconds in (0, 60]');
    } else if (arg === '--json') {
      jsonFile = argv[++i];
      if (!jsonFile) throw new Error('--json: expected a file name');
    } else {
      throw new Error(`unknown option ${arg}`);
    }
  }
  return { only, maxTimeS, jsonFile };
}

/** Runs the micro-benchmarks; resolves the process exit code (2 on usage, 1 on a failed check). */
export function runMicro(argv: string[]): Promise<number> {
  // benchmark.js runs synchronously here; the promise keeps the CLI's calling convention.
  return Promise.resolve().then(() => runMicroSync(argv));
}

function runMicroSync(argv: string[]): number {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${MICRO_USAGE}\n`);
    return 0;
  }
  let opts: MicroOptions;
  try {
    opts = parse(argv);
  } catch (err) {
    process.stderr.write(`wireguard-ts bench micro: ${(err as Error).message}\n${MICRO_USAGE}\n`);
    return 2;
  }
  const log = (line: string): void => void process.stdout.write(`${line}\n`);
  log(
    `micro-benchmarks: ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), node ${process.version}, ~${opts.maxTimeS} s per case`,
  );
  const results: MicroResult[] = [];
  for (const suite of SUITES.filter((s) => opts.only.includes(s.name))) {
    try {
      results.push(...runSuite(suite, opts.maxTimeS, log));
    } catch (err) {
      process.stderr.write(`wireguard-ts bench micro: ${(err as Error).message}\n`);
      return 1;
    }
  }
  if (opts.jsonFile) {
    mkdirSync(dirname(opts.jsonFile), { recursive: true });
    const doc = {
      startedAt: new Date().toISOString(),
      host: { cpus: cpus().length, kernel: release(), node: process.version },
      results,
    };
    writeFileSync(opts.jsonFile, JSON.stringify(doc, null, 2) + '\n');
  }
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runMicro(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`wireguard-ts bench micro: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
