/**
 * `bench --wireguard-go PATH` (and WG_TS_BENCH_WIREGUARD_GO): which wireguard-go build the go and
 * mixed cases run, the go-debian case beside it, usage errors that name the option (exit 2), and
 * as root a short real run with Debian's binary given as the "other" path, whose report and JSON
 * must record the versions of both builds. Speeds are never asserted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CASE_NAMES,
  DEBIAN_WIREGUARD_GO,
  WIREGUARD_GO_ENV,
  parseOptions,
} from '../../bench/options.js';
import { formatBuilds } from '../../bench/report.js';
import type { BenchReport } from '../../bench/results.js';

const MAIN_JS = fileURLToPath(new URL('../../bench/main.js', import.meta.url));
const NOW = new Date('2026-12-03T04:00:00Z');
/** Any executable file serves the parser: it checks existence and the execute bit only. */
const SOME_EXE = process.execPath;
const SCRATCH = mkdtempSync(join(tmpdir(), 'wgtb-opts-'));
process.on('exit', () => rmSync(SCRATCH, { recursive: true, force: true }));

function scratchFile(name: string, text: string, mode: number): string {
  const path = join(SCRATCH, name);
  writeFileSync(path, text);
  chmodSync(path, mode);
  return path;
}
/** Not executable: mode 0644. */
const PLAIN_FILE = scratchFile('plain', 'not a program\n', 0o644);
/** Executable, but not a wireguard-go: `--version` exits 1. */
const NOT_WG = scratchFile('not-wg', '#!/bin/sh\nexit 1\n', 0o755);

test('--wireguard-go: flag, env, flag over env, and the go-debian case it adds', () => {
  const none = parseOptions([], NOW, {});
  assert.equal(none.wireguardGo, undefined);
  assert.deepEqual(none.only, ['bare', 'go', 'ts', 'mixed'], 'no go-debian without a path');

  const flag = parseOptions(['--wireguard-go', SOME_EXE], NOW, {});
  assert.equal(flag.wireguardGo, SOME_EXE);
  assert.deepEqual(flag.only, [...CASE_NAMES], 'all five cases');
  assert.equal(parseOptions([`--wireguard-go=${SOME_EXE}`], NOW, {}).wireguardGo, SOME_EXE);

  const env = parseOptions([], NOW, { [WIREGUARD_GO_ENV]: SOME_EXE });
  assert.equal(env.wireguardGo, SOME_EXE);
  assert.equal(parseOptions([], NOW, { [WIREGUARD_GO_ENV]: '' }).wireguardGo, undefined);
  // The flag wins, so a bad env value is never looked at.
  const both = parseOptions(['--wireguard-go', SOME_EXE], NOW, { [WIREGUARD_GO_ENV]: '/nope' });
  assert.equal(both.wireguardGo, SOME_EXE);

  const only = parseOptions(['--only', 'go-debian,ts,go', '--wireguard-go', SOME_EXE], NOW, {});
  assert.deepEqual(only.only, ['go', 'go-debian', 'ts'], 'canonical order');
});

test('--wireguard-go: a bad path is a usage error naming the option or the variable', () => {
  for (const [argv, env, field, why] of [
    [['--wireguard-go', '/nonexistent/wireguard-go'], {}, '--wireguard-go', /no such file/],
    [['--wireguard-go', PLAIN_FILE], {}, '--wireguard-go', /not executable/],
    [['--wireguard-go', '/usr/bin'], {}, '--wireguard-go', /not a file/],
    [['--wireguard-go'], {}, '--wireguard-go', /expected a path/],
    [[], { [WIREGUARD_GO_ENV]: '/nonexistent/wg' }, WIREGUARD_GO_ENV, /no such file/],
    [['--only', 'go-debian'], {}, '--only', /needs --wireguard-go/],
  ] as const) {
    assert.throws(
      () => parseOptions(argv, NOW, env),
      (e: Error & { field?: string }) => e.field === field && why.test(e.message),
      argv.join(' ') || JSON.stringify(env),
    );
  }
});

