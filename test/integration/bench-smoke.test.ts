/**
 * The benchmark harness: its pure parts (options, iperf3/ping/proc parsing, statistics, report,
 * SVG) without root, then as root a short real run (`bench --duration 2 --repeat 1`) that must
 * produce a table, JSON and SVG and leave nothing behind, and an interrupted run that must clean
 * up too. Speeds are never asserted: they only show the harness measured something.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseOptions } from '../../bench/options.js';
import { parseTcpReport, parseUdpReport, udpArgs } from '../../bench/iperf.js';
import { parsePingTimes, pingArgs, rttCount, summarizeRtt } from '../../bench/rtt.js';
import { parseCpuSeconds, parsePeakRssMiB } from '../../bench/proc-stats.js';
import { median, medianOfFinite, percentile } from '../../bench/stats.js';
import {
  summarize,
  toJson,
  type BenchReport,
  type CaseResult,
  type RepeatResult,
} from '../../bench/results.js';
import { formatRatios, formatTable } from '../../bench/report.js';
import { renderSvg } from '../../bench/svg.js';
import { runSuite, type MicroSuite } from '../../bench/micro/harness.js';
import { aeadSuite } from '../../bench/micro/aead.bench.js';
import { handshakeSuite } from '../../bench/micro/handshake.bench.js';
import { allowedIpsSuite } from '../../bench/micro/allowed-ips.bench.js';
import { replaySuite } from '../../bench/micro/replay.bench.js';

const MAIN_JS = fileURLToPath(new URL('../../bench/main.js', import.meta.url));
const TS_CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

test('options: defaults, every flag, and usage errors naming the option', () => {
  const d = parseOptions([], new Date('2026-11-25T19:00:00Z'), {});
  assert.equal(d.durationS, 10);
  assert.equal(d.repeat, 3);
  assert.deepEqual(d.only, ['bare', 'go', 'ts', 'mixed']);
  assert.equal(d.workers, undefined);
  assert.equal(d.mtu, 1420);
  assert.equal(d.pingIntervalMs, 10);
  assert.equal(d.cpuProfDir, undefined);
  assert.equal(d.jsonFile, 'bench-results/bench-2026-11-25T190000.json');
  assert.equal(d.svgFile, 'bench-results/bench-2026-11-25T190000.svg');
  const o = parseOptions(
    [
      '--duration',
      '2',
      '--repeat=1',
      '--only',
      'mixed,bare',
      '--workers',
      '4',
      '--mtu',
      '9000',
      '--json',
      'x.json',
      '--svg',
      'y.svg',
      '--no-proof',
      '--cpu-prof',
      'prof',
      '--ping-interval=2',
    ],
    new Date(),
    {},
  );
  assert.deepEqual(o.only, ['bare', 'mixed'], 'canonical order');
  assert.deepEqual(
    [
      o.durationS,
      o.repeat,
      o.workers,
      o.mtu,
      o.jsonFile,
      o.svgFile,
      o.skipProof,
      o.cpuProfDir,
      o.pingIntervalMs,
    ],
    [2, 1, 4, 9000, 'x.json', 'y.svg', true, 'prof', 2],
  );
  for (const [argv, field] of [
    [['--duration', '0'], '--duration'],
    [['--repeat', 'x'], '--repeat'],
    [['--only', 'bare,kernel'], '--only'],
    [['--json'], '--json'],
    [['--cpu-prof'], '--cpu-prof'],
    [['--ping-interval', '1'], '--ping-interval'],
    [['--ping-interval', '0.5'], '--ping-interval'],
    [['--frobnicate'], '--frobnicate'],
  ] as const) {
    assert.throws(
      () => parseOptions(argv),
      (e: Error & { field?: string }) => e.field === field,
      argv.join(' '),
    );
  }
});

test('iperf3 reports: receiver-side rates, retransmits, UDP loss; errors surface', () => {
  const tcp = JSON.stringify({
    end: {
      sum_sent: { bits_per_second: 2e9, retransmits: 17 },
      sum_received: { bits_per_second: 1.5e9 },
    },
  });
  assert.deepEqual(parseTcpReport(tcp), { gbps: 1.5, retransmits: 17 });
  const udp = JSON.stringify({
    end: {
      sum_sent: { bits_per_second: 4e9 },
      sum_received: { bits_per_second: 1e9, lost_percent: 75 },
    },
  });
  assert.deepEqual(parseUdpReport(udp), { gbps: 1, sentGbps: 4, lossPercent: 75 });
  assert.throws(
    () => parseTcpReport(JSON.stringify({ error: 'unable to connect to server' })),
    /unable to connect/,
  );
  assert.throws(() => parseTcpReport('iperf3: error'), /unparsable/);
  assert.throws(() => parseUdpReport(JSON.stringify({ end: {} })), /no received rate/);
  // Datagrams fill the inner MTU exactly: 20 IP + 8 UDP headers.
  assert.equal(
    udpArgs('10.0.0.2', 5, 1420)[udpArgs('10.0.0.2', 5, 1420).indexOf('-l') + 1],
    '1392',
  );
});

test('ping output, percentiles and RTT summary', () => {
  const out = [
    'PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data.',
    '64 bytes from 10.0.0.2: icmp_seq=1 ttl=64 time=0.512 ms',
    '64 bytes from 10.0.0.2: icmp_seq=2 ttl=64 time=1.20 ms',
    '64 bytes from 10.0.0.2: icmp_seq=3 ttl=64 time=0.100 ms',
    'rtt min/avg/max/mdev = 0.100/0.604/1.200/0.4 ms',
  ].join('\n');
  assert.deepEqual(parsePingTimes(out), [0.512, 1.2, 0.1]);
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 90), 10);
  assert.ok(Number.isNaN(median([])));
  assert.equal(medianOfFinite([Number.NaN, 5, 7, Number.NaN]), 6);
  const r = summarizeRtt('icmp', 5, parsePingTimes(out));
  assert.deepEqual([r.sent, r.received, r.medianMs], [5, 3, 0.512]);
  // As many probes as fit in the run at the interval, within 50..1000.
  assert.deepEqual(
    [rttCount(5, 10), rttCount(2, 10), rttCount(10, 2), rttCount(10, 1000)],
    [500, 200, 1000, 50],
  );
  assert.deepEqual(pingArgs('10.0.0.2', 7, 2).slice(0, 4), ['-n', '-i', '0.002', '-c']);
});

test('/proc parsing: CPU ticks from stat (names with spaces) and VmHWM', () => {
  const stat =
    '4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 130 0 0 20 0 3 0 100 0 0';
  assert.equal(parseCpuSeconds(stat), 3.8);
  assert.equal(parsePeakRssMiB('Name:\tx\nVmHWM:\t    2048 kB\nVmRSS:\t 1024 kB\n'), 2);
  assert.ok(Number.isNaN(parsePeakRssMiB('Name:\tx\n')));
});

function repeat(tcp1: number, cpu: number): RepeatResult {
  return {
    tcp1: { gbps: tcp1, retransmits: 10 },
    tcp4: { gbps: tcp1 * 1.5, retransmits: 0 },
    udp: { gbps: tcp1 / 2, sentGbps: 5, lossPercent: 50 },
    rtt: { method: 'icmp', sent: 10, received: 10, medianMs: 1 / tcp1, p99Ms: 2 / tcp1 },
    daemons: [
      { side: 'a', impl: 'go', cpuSeconds: cpu, peakRssMiB: 10 },
      { side: 'b', impl: 'go', cpuSeconds: cpu, peakRssMiB: 12 },
    ],
    errors: [],
  };
}

test('medians over repeats, table, ratios against wireguard-go, JSON nulls, SVG bars', () => {
  const goRepeats = [repeat(0.5, 3), repeat(0.1, 9), repeat(0.4, 4)];
  const go = summarize(goRepeats, 2);
  assert.equal(go.tcp1Gbps, 0.4);
  assert.equal(go.daemons[0]!.cpuSeconds, 4);
  // Per repeat: both daemons' CPU over (TCP1 + TCP4 + UDP) Gbit/s x 2 s; median of 2, 30, 3.33.
  assert.equal(go.cpuSecondsPerGbit.toFixed(3), '3.333');
  const failedRepeat: RepeatResult = {
    ...repeat(1, 1),
    tcp1: null,
    errors: ['TCP 1 stream: boom'],
  };
  const ts = summarize([repeat(0.8, 2), failedRepeat], 2);
  assert.equal(ts.tcp1Gbps, 0.8, 'a failed measurement does not count');
  const cases: CaseResult[] = [
    {
      name: 'bare',
      label: 'bare veth',
      status: 'ok',
      note: null,
      repeats: [],
      summary: { ...go, tcp1Gbps: 20, tcp4Gbps: 30, udpGbps: 5, daemons: [] },
    },
    {
      name: 'go',
      label: 'wireguard-go <-> wireguard-go',
      status: 'ok',
      note: null,
      repeats: goRepeats,
      summary: go,
    },
    {
      name: 'ts',
      label: 'wireguard-ts <-> wireguard-ts',
      status: 'ok',
      note: null,
      repeats: [],
      summary: ts,
    },
    {
      name: 'mixed',
      label: 'wireguard-ts <-> wireguard-go',
      status: 'skipped',
      note: 'not built',
      repeats: [],
      summary: null,
    },
  ];
  const table = formatTable(cases);
  assert.match(table, /wireguard-go <-> wireguard-go\s+0\.400/);
  assert.match(table, /skipped: not built/);
  const ratios = formatRatios(cases);
  assert.match(ratios, /wireguard-ts <-> wireguard-ts\s+TCP1 2\.00x/);
  assert.match(ratios, /bare veth\s+TCP1 50\.00x/);
  const report = { cases, proof: null } as unknown as BenchReport;
  assert.match(
    toJson({ ...report, cases: [{ ...cases[1]!, summary: { ...go, rttP99Ms: Number.NaN } }] }),
    /"rttP99Ms": null/,
  );
  const svg = renderSvg(cases, 'test <chart>');
  assert.ok(svg.startsWith('<svg') && svg.trimEnd().endsWith('</svg>'));
  assert.match(svg, /test &lt;chart&gt;/);
  assert.match(svg, /log scale/, 'bare is 50x a tunnel: the axis turns logarithmic');
  // 3 metrics x 3 cases that ran, plus 3 legend swatches and the background.
  assert.equal(svg.match(/<rect /g)?.length, 9 + 3 + 1);
  for (const label of [
    'TCP, 1 stream',
    'TCP, 4 streams',
    'UDP delivered',
    '0.400',
    '0.800',
    '20.0',
  ]) {
    assert.ok(svg.includes(`>${label}<`), label);
  }
});

test('micro-benchmarks: the output check of every suite passes; the harness refuses wrong answers', () => {
  for (const suite of [aeadSuite, handshakeSuite, allowedIpsSuite, replaySuite]) {
    assert.doesNotThrow(() => suite.check(), suite.name);
    assert.ok(suite.cases().length > 0, suite.name);
  }
  let calls = 0;
  const tiny: MicroSuite = {
    name: 'tiny',
    check() {},
    cases: () => [{ name: 'add', bytes: 10, fn: () => calls++ }],
  };
  const [r] = runSuite(tiny, 0.02, () => undefined);
  assert.ok(
    calls > 0 && r!.opsPerSec > 0 && r!.mbPerSec! > 0 && r!.samples >= 5,
    JSON.stringify(r),
  );
  const wrong: MicroSuite = {
    ...tiny,
    check: () => {
      throw new Error('wrong answer');
    },
  };
  calls = 0;
  assert.throws(() => runSuite(wrong, 0.02, () => undefined), /wrong answer/);
  assert.equal(calls, 0, 'nothing is timed after a failed check');
});

const rootSkip = process.getuid?.() !== 0 ? 'needs root (network namespaces, TUN)' : undefined;
const goSkip =
  spawnSync('wireguard-go', ['--version']).status === 0 ? undefined : 'wireguard-go not installed';

/** What a finished or killed bench run (pid) may have left: namespaces, UAPI sockets, processes. */
function leftovers(pid: number): string[] {
  const base = `wgtb${pid % 10000}-`;
  const out: string[] = [];
  const ns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  out.push(
    ...ns
      .split('\n')
      .filter((l) => l.startsWith(base))
      .map((l) => `netns ${l}`),
  );
  if (existsSync('/var/run/wireguard')) {
    out.push(
      ...readdirSync('/var/run/wireguard')
        .filter((f) => f.startsWith(base))
        .map((f) => `socket ${f}`),
    );
  }
  for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(base)) out.push(`process ${p} ${cmd}`);
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  pid: number;
}

