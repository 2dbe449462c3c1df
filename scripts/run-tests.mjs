#!/usr/bin/env node
// Runs every compiled test file with node's test runner, one file at a time: integration tests
// share the machine's network state (namespaces, /var/run/wireguard), and unit files are fast.
// Usage: node scripts/run-tests.mjs [substring ...]  (only files whose path contains one)
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}

const filters = process.argv.slice(2);
let files = walk('dist/test');
if (filters.length > 0) files = files.filter((f) => filters.some((s) => f.includes(s)));
// Unit tests first: they fail fast and need no root.
files.sort((a, b) => Number(a.includes('/integration/')) - Number(b.includes('/integration/')));
// A hung test fails after 5 minutes instead of stalling CI.
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=300000', ...files], {
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