test('the report names the build of every case', () => {
  const report = {
    versions: {
      'wireguard-ts': '0.9.0',
      'wireguard-go': 'wireguard-go v0.0.20250522',
      'wireguard-go-debian': 'wireguard-go v0.0.20220316',
      iperf3: 'iperf 3.12',
    },
    options: { wireguardGo: '/opt/wggo/wireguard-go' },
  } as unknown as BenchReport;
  const text = formatBuilds(report);
  assert.match(text, /go and mixed: wireguard-go v0\.0\.20250522 \(\/opt\/wggo\/wireguard-go\)/);
  assert.match(text, /go-debian: wireguard-go v0\.0\.20220316 \(\/usr\/bin\/wireguard-go\)/);
  const plain = formatBuilds({
    ...report,
    versions: { 'wireguard-go': 'wireguard-go v0.0.20220316' },
    options: { wireguardGo: null },
  } as unknown as BenchReport);
  assert.match(plain, /wireguard-go on PATH/);
  assert.doesNotMatch(plain, /go-debian/);
});

function runMain(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN_JS, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 200_000);
    child.on('exit', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr });
    });
  });
}

test('the CLI exits 2 with one line naming the option for a bad path or a non-wireguard-go', async () => {
  const missing = await runMain(['--wireguard-go', '/nonexistent/wireguard-go']);
  assert.equal(missing.code, 2);
  assert.match(
    missing.stderr,
    /^wireguard-ts bench: --wireguard-go: \/nonexistent\/wireguard-go: no such file$/m,
  );
  // Executable, but `--version` fails: no daemon gets started with it.
  const notWg = await runMain([], { ...process.env, [WIREGUARD_GO_ENV]: NOT_WG });
  assert.equal(notWg.code, 2, notWg.stderr);
  assert.match(notWg.stderr, new RegExp(`${WIREGUARD_GO_ENV}: .*--version failed`));
});

const rootSkip = process.getuid?.() !== 0 ? 'needs root (network namespaces, TUN)' : undefined;
const debianSkip =
  spawnSync(DEBIAN_WIREGUARD_GO, ['--version']).status === 0
    ? undefined
    : `${DEBIAN_WIREGUARD_GO} not installed`;

test(
  'bench --wireguard-go /usr/bin/wireguard-go: go and go-debian run, versions recorded',
  { skip: rootSkip ?? debianSkip, timeout: 240_000 },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'wgtb-gobuild-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const json = join(dir, 'r.json');
    const r = await runMain([
      '--wireguard-go',
      DEBIAN_WIREGUARD_GO,
      '--only',
      'go,go-debian',
      '--duration',
      '1',
      '--repeat',
      '1',
      '--no-proof',
      '--json',
      json,
      '--svg',
      join(dir, 'r.svg'),
    ]);
    for (const line of r.stdout.split('\n')) t.diagnostic(line);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(readFileSync(json, 'utf8')) as BenchReport;
    const version = spawnSync(DEBIAN_WIREGUARD_GO, ['--version'], { encoding: 'utf8' })
      .stdout.split('\n')[0]!
      .trim();
    assert.equal(report.options.wireguardGo, DEBIAN_WIREGUARD_GO);
    assert.equal(report.versions['wireguard-go'], version);
    assert.equal(report.versions['wireguard-go-debian'], version);
    assert.deepEqual(
      report.cases.map((c) => [c.name, c.status]),
      [
        ['go', 'ok'],
        ['go-debian', 'ok'],
      ],
    );
    for (const c of report.cases) {
      assert.equal(c.summary!.daemons.length, 2, c.name);
      assert.ok(c.summary!.tcp1Gbps > 0, c.name);
    }
    assert.match(r.stdout, /wireguard-go for go-debian: /);
    assert.match(r.stdout, /Debian wireguard-go pair\s+TCP1 [\d.]+x/, 'ratio against go');
  },
);
