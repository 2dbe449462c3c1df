// deploy/Dockerfile (for Docker users, not built here) stays equivalent to the image CI builds
// (scripts/image.sh + scripts/image.Containerfile): the same Debian packages cut down by the same
// script, the same dependencies pruned and minified the same way, the same entrypoint,
// environment, user and working directory, and the same paths the DaemonSet runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');

/** Instructions of the last stage, continuation lines joined. */
function finalStage(file: string): Map<string, string[]> {
  const text = read(file).replace(/\\\n/g, ' ');
  const lines = text.split('\n').filter((l) => l.trim() && !l.startsWith('#'));
  const last = lines.map((l) => l.startsWith('FROM ')).lastIndexOf(true);
  const out = new Map<string, string[]>();
  for (const l of lines.slice(last)) {
    const [op, ...rest] = l.trim().split(/\s+/);
    out.set(op!, [...(out.get(op!) ?? []), rest.join(' ')]);
  }
  return out;
}

const containerfile = finalStage('scripts/image.Containerfile');
const dockerfile = finalStage('deploy/Dockerfile');

test('the same entrypoint, environment, user and working directory', () => {
  for (const op of ['ENTRYPOINT', 'ENV', 'USER', 'WORKDIR']) {
    assert.deepEqual(dockerfile.get(op), containerfile.get(op), op);
  }
  assert.deepEqual(containerfile.get('ENTRYPOINT'), ['["/app/bin/wireguard-ts"]']);
});

test('the same Debian packages, cut down by the same script', () => {
  const script = /^packages=\(([^)]*)\)/m.exec(read('scripts/image.sh'));
  const docker = read('deploy/Dockerfile').replace(/\\\n/g, ' ');
  const apt = /apt-get install -y --no-install-recommends ([^&]*)&&/g;
  // The rootfs stage's list; it adds binutils, whose readelf image-rootfs.sh runs there (the
  // host's runs for scripts/image.sh).
  const lists = [...docker.matchAll(apt)].map((m) => m[1]!.trim().split(/\s+/).sort());
  const rootfs = lists.find((l) => l.includes('iproute2'))!;
  const list = (s: string | undefined) => s!.trim().split(/\s+/).sort();
  assert.deepEqual(
    rootfs.filter((p) => p !== 'binutils'),
    list(script?.[1]),
  );
  assert.match(docker, /bash \/image-rootfs\.sh \/ \/out \/node/);
  assert.match(read('scripts/image.sh'), /scripts\/image-rootfs\.sh" "\$work\/full" "\$work\/min"/);
});

test('the same dependencies: pruned and minified alike', () => {
  const docker = read('deploy/Dockerfile');
  const script = read('scripts/image.sh');
  const prune = /rm -rf (benchmark [^)]*)\)/;
  assert.equal(prune.exec(docker)?.[1], prune.exec(script)?.[1]);
  assert.match(docker, /node \/src\/scripts\/image-minify\.mjs \/deps\/node_modules/);
  assert.match(script, /node "\$root\/scripts\/image-minify\.mjs" "\$ctx\/deps\/node_modules"/);
});

test('the same paths: node and the CLI on PATH, the app under /app', () => {
  const copies = (m: Map<string, string[]>) =>
    [...(m.get('COPY') ?? []), ...(m.get('ADD') ?? [])].map((c) => c.split(' ').at(-1)).sort();
  assert.deepEqual(copies(dockerfile), ['/', '/app/', '/app/node_modules', '/usr/local/']);
  assert.deepEqual(copies(containerfile), ['/', '/app/', '/app/node_modules', '/usr/local/']);
  const script = read('scripts/image.sh');
  assert.match(script, /ln -s \/app\/bin\/wireguard-ts "\$ctx\/local\/bin\/wireguard-ts"/);
  assert.match(script, /cp "\$node_pkg\/bin\/node" "\$ctx\/local\/bin\/node"/);
  const docker = read('deploy/Dockerfile');
  assert.match(docker, /ln -s \/app\/bin\/wireguard-ts \/local\/bin\/wireguard-ts/);
  assert.match(docker, /cp \/usr\/local\/bin\/node \/local\/bin\/node/);
  // The DaemonSet's daemon container runs the entrypoint's path itself.
  assert.match(read('deploy/daemonset.yaml'), /exec \/app\/bin\/wireguard-ts --foreground wg-ts/);
});

test('npm run image -- --help and docs/install.md list the same options', () => {
  const help = spawnSync('bash', [join(ROOT, 'scripts/image.sh'), '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  const flags = (text: string) =>
    new Set([...text.matchAll(/(?<![\w-])(--[a-z][\w-]*)/g)].map((m) => m[1]!));
  const doc = read('docs/install.md');
  const table = doc.slice(doc.indexOf('<!-- options: npm run image -->')).split('\n\n')[1]!;
  const firstCells = table
    .split('\n')
    .slice(2)
    .map((row) => row.split(/(?<!\\)\|/)[1] ?? '')
    .join(' ');
  assert.deepEqual([...flags(firstCells)].sort(), [...flags(help.stdout)].sort());
  assert.ok(flags(help.stdout).has('--oci-archive'));
});
