/**
 * Runs micro-benchmark cases with benchmark.js and formats the results. A suite checks its
 * outputs before anything is timed (a fast wrong answer is not a result), then each case runs
 * for about `maxTimeS` seconds: short, because the machine is shared.
 */
import Benchmark from 'benchmark';

export interface MicroCase {
  readonly name: string;
  /** One operation; its return value is kept so the JIT cannot drop the work. */
  readonly fn: () => unknown;
  /** Bytes processed per operation, for a MB/s column. */
  readonly bytes?: number;
}

export interface MicroSuite {
  readonly name: string;
  /** Throws when the code under test gives a wrong answer. */
  check(): void;
  cases(): MicroCase[];
  /** Lines printed after the cases (e.g. ratios between them). */
  summarize?(results: readonly MicroResult[]): string[];
  /** Releases what cases() set up (e.g. worker threads). */
  dispose?(): void;
}

export interface MicroResult {
  readonly suite: string;
  readonly name: string;
  readonly opsPerSec: number;
  /** Relative margin of error, percent (95% confidence). */
  readonly rmePercent: number;
  readonly samples: number;
  readonly mbPerSec: number | null;
  /** CPU time of the whole process (all threads) over wall time while the case ran. */
  readonly cpuCores: number;
}

/** Keeps results observable to the optimizer. */
export let sink: unknown;

export function runSuite(
  suite: MicroSuite,
  maxTimeS: number,
  log: (line: string) => void,
): MicroResult[] {
  suite.check();
  const results: MicroResult[] = [];
  for (const c of suite.cases()) {
    const fn = c.fn;
    const bench = new Benchmark(
      c.name,
      () => {
        sink = fn();
      },
      { maxTime: maxTimeS, minSamples: 5, initCount: 1 },
    );
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    bench.run({ async: false });
    const cpu = process.cpuUsage(cpu0);
    const wallUs = (performance.now() - wall0) * 1000;
    if (bench.error) throw new Error(`${suite.name} ${c.name}: ${String(bench.error)}`);
    const r: MicroResult = {
      suite: suite.name,
      name: c.name,
      opsPerSec: bench.hz,
      rmePercent: bench.stats.rme,
      samples: bench.stats.sample.length,
      mbPerSec: c.bytes === undefined ? null : (bench.hz * c.bytes) / 1e6,
      cpuCores: (cpu.user + cpu.system) / wallUs,
    };
    log(`  ${formatRow(r)}`);
    results.push(r);
  }
  for (const line of suite.summarize?.(results) ?? []) log(`  ${line}`);
  suite.dispose?.();
  return results;
}

function formatOps(hz: number): string {
  return hz >= 1e6
    ? `${(hz / 1e6).toFixed(2)}M`
    : hz >= 1e3
      ? `${(hz / 1e3).toFixed(1)}k`
      : hz.toFixed(0);
}

export function formatRow(r: MicroResult): string {
  const mb = r.mbPerSec === null ? '' : `  ${r.mbPerSec.toFixed(0).padStart(6)} MB/s`;
  return `${`${r.suite}: ${r.name}`.padEnd(44)} ${formatOps(r.opsPerSec).padStart(8)} ops/s ±${r.rmePercent.toFixed(1)}%${mb}`;
}
