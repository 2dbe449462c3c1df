// Every command's --help and the docs list the same flags. The docs side is the options tables
// marked `<!-- options: wireguard-ts CMD -->` in README.md and docs/*.md (the first cell of each
// row holds the flags); -h/--help is left out on both sides: every command takes it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const cli = `${root}dist/src/cli.js`;

/** Commands whose help must agree with the docs, as typed after `wireguard-ts`. */
const COMMANDS = ['', 'up', 'down', 'genkey', 'pubkey', 'genpsk', 'k8s', 'bench', 'bench micro'];
const MARKER = /^<!-- options: wireguard-ts(?: ([a-z0-9 -]+?))? -->$/;
const IMPLICIT = new Set(['-h', '--help']);

/** Flags in running text: `-f`, `--ping-interval`, not the dash inside `wireguard-ts`. */
export function flagsIn(text: string): Set<string> {
  const flags = new Set<string>();
  for (const m of text.matchAll(/(?<![\w-])(--?[a-zA-Z][\w-]*)/g)) {
    if (!IMPLICIT.has(m[1]!)) flags.add(m[1]!);
  }
  return flags;
}

interface DocTable {
  readonly command: string;
  readonly file: string;
  readonly flags: Set<string>;
}

/** The marked options tables of one markdown file. */
export function optionTables(file: string, text: string): DocTable[] {
  const lines = text.split('\n');
  const tables: DocTable[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = MARKER.exec(lines[i]!.trim());
    if (!m) continue;
    let j = i + 1;
    while (j < lines.length && lines[j]!.trim() === '') j++;
    const flags = new Set<string>();
    // Skip the header row and the separator row, then read rows until the table ends.
    for (j += 2; j < lines.length && lines[j]!.startsWith('|'); j++) {
      const firstCell = lines[j]!.split(/(?<!\\)\|/)[1] ?? '';
      for (const f of flagsIn(firstCell)) flags.add(f);
    }
    tables.push({ command: m[1] ?? '', file, flags });
  }
  return tables;
}

function docFiles(): string[] {
  const docs = readdirSync(`${root}docs`)
    .filter((n) => n.endsWith('.md'))
    .map((n) => `docs/${n}`);
  return ['README.md', ...docs.sort()];
}

function helpOf(command: string): string {
  const args = command === '' ? ['--help'] : [...command.split(' '), '--help'];
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 30_000 });
  const shown = `wireguard-ts ${args.join(' ')}`;
  assert.equal(r.status, 0, `\`${shown}\` exited ${r.status}: ${r.stderr}`);
  assert.ok(r.stdout.trim() !== '', `\`${shown}\` printed nothing on stdout`);
  return r.stdout;
}

const tables = docFiles().flatMap((f) => optionTables(f, readFileSync(`${root}${f}`, 'utf8')));

for (const command of new Set([...COMMANDS, ...tables.map((t) => t.command)])) {
  const name = `wireguard-ts ${command}`.trim();
  test(`${name} --help and the docs list the same flags`, () => {
    const helpFlags = flagsIn(helpOf(command));
    const mine = tables.filter((t) => t.command === command);
    const where = mine.map((t) => t.file).join(', ');
    if (mine.length === 0) {
      assert.equal(
        helpFlags.size,
        0,
        `\`${name} --help\` lists ${[...helpFlags].join(' ')}, but no options table in README.md ` +
          `or docs/*.md is marked <!-- options: ${name} -->: add one`,
      );
      return;
    }
    const docFlags = new Set(mine.flatMap((t) => [...t.flags]));
    for (const f of helpFlags) {
      assert.ok(
        docFlags.has(f),
        `${f} is in \`${name} --help\` but not in its options table (${where}): add a row`,
      );
    }
    for (const f of docFlags) {
      assert.ok(
        helpFlags.has(f),
        `${f} is in the options table of ${name} (${where}) but not in \`${name} --help\``,
      );
    }
  });
}

test('the flag and table parsers read what they should', () => {
  assert.deepEqual(
    [...flagsIn('wireguard-ts [-f/--foreground] x --ping-interval MS, uplink - 80, --help')],
    ['-f', '--foreground', '--ping-interval'],
  );
  const md = [
    '<!-- options: wireguard-ts bench micro -->',
    '',
    '| flag | meaning |',
    '| --- | --- |',
    '| `--only LIST` | with --not-a-flag-here in the second cell |',
    '| `--mtu auto\\|N`, `--table N` | |',
    '',
    '| `--outside` | |',
  ].join('\n');
  const [t] = optionTables('x.md', md);
  assert.equal(t?.command, 'bench micro');
  assert.deepEqual([...t.flags], ['--only', '--mtu', '--table']);
});
