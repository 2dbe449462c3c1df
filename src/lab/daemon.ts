/**
 * WireGuard daemons in the lab: which implementations are selected and available, starting one
 * inside a namespace the way `wg-quick` does (`<impl> <ifname>`, the parent exits 0 when ready),
 * `wg` inside a namespace, keys, and raw UAPI requests over the socket.
 *
 *   const d = await startDaemon(lab, ns, 'go', lab.name('wa'));  // waits for the UAPI socket
 *   await wg(lab, ns, ['set', d.ifname, 'listen-port', '51820']);
 *   const reply = await uapi(d.ifname, 'get=1\n\n');
 *
 * Implementations: 'go' is wireguard-go from PATH; 'ts' is this repository's bin/wireguard-ts and
 * is available once dist/src/cli.js exists. WG_TS_IMPLS (default `ts-go,go-ts,ts-ts`) selects
 * the pairs the interop tests run; the single-daemon tests run every impl that appears in it.
 * The UAPI directory is one filesystem path for all namespaces, so interface names must be unique
 * machine-wide (Lab names contain the pid).
 */
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { pidAlive, type Lab, type LabProcess, type Netns } from './lab.js';
import { timeoutNull, waitFor } from './wait.js';

export type Impl = 'ts' | 'go';
export type ImplPair = readonly [Impl, Impl];

export const SOCKET_DIR = '/var/run/wireguard';
/** The repository root (this file is dist/src/lab/daemon.js). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const TS_CLI = join(REPO_ROOT, 'dist/src/cli.js');
export const TS_BIN = join(REPO_ROOT, 'bin/wireguard-ts');
export const DEFAULT_PAIRS = 'ts-go,go-ts,ts-ts';

export function socketPath(ifname: string): string {
  return join(SOCKET_DIR, `${ifname}.sock`);
}

/** wireguard-go as found on PATH, unless a caller names another build. */
export const DEFAULT_GO_COMMAND = 'wireguard-go';

/**
 * The executable for an implementation, as wg-quick's WG_QUICK_USERSPACE_IMPLEMENTATION;
 * `goCommand` picks the wireguard-go build (the bench compares builds side by side).
 */
export function implCommand(impl: Impl, goCommand = DEFAULT_GO_COMMAND): string {
  return impl === 'ts' ? TS_BIN : goCommand;
}

/** Why an implementation cannot run here, or undefined when it can. */
export function implSkipReason(impl: Impl, goCommand = DEFAULT_GO_COMMAND): string | undefined {
  if (impl === 'ts') {
    return existsSync(TS_CLI) ? undefined : `wireguard-ts not built yet (${TS_CLI} missing)`;
  }
  const r = spawnSync(goCommand, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? undefined : `${goCommand} not installed`;
}

export function pairSkipReason(pair: ImplPair): string | undefined {
  return implSkipReason(pair[0]) ?? implSkipReason(pair[1]);
}

/** Parses WG_TS_IMPLS (`ts-go,go-ts,...`). */
export function selectedPairs(
  spec: string = process.env['WG_TS_IMPLS'] ?? DEFAULT_PAIRS,
): ImplPair[] {
  const out: ImplPair[] = [];
  for (const item of spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^(ts|go)-(ts|go)$/.exec(item);
    if (!m) throw new Error(`WG_TS_IMPLS: bad pair '${item}' (want e.g. ts-go,go-ts,ts-ts,go-go)`);
    out.push([m[1] as Impl, m[2] as Impl]);
  }
  return out;
}

/** The implementations appearing in the selected pairs, 'ts' first. */
export function selectedImpls(spec?: string): Impl[] {
  const set = new Set(selectedPairs(spec).flat());
  return (['ts', 'go'] as const).filter((i) => set.has(i));
}

/** Why root-only lab tests cannot run here (not root, or a tool missing), else undefined. */
export function labSkipReason(tools: readonly string[] = ['ip', 'wg']): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, TUN)';
  const missing = tools.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
  return missing.length > 0 ? `missing tools: ${missing.join(' ')}` : undefined;
}

export interface DaemonOptions {
  /** Run with `-f` and keep it as our child; default false (daemonize as wg-quick does). */
  readonly foreground?: boolean;
  /** LOG_LEVEL for the daemon; default 'error' (so errors reach `log()`). */
  readonly logLevel?: 'verbose' | 'debug' | 'error' | 'silent';
  readonly env?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
  /** The wireguard-go executable for impl 'go'; default wireguard-go from PATH. */
  readonly goCommand?: string;
}

export interface Daemon {
  readonly impl: Impl;
  readonly ns: Netns;
  readonly ifname: string;
  readonly socketPath: string;
  /** The daemon's pid (the re-executed child when it daemonized). */
  readonly pid: number;
  /** The process we started (exited already when the daemon daemonized). */
  readonly launcher: LabProcess;
  alive(): boolean;
  /** Resolves once the daemon process is gone; rejects after timeoutMs. */
  waitExit(timeoutMs: number): Promise<void>;
  /** SIGTERM (then SIGKILL after 3 s) and wait. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** What the daemon printed (only kept when LOG_LEVEL is set). */
  log(): string;
}

/** True when something accepts connections on the UAPI socket of `ifname`. */
export function socketLive(ifname: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(socketPath(ifname));
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function findDaemonPid(lab: Lab, ns: Netns, ifname: string): number | undefined {
  for (const pid of lab.netnsPidsSync(ns.name)) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (argv.includes(ifname) && pidAlive(pid)) return pid;
    } catch {
      // exited meanwhile
    }
  }
  return undefined;
}

/**
 * Starts `<impl> <ifname>` inside `ns` and resolves when its UAPI socket answers. Registered on
 * the lab: stopped, its socket file and link removed on dispose.
 */
