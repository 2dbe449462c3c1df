// `npm run fuzz`: every fuzz target for a million cases (or --cases N), from --seed S (default:
// random, printed so a failure replays), in chunks so progress shows; --only a,b picks targets;
// --json FILE writes the reports. Exits 1 at the first failing target, with its counterexample.
// Then the native share: each libFuzzer harness for --native SECONDS (default 10; 0 skips it;
// skipped with the reason when clang is missing). --native-long SECONDS runs only the native
// harnesses, side by side at low priority (nice 10), for that long each.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  formatNativeReport,
  nativeFuzzUnavailable,
  runNativeFuzz,
  type NativeFuzzReport,
} from './native.js';
import { TARGETS, type FuzzReport } from './targets.js';

const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: '1000000' },
    seed: { type: 'string' },
    only: { type: 'string' },
    chunk: { type: 'string', default: '100000' },
    json: { type: 'string' },
    native: { type: 'string', default: '10' },
    'native-long': { type: 'string' },
  },
});

/** Runs the native harnesses; exits 1 when one crashed (after printing its input and stack). */
async function nativeShare(seconds: number, nice: number): Promise<NativeFuzzReport[]> {
  const why = nativeFuzzUnavailable();
  if (why) {
    process.stdout.write(`native fuzz: skipped, ${why}\n`);
    return [];
  }
  process.stdout.write(`native fuzz: ${seconds} s per harness\n`);
  const reports = await runNativeFuzz(seconds, nice);
  for (const r of reports) {
    process.stdout.write(`${formatNativeReport(r)}\n`);
    if (r.failure) process.stdout.write(`FAIL ${r.harness}: ${r.failure}\n`);
  }
  return reports;
}

if (values['native-long'] !== undefined) {
  const reports = await nativeShare(Number(values['native-long']), 10);
  if (values.json) writeFileSync(values.json, `${JSON.stringify({ native: reports }, null, 2)}\n`);
  process.exit(reports.length === 0 || reports.some((r) => r.crashes > 0) ? 1 : 0);
}
const cases = Number(values.cases);
const chunk = Math.max(1, Number(values.chunk));
const seed = values.seed !== undefined ? Number(values.seed) : (Date.now() % 2 ** 31) | 0;
const only = values.only?.split(',');
const targets = TARGETS.filter((t) => !only || only.includes(t.name));
process.stdout.write(
  `fuzz: seed ${seed}, ${cases} cases per target, ${targets.map((t) => t.name).join(' ')}\n`,
);

const reports: FuzzReport[] = [];
let failed = false;
for (const t of targets) {
  const tally: Record<string, number> = {};
  let done = 0;
  let ms = 0;
  try {
    for (let i = 0; done < cases; i++) {
      const n = Math.min(chunk, cases - done);
      const r = t.run(n, seed + i);
      done += n;
      ms += r.ms;
      for (const [k, v] of Object.entries(r.tally)) tally[k] = (tally[k] ?? 0) + v;
      process.stdout.write(`  ${t.name}: ${done}/${cases} (${Math.round((done / ms) * 1000)}/s)\n`);
    }
  } catch (err) {
    process.stdout.write(
      `FAIL ${t.name} (seed ${seed}, after ${done} cases):\n${(err as Error).message}\n`,
    );
    failed = true;
    break;
  }
  const report = { target: t.name, cases: done, ms, tally };
  reports.push(report);
  process.stdout.write(
    `${t.name}: ${done} cases in ${(ms / 1000).toFixed(1)} s ${JSON.stringify(tally)}\n`,
  );
}
const nativeSeconds = Number(values.native);
const native = !failed && nativeSeconds > 0 ? await nativeShare(nativeSeconds, 0) : [];
if (native.some((r) => r.crashes > 0)) failed = true;
if (values.json) {
  writeFileSync(values.json, `${JSON.stringify({ seed, reports, native }, null, 2)}\n`);
}
process.exit(failed ? 1 : 0);