function runMain(args: string[], onSpawn?: (pid: number) => void): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN_JS, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    onSpawn?.(child.pid!);
    const killer = setTimeout(() => child.kill('SIGKILL'), 280_000);
    child.on('exit', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr, pid: child.pid! });
    });
  });
}

test(
  'bench --duration 2 --repeat 1: table, JSON, SVG, encryption proof, nothing left behind',
  { skip: rootSkip ?? goSkip, timeout: 300_000 },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'wgtb-smoke-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const tsBuilt = existsSync(TS_CLI);
    if (!tsBuilt) t.diagnostic(`wireguard-ts cases not run: ${TS_CLI} missing`);
    const only = tsBuilt ? 'bare,go,ts,mixed' : 'bare,go';
    const json = join(dir, 'r.json');
    const svg = join(dir, 'r.svg');
    const r = await runMain([
      '--duration',
      '2',
      '--repeat',
      '1',
      '--only',
      only,
      '--json',
      json,
      '--svg',
      svg,
      '--ping-interval',
      '5',
    ]);
    for (const line of r.stdout.split('\n')) t.diagnostic(line);
    assert.deepEqual(leftovers(r.pid), [], 'the run removed everything it created');
    const report = JSON.parse(readFileSync(json, 'utf8')) as BenchReport;
    assert.equal(report.options.pingIntervalMs, 5);
    assert.match(r.stdout, /every 5 ms/);
    const byName = new Map(report.cases.map((c) => [c.name, c]));
    for (const name of ['bare', 'go'] as const) {
      const c = byName.get(name);
      assert.equal(c?.status, 'ok', `${name}: ${c?.note ?? 'missing'}\n${r.stderr}`);
      assert.equal(c.repeats.length, 1);
      assert.ok(c.summary!.tcp1Gbps > 0 && c.summary!.tcp4Gbps > 0 && c.summary!.udpGbps > 0, name);
      assert.ok(c.summary!.rttMedianMs > 0, `${name} RTT`);
    }
    const go = byName.get('go')!.summary!;
    assert.equal(go.daemons.length, 2);
    for (const d of go.daemons) assert.ok(d.cpuSeconds > 0 && d.peakRssMiB > 1, JSON.stringify(d));
    if (tsBuilt) {
      for (const name of ['ts', 'mixed'] as const) {
        const c = byName.get(name);
        assert.notEqual(c?.status, 'skipped', `${name} runs once dist/src/cli.js exists`);
        if (c?.status !== 'ok') t.diagnostic(`${name} ${c?.status}: ${c?.note}`);
      }
    }
    // The proof ran on some tunnel (ours when it works, else wireguard-go's) and passed.
    assert.ok(report.proof, `proof missing: ${report.proofNote}`);
    assert.equal(report.proof.passed, true, JSON.stringify(report.proof));
    assert.equal(report.proof.controlMarkerOnWire, true);
    assert.match(r.stdout, /Ratios against wireguard-go/);
    assert.match(r.stdout, /only WireGuard UDP crossed the wire/);
    const chart = readFileSync(svg, 'utf8');
    assert.ok(chart.startsWith('<svg') && chart.includes('wireguard-go &lt;-&gt; wireguard-go'));
    const failed = report.cases.filter((c) => c.status === 'failed');
    assert.equal(r.code, failed.length > 0 ? 1 : 0, r.stderr);
  },
);

test(
  'an interrupted bench removes its namespaces, daemons and sockets',
  { skip: rootSkip ?? goSkip, timeout: 120_000 },
  async () => {
    let sent = false;
    let poll: NodeJS.Timeout | undefined;
    const args = [
      '--duration',
      '30',
      '--repeat',
      '1',
      '--only',
      'go',
      '--no-proof',
      '--json',
      '/dev/null',
      '--svg',
      '/dev/null',
    ];
    const r = await runMain(args, (pid) => {
      // Interrupt during the first iperf3 run, once both daemons serve their UAPI sockets.
      poll = setInterval(() => {
        const socks = existsSync('/var/run/wireguard') ? readdirSync('/var/run/wireguard') : [];
        if (socks.filter((f) => f.startsWith(`wgtb${pid % 10000}-`)).length < 2) return;
        clearInterval(poll);
        sent = true;
        setTimeout(() => process.kill(pid, 'SIGINT'), 3000);
      }, 100);
    });
    clearInterval(poll);
    assert.ok(sent, `never reached the running state: ${r.stderr}`);
    assert.equal(r.code, 130, r.stderr);
    assert.deepEqual(leftovers(r.pid), []);
  },
);
