// The project's documents speak of the project, dated by day and commit, never by the work
// periods it was built in ("session 3", "this session"). WireGuard's own sessions (session keys,
// the current session, an active session) are the protocol's and must not be flagged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const SCANNED = ['README.md', 'CHANGELOG.md', 'docs', 'deploy', 'bench', 'src', 'scripts'];

const WORK_PERIOD = [
  /\bsessions?\s+\d+\b/i, // "session 3", "Sessions 2 and 3"
  /\b(?:this|previous|next|prior|earlier|later)\s+session\b/i,
  /\bwork(?:ing)?[\s-]+sessions?\b/i,
];

export function workPeriodPhrase(line: string): string | undefined {
  for (const re of WORK_PERIOD) {
    const m = re.exec(line);
    if (m) return m[0];
  }
  return undefined;
}

function filesUnder(path: string): string[] {
  const abs = join(root, path);
  let st;
  try {
    st = statSync(abs);
  } catch {
    return []; // CHANGELOG.md may not exist on every branch
  }
  if (!st.isDirectory()) return [abs];
  return readdirSync(abs).flatMap((n) => filesUnder(join(path, n)));
}

test('no document, comment or message names a work period', () => {
  const hits: string[] = [];
  for (const file of SCANNED.flatMap(filesUnder)) {
    const bytes = readFileSync(file);
    if (bytes.includes(0)) continue; // binary
    bytes
      .toString('utf8')
      .split('\n')
      .forEach((line, i) => {
        const phrase = workPeriodPhrase(line);
        if (phrase) hits.push(`${relative(root, file)}:${i + 1}: "${phrase}" in: ${line.trim()}`);
      });
  }
  assert.deepEqual(hits, [], `say the day and commit instead:\n${hits.join('\n')}`);
});

test('work periods are found, WireGuard sessions are not', () => {
  for (const s of [
    'the session 3 soak',
    'before this session',
    'Session 4 (2026-11-26)',
    'as the previous session found',
    'left for the next session',
    'Sessions 2 and 3 saw a drift',
    'measured in a later work session',
  ]) {
    assert.ok(workPeriodPhrase(s), s);
  }
  for (const s of [
    'session keys are zeroed',
    'the session expires after REJECT_AFTER_TIME',
    'keeps an active session',
    "the session's counter ran out",
    'sends with the current session',
    'sessions zeroed after 3 x REJECT_AFTER_TIME',
  ]) {
    assert.equal(workPeriodPhrase(s), undefined, s);
  }
});
