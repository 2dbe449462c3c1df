// The native share of `npm run fuzz`: libFuzzer harnesses (test/fuzz/native/*.c) over the pure C
// functions of the addon (gso.c, gro.c, aead-slab.c), built with clang and AddressSanitizer +
// UBSan, each run for a time budget from the seed corpus in the repo. Binaries and the working
// corpus live in .fuzz (not committed, and not build/, which every node-gyp rebuild deletes); a
// crash leaves its input there and fails the run.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, from dist/test/fuzz or test/fuzz. */
const ROOT = fileURLToPath(new URL('../../..', import.meta.url)).replace(/\/dist\/?$/, '');
const NATIVE = join(ROOT, 'src/tun/native');
const HARNESSES_DIR = join(ROOT, 'test/fuzz/native');
const OUT = join(ROOT, '.fuzz');

/** Each harness and the addon files it links (none of them needs Node's headers). */
export const HARNESSES: Readonly<Record<string, readonly string[]>> = {
  'gso-split': ['gso.c'],
  'tcp-coalesce': ['gso.c'],
  'aead-slab': ['aead-slab.c'],
  'udp-gro': ['gro.c'],
};

export interface NativeFuzzReport {
  harness: string;
  seconds: number;
  executions: number;
  /** libFuzzer's final `cov:` (edges) and `ft:` (features). */
  cov: number;
  ft: number;
  corpus: number;
  crashes: number;
  /** The crash input and libFuzzer's last lines, when it failed. */
  failure?: string;
}

/** Why the native harnesses cannot run here, or null when clang with libFuzzer is available. */
export function nativeFuzzUnavailable(): string | null {
  const v = spawnSync('clang', ['--version'], { encoding: 'utf8' });
  if (v.error || v.status !== 0) return 'clang is not installed (scripts/setup.sh installs it)';
  const probe = spawnSync('clang', ['-fsanitize=fuzzer', '-x', 'c', '-', '-o', '/dev/null'], {
    input: 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n',
    encoding: 'utf8',
  });
  if (probe.status !== 0)
    return `clang cannot link libFuzzer: ${probe.stderr.trim().split('\n')[0]}`;
  return null;
}

/** Builds one harness into .fuzz; returns the binary's path (throws with clang's output). */
export function buildHarness(name: string): string {
  const sources = HARNESSES[name];
  if (!sources) throw new Error(`no native harness ${name}`);
  mkdirSync(OUT, { recursive: true });
  const bin = join(OUT, name);
  const r = spawnSync(
    'clang',
    [
      '-g',
      '-O1',
      '-std=gnu11',
      '-Wall',
      '-Wextra',
      '-Werror',
      '-fsanitize=fuzzer,address,undefined',
      '-fno-sanitize-recover=undefined',
      `-I${NATIVE}`,
      join(HARNESSES_DIR, `${name}.c`),
      ...sources.map((s) => join(NATIVE, s)),
      '-o',
      bin,
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`building ${name} failed:\n${r.stderr}`);
  return bin;
}

/** The last value of `key: N` in libFuzzer's output (its status lines repeat them). */
function lastNumber(text: string, key: string): number {
  const all = [...text.matchAll(new RegExp(`${key}:? (\\d+)`, 'g'))];
  return all.length > 0 ? Number(all[all.length - 1]![1]) : 0;
}

/**
 * Runs a built harness for `seconds` from the repo's seeds and the working corpus; `nice` lowers
 * its priority (the long runs share the machine). Resolves with libFuzzer's final figures.
 */
export function runHarness(name: string, seconds: number, nice = 0): Promise<NativeFuzzReport> {
  const bin = join(OUT, name);
  const corpus = join(OUT, 'corpus', name);
  const artifacts = join(OUT, 'artifacts', name);
  mkdirSync(corpus, { recursive: true });
  mkdirSync(artifacts, { recursive: true });
  const seeds = join(HARNESSES_DIR, 'seeds', name);
  if (existsSync(seeds)) cpSync(seeds, corpus, { recursive: true });
  const args = [
    `-max_total_time=${seconds}`,
    '-print_final_stats=1',
    '-max_len=70000',
    '-rss_limit_mb=2048',
    '-timeout=10',
    `-artifact_prefix=${artifacts}/`,
    corpus,
  ];
  const cmd = nice > 0 ? 'nice' : bin;
  const argv = nice > 0 ? ['-n', String(nice), bin, ...args] : args;
  return new Promise((resolve, reject) => {
    // A smaller quarantine keeps the harnesses that allocate per-input slabs well under the limit.
    const env = { ...process.env, ASAN_OPTIONS: 'quarantine_size_mb=32:detect_leaks=1' };
    const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'], env });
    let tail = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      tail = (tail + d).slice(-20_000);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      mkdirSync(artifacts, { recursive: true });
      const crashes = readdirSync(artifacts).filter((f) => /^(crash|leak|timeout|oom)-/.test(f));
      const failed = code !== 0 || crashes.length > 0;
      const report: NativeFuzzReport = {
        harness: name,
        seconds,
        executions: lastNumber(tail, 'stat::number_of_executed_units'),
        cov: lastNumber(tail, 'cov'),
        ft: lastNumber(tail, 'ft'),
        corpus: existsSync(corpus) ? readdirSync(corpus).length : 0,
        crashes: failed ? Math.max(1, crashes.length) : 0,
      };
      if (failed) {
        report.failure = `exit ${code}, artifacts ${crashes.map((f) => join(artifacts, f)).join(' ')}\n${tail.slice(-4000)}`;
      }
      resolve(report);
    });
  });
}

/** Builds every harness, then runs them side by side for `seconds` each. */
export async function runNativeFuzz(seconds: number, nice = 0): Promise<NativeFuzzReport[]> {
  const names = Object.keys(HARNESSES);
  for (const n of names) buildHarness(n);
  return Promise.all(names.map((n) => runHarness(n, seconds, nice)));
}

export function formatNativeReport(r: NativeFuzzReport): string {
  return (
    `${r.harness}: ${r.executions} executions in ${r.seconds} s, cov ${r.cov} ft ${r.ft}, ` +
    `corpus ${r.corpus}, crashes ${r.crashes}`
  );
}