export async function startDaemon(
  lab: Lab,
  ns: Netns,
  impl: Impl,
  ifname: string,
  opts: DaemonOptions = {},
): Promise<Daemon> {
  const skip = implSkipReason(impl, opts.goCommand);
  if (skip) throw new Error(skip);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
  if (opts.logLevel !== 'silent') env['LOG_LEVEL'] = opts.logLevel ?? 'error';
  delete env['WG_PROCESS_FOREGROUND'];
  const args = opts.foreground ? ['-f', ifname] : [ifname];
  const launcher = lab.spawn(ns, implCommand(impl, opts.goCommand), args, { env });
  const sock = socketPath(ifname);
  let pid = -1;
  const daemon: Daemon = {
    impl,
    ns,
    ifname,
    socketPath: sock,
    get pid() {
      return pid;
    },
    launcher,
    alive: () => pid > 0 && pidAlive(pid),
    waitExit: (ms) => waitFor(() => !daemon.alive(), ms, `${impl} daemon ${ifname} to exit`, 20),
    stop: async (signal = 'SIGTERM') => {
      if (!daemon.alive()) return;
      process.kill(pid, signal);
      try {
        await daemon.waitExit(3000);
      } catch {
        if (daemon.alive()) process.kill(pid, 'SIGKILL');
        await daemon.waitExit(2000);
      }
    },
    log: () => launcher.output(),
  };
  lab.defer(
    `daemon ${impl} ${ifname}`,
    async () => {
      await daemon.stop().catch(() => undefined);
      if (!(await socketLive(ifname))) rmSync(sock, { force: true });
      await lab.tryExec(ns, 'ip', ['link', 'del', ifname]);
    },
    () => {
      if (daemon.alive()) process.kill(pid, 'SIGKILL');
      rmSync(sock, { force: true });
    },
  );
  const deadline = Date.now() + timeoutMs;
  if (opts.foreground) {
    pid = launcher.pid;
    await waitFor(
      async () => {
        if (launcher.exitStatus()) {
          throw new Error(
            `exited early: ${JSON.stringify(launcher.exitStatus())} ${launcher.output()}`,
          );
        }
        return socketLive(ifname);
      },
      timeoutMs,
      `${impl} ${ifname} UAPI socket`,
      20,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${launcher.output()}`);
    });
    return daemon;
  }
  const st = await Promise.race([launcher.exited, timeoutNull(timeoutMs)]);
  if (!st) throw new Error(`${impl} ${ifname}: launcher did not exit within ${timeoutMs} ms`);
  if (st.code !== 0) {
    throw new Error(
      `${impl} ${ifname}: launcher exited ${st.code ?? st.signal}: ${launcher.output()}`,
    );
  }
  await waitFor(
    async () => {
      pid = findDaemonPid(lab, ns, ifname) ?? -1;
      return pid > 0 && (await socketLive(ifname));
    },
    Math.max(500, deadline - Date.now()),
    `${impl} ${ifname} daemon process and UAPI socket`,
    20,
  );
  return daemon;
}

/** Runs `wg <args>` inside `ns`; resolves stdout, rejects with wg's stderr on failure. */
export async function wg(
  lab: Lab,
  ns: Netns | null,
  args: readonly string[],
  input?: string,
): Promise<string> {
  const r = await lab.exec(ns, 'wg', args, input === undefined ? {} : { input });
  return r.stdout;
}

export async function genkey(lab: Lab): Promise<string> {
  return (await wg(lab, null, ['genkey'])).trim();
}

export async function genpsk(lab: Lab): Promise<string> {
  return (await wg(lab, null, ['genpsk'])).trim();
}

export async function pubkey(lab: Lab, privateKey: string): Promise<string> {
  return (await wg(lab, null, ['pubkey'], `${privateKey}\n`)).trim();
}

/**
 * A key pair made in-process (node:crypto X25519), base64 as `wg` prints keys: for tests that
 * need many peers, where spawning `wg genkey` per key would be slow.
 */
export function x25519Keypair(): { privateKey: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const priv = privateKey.export({ format: 'jwk' }).d;
  const pub = publicKey.export({ format: 'jwk' }).x;
  if (!priv || !pub) throw new Error('x25519 export failed');
  return {
    privateKey: Buffer.from(priv, 'base64url').toString('base64'),
    publicKey: Buffer.from(pub, 'base64url').toString('base64'),
  };
}

/** Writes a key (private or preshared) to a 0600 file in the lab's temp dir. */
export function keyFile(lab: Lab, key: string): string {
  const path = join(lab.tmpdir(), 'key');
  writeFileSync(path, `${key}\n`, { mode: 0o600 });
  return path;
}

/**
 * Sends one raw UAPI request (e.g. `set=1\nlisten_port=1\n\n`) and resolves the full reply, up to
 * and including the blank line after `errno=N`.
 */
export function uapi(ifname: string, request: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(socketPath(ifname));
    let buf = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`uapi ${ifname}: no complete reply within ${timeoutMs} ms: ${buf}`));
    }, timeoutMs);
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      buf += d;
      if (/(^|\n)errno=-?\d+\n\n$/.test(buf)) {
        clearTimeout(timer);
        s.destroy();
        resolve(buf);
      }
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    s.once('close', () => {
      clearTimeout(timer);
      reject(new Error(`uapi ${ifname}: connection closed before errno: ${buf}`));
    });
    s.write(request);
  });
}

/** The `errno=N` value of a UAPI reply. */
export function uapiErrno(reply: string): number {
  const m = /(?:^|\n)errno=(-?\d+)\n/.exec(reply);
  if (!m) throw new Error(`no errno in UAPI reply: ${reply}`);
  return Number(m[1]);
}
