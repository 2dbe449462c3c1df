/**
 * Runs the image built by scripts/image.sh the way a node runs the DaemonSet's containers: a
 * working container per run (`buildah from`), each command with `buildah run --isolation chroot`
 * inside a lab namespace's network (`--network host` from within `ip netns exec`), with
 * NET_ADMIN as its only capability and the host's /run/wireguard mounted, so UAPI sockets are
 * where the host's `wg` looks.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lab, LabProcess, Netns } from '../../src/lab/lab.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const VERSION = (
  JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }
).version;
export const TAG = `localhost/wireguard-ts:${VERSION}`;
export const ARM64_TAG = `${TAG}-arm64`;
const SCRIPT = join(ROOT, 'scripts/image.sh');
/** The Node.js version scripts/image.sh puts in the image. */
export const NODE_VERSION = /WG_TS_IMAGE_NODE:-([\d.]+)/.exec(readFileSync(SCRIPT, 'utf8'))![1]!;
const CACHE = process.env['WG_TS_IMAGE_CACHE'] ?? '/var/cache/wireguard-ts-image';

/**
 * The npm registry's node-linux-<arch> binary, fetched once into the build's cache (the layout
 * scripts/image.sh uses), so repeated runs download nothing.
 */
export function registryNode(arch: 'arm64' | 'x64'): string {
  const dir = join(CACHE, arch === 'x64' ? 'amd64' : arch, `node-linux-${arch}-${NODE_VERSION}`);
  const bin = join(dir, 'bin/node');
  if (existsSync(bin)) return bin;
  const tmp = mkdtempSync(join(tmpdir(), 'wgts-node-'));
  try {
    const pack = spawnSync('npm', ['pack', '--silent', `node-linux-${arch}@${NODE_VERSION}`], {
      cwd: tmp,
      encoding: 'utf8',
    });
    if (pack.status !== 0) throw new Error(`npm pack node-linux-${arch}: ${pack.stderr}`);
    mkdirSync(`${dir}.tmp`, { recursive: true });
    const tgz = join(tmp, `node-linux-${arch}-${NODE_VERSION}.tgz`);
    const x = spawnSync('tar', [
      '-xzf',
      tgz,
      '-C',
      `${dir}.tmp`,
      '--strip-components=1',
      'package/bin/node',
      'package/include',
      'package/LICENSE',
    ]);
    if (x.status !== 0) throw new Error(`tar: ${x.stderr.toString()}`);
    renameSync(`${dir}.tmp`, dir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return bin;
}

/** buildah's default capabilities; dropped so the container keeps NET_ADMIN alone. */
const DEFAULT_CAPS = [
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'SETGID',
  'SETUID',
  'SETPCAP',
  'NET_BIND_SERVICE',
  'SYS_CHROOT',
  'SETFCAP',
];

/** Why the image cannot be built here, or undefined. */
export function imageSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (buildah, network namespaces)';
  const r = spawnSync('bash', [SCRIPT, '--check'], { encoding: 'utf8' });
  if (r.error) return `bash: ${r.error.message}`;
  return r.status === 0 ? undefined : (r.stdout + r.stderr).trim();
}

/** Builds the image, or finds it up to date (scripts/image.sh compares an inputs hash). */
export function buildImage(): void {
  const r = spawnSync('bash', [SCRIPT], { encoding: 'utf8', timeout: 20 * 60_000 });
  if (r.status !== 0) {
    throw new Error(`scripts/image.sh failed (${r.status ?? r.signal}): ${r.stderr.slice(-4000)}`);
  }
}

export function buildah(args: readonly string[], input?: string): string {
  const r = spawnSync('buildah', args, { encoding: 'utf8', input, timeout: 120_000 });
  if (r.status !== 0) throw new Error(`buildah ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** A working container from the image, removed when the lab is disposed. */
export function container(lab: Lab, suffix: string, tag = TAG): string {
  const name = `${lab.base}-${suffix}`;
  buildah(['from', '--quiet', '--name', name, tag]);
  lab.defer(`container ${name}`, () => {
    spawnSync('buildah', ['rm', name]);
  });
  return name;
}

export interface RunOptions {
  readonly env?: Readonly<Record<string, string>>;
  /** host path -> container path */
  readonly mounts?: Readonly<Record<string, string>>;
}

/** `buildah run` argv for `cmd` in `ctr`, NET_ADMIN only, the host's /run/wireguard mounted. */
export function runArgs(ctr: string, cmd: readonly string[], o: RunOptions = {}): string[] {
  const args = ['run', '--isolation', 'chroot', '--network', 'host', '--cap-add', 'CAP_NET_ADMIN'];
  for (const c of DEFAULT_CAPS) args.push('--cap-drop', `CAP_${c}`);
  const mounts = { '/run/wireguard': '/run/wireguard', ...o.mounts };
  for (const [host, inside] of Object.entries(mounts)) args.push('-v', `${host}:${inside}`);
  for (const [k, v] of Object.entries(o.env ?? {})) args.push('--env', `${k}=${v}`);
  return [...args, ctr, '--', ...cmd];
}

/**
 * Starts `cmd` in the image inside `ns`; on dispose every process left in the namespace that
 * names `marker` on its command line is killed (buildah run does not pass SIGTERM on).
 */
export function spawnInImage(
  lab: Lab,
  ns: Netns,
  ctr: string,
  cmd: readonly string[],
  marker: string,
  o: RunOptions = {},
): LabProcess {
  const p = lab.spawn(ns, 'buildah', runArgs(ctr, cmd, o));
  lab.defer(`${marker} in ${ns.name}`, () => killMarked(lab, ns, marker));
  return p;
}

function killMarked(lab: Lab, ns: Netns, marker: string): void {
  for (const pid of lab.netnsPidsSync(ns.name)) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(marker)) {
        process.kill(pid, 'SIGKILL');
      }
    } catch {
      // gone meanwhile
    }
  }
}
