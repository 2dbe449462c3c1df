// `npm run fuzz`: every fuzz target for a million cases (or --cases N), from --seed S (default:
// random, printed so a failure replays), in chunks so progress shows; --only a,b picks targets;
// --json FILE writes the reports. Exits 1 at the first failing target, with its counterexample.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { TARGETS, type FuzzReport } from './targets.js';

const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: '1000000' },
    seed: { type: 'string' },
    only: { type: 'string' },
    chunk: { type: 'string', default: '100000' },
    json: { type: 'string' },
  },
});
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
if (values.json) writeFileSync(values.json, `${JSON.stringify({ seed, reports }, null, 2)}\n`);
process.exit(failed ? 1 : 0);
