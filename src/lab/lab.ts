/**
 * The network lab: network namespaces, veth links, temp dirs and processes for integration
 * tests, the benchmark and the demo. A Lab owns everything it creates and removes it in reverse
 * order on `dispose()` (idempotent), which also runs on SIGINT/SIGTERM (then the process exits)
 * and, best effort and synchronously, on process exit.
 *
 *   const lab = new Lab('wgti');           // names: wgti<pid%10000>-<suffix>
 *   const a = await lab.netns('a');        // namespace wgti1234-a, lo up, IPv6 DAD off
 *   const b = await lab.netns('b');
 *   const v = await lab.veth(a, b, { mtu: 9000 });  // { a: 'wgti1234-v1a', b: 'wgti1234-v1b' }
 *   await lab.addr(a, v.a, '192.168.241.1/24');
 *   await lab.exec(a, 'ping', ['-c1', '192.168.241.2']);      // rejects on non-zero exit
 *   const r = await lab.tryExec(a, 'ping', ['-c1', '10.9.9.9']); // { code, stdout, stderr }
 *   const p = lab.spawn(b, 'ncat', ['-l', '5000']);             // killed (whole group) on dispose
 *   lab.defer('my thing', () => undoIt());                      // custom cleanup, same order
 *   await lab.dispose();
 *
 * `null` as a namespace means the root namespace. Commands run through `ip netns exec`.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { run, type RunResult } from '../control/exec.js';
import { sleep } from './wait.js';

export type { RunResult };

/** A network namespace made by a Lab. */
export interface Netns {
  readonly name: string;
}

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface TryResult {
  /** Exit code; -1 when the command could not be started or was killed (timeout). */
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ExecOptions {
  readonly input?: string;
  readonly timeoutMs?: number;
}

export interface SpawnOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** 'pipe' gives `proc.stdin`; default 'ignore'. */
  readonly stdin?: 'pipe' | 'ignore';
  /** Keep stdout/stderr text for `output()` (default true). False leaves `proc.stdout` to you. */
  readonly capture?: boolean;
}

/** A process started by a Lab, in its own process group (signals go to the whole group). */
export interface LabProcess {
  readonly pid: number;
  readonly argv: readonly string[];
  readonly child: ChildProcess;
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  /** Resolves when the process exits (never rejects). */
  readonly exited: Promise<ExitStatus>;
  /** The exit status, or null while it runs. */
  exitStatus(): ExitStatus | null;
  /** Captured stdout and stderr so far (last 1 MiB of each, stdout first). */
  output(): string;
  /** Signals the whole process group; a no-op once it exited. */
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it exited. */
  stop(graceMs?: number): Promise<ExitStatus>;
}

export interface VethOptions {
  /** Link names (≤ 15 chars); default `<base>-v<n>a` / `<base>-v<n>b`. */
  readonly names?: readonly [string, string];
  readonly mtu?: number;
  /** Bring both ends up (default true). */
  readonly up?: boolean;
}

interface Undo {
  readonly what: string;
  readonly undo: () => Promise<void> | void;
  readonly undoSync: (() => void) | undefined;
}

const MAX_CAPTURE = 1 << 20;
const IFNAMSIZ_MAX = 15;

const liveLabs = new Set<Lab>();
// Process-wide, so several labs of one process (same prefix and pid) never reuse a name.
let nameCounter = 0;
let handlersInstalled = false;

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  const onSignal = (code: number) => {
    void Promise.allSettled([...liveLabs].map((l) => l.dispose())).then(() => process.exit(code));
  };
  process.once('SIGINT', () => onSignal(130));
  process.once('SIGTERM', () => onSignal(143));
  process.once('exit', () => {
    for (const l of liveLabs) l.disposeSync();
  });
}

function nsArgv(ns: Netns | null, cmd: string, args: readonly string[]): [string, string[]] {
  return ns ? ['ip', ['netns', 'exec', ns.name, cmd, ...args]] : [cmd, [...args]];
}

/** Sends `signal` to a process group, ignoring "no such process". */
function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** Whether any process is left in the process group `pgid`. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** True while `pid` exists and is not a zombie. */
export function pidAlive(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  const state = stat.charAt(stat.lastIndexOf(')') + 2);
  return state !== 'Z' && state !== 'X' && state !== '';
}

export class Lab {
  /** `<prefix><pid % 10000>`: the start of every name this lab makes. */
  readonly base: string;
  private readonly undos: Undo[] = [];
  private disposing: Promise<void> | null = null;

  constructor(prefix: string) {
    this.base = `${prefix}${process.pid % 10000}`;
    installExitHandlers();
    liveLabs.add(this);
  }

  /** `<base>-<suffix>`, checked against the 15-character interface name limit. */
  name(suffix: string): string {
    const n = `${this.base}-${suffix}`;
    if (n.length > IFNAMSIZ_MAX) throw new Error(`lab name too long for a link: ${n}`);
    return n;
  }

  /** A fresh suffix, unique in this process: `v1`, `p2`... (one counter for all stems). */
  next(stem: string): string {
    nameCounter += 1;
    return `${stem}${nameCounter}`;
  }

  /** Cleanup steps still registered (for tests). */
  get pendingSteps(): number {
    return this.undos.length;
  }

  /**
   * Registers a cleanup step; steps run in reverse registration order on dispose. Returns a
   * function that drops the step (for a resource that went away by itself).
   */
  defer(what: string, undo: () => Promise<void> | void, undoSync?: () => void): () => void {
    const step: Undo = { what, undo, undoSync };
    this.undos.push(step);
    return () => {
      const i = this.undos.lastIndexOf(step);
      if (i >= 0) this.undos.splice(i, 1);
    };
  }

  /** Creates a namespace with lo up and IPv6 duplicate address detection off. */
  async netns(suffix?: string): Promise<Netns> {
    const name = `${this.base}-${suffix ?? this.next('n')}`;
    await run('ip', ['netns', 'add', name]);
    const ns: Netns = { name };
    this.defer(
      `netns ${name}`,
      () => this.deleteNetns(name),
      () => {
        for (const pid of this.netnsPidsSync(name)) killGroupOrPid(pid, 'SIGKILL');
        spawnSync('ip', ['netns', 'del', name]);
      },
    );
    await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    // Tentative IPv6 addresses cannot be bound for ~2 s; tests want them at once.
    for (const key of ['all', 'default']) {
      await this.tryExec(ns, 'sysctl', ['-qw', `net.ipv6.conf.${key}.accept_dad=0`]);
    }
    return ns;
  }

  /** Pids of the processes living in a namespace (by name; excludes this process). */
  netnsPidsSync(name: string): number[] {
    const r = spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' });
    if (r.status !== 0) return [];
    return r.stdout
      .split(/\s+/)
      .filter((s) => /^\d+$/.test(s))
      .map(Number)
      .filter((p) => p !== process.pid);
  }

  private async deleteNetns(name: string): Promise<void> {
    let pids = this.netnsPidsSync(name);
    for (const pid of pids) killGroupOrPid(pid, 'SIGTERM');
    const deadline = Date.now() + 2000;
    while (pids.length > 0 && Date.now() < deadline) {
      await sleep(25);
      pids = this.netnsPidsSync(name).filter(pidAlive);
    }
    for (const pid of pids) killGroupOrPid(pid, 'SIGKILL');
    await run('ip', ['netns', 'del', name]).catch(() => undefined);
  }

  /**
   * A veth pair between two namespaces (null = root). Created directly inside the namespaces so
   * names never collide in the root namespace.
   */
  async veth(
    a: Netns | null,
    b: Netns | null,
    opts: VethOptions = {},
  ): Promise<{ a: string; b: string }> {
    let names = opts.names;
    if (!names) {
      const stem = this.next('v');
      names = [this.name(`${stem}a`), this.name(`${stem}b`)];
    }
    const [na, nb] = names;
    const args = ['link', 'add', na];
    if (a) args.push('netns', a.name);
    args.push('type', 'veth', 'peer', 'name', nb);
    if (b) args.push('netns', b.name);
    await run('ip', args);
    this.defer(
      `veth ${na}`,
      async () => {
        await this.tryExec(a, 'ip', ['link', 'del', na]);
      },
      () => {
        const [c, v] = nsArgv(a, 'ip', ['link', 'del', na]);
        spawnSync(c, v);
      },
    );
    for (const [ns, dev] of [
      [a, na],
      [b, nb],
    ] as const) {
      if (opts.mtu !== undefined)
        await this.exec(ns, 'ip', ['link', 'set', dev, 'mtu', `${opts.mtu}`]);
      if (opts.up !== false) await this.exec(ns, 'ip', ['link', 'set', dev, 'up']);
    }
    return { a: na, b: nb };
  }

  /** `ip addr add` (IPv6 without duplicate address detection). */
  async addr(ns: Netns | null, dev: string, cidr: string): Promise<void> {
    const extra = cidr.includes(':') ? ['nodad'] : [];
    await this.exec(ns, 'ip', ['addr', 'add', cidr, 'dev', dev, ...extra]);
  }

  /** Runs a command to completion; rejects (WgError ERR_SYSTEM with stderr) on non-zero exit. */
  exec(
    ns: Netns | null,
    cmd: string,
    args: readonly string[],
    opts: ExecOptions = {},
  ): Promise<RunResult> {
    return run(cmd, args, { ...(ns ? { netns: ns.name } : {}), ...opts });
  }

  /** Runs a command to completion and reports its exit code instead of rejecting. */
  tryExec(
    ns: Netns | null,
    cmd: string,
    args: readonly string[],
    opts: ExecOptions = {},
  ): Promise<TryResult> {
    const [c, argv] = nsArgv(ns, cmd, args);
    return new Promise((resolve) => {
      const child = execFile(
        c,
        argv,
        { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
        (err, stdout, stderr) => {
          let code = 0;
          if (err) code = typeof err.code === 'number' ? err.code : -1;
          resolve({ code, stdout, stderr: stderr || (err && code === -1 ? err.message : '') });
        },
      );
      if (opts.input !== undefined) child.stdin?.end(opts.input);
    });
  }

  /** Starts a long-running process in its own process group; it is stopped on dispose. */
  spawn(
    ns: Netns | null,
    cmd: string,
    args: readonly string[],
    opts: SpawnOptions = {},
  ): LabProcess {
    const [c, argv] = nsArgv(ns, cmd, args);
    const child = spawn(c, argv, {
      detached: true,
      stdio: [opts.stdin ?? 'ignore', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
    });
    let out = '';
    let err = '';
    const keep = (prev: string, chunk: Buffer) => {
      const s = prev + chunk.toString('utf8');
      return s.length > MAX_CAPTURE ? s.slice(s.length - MAX_CAPTURE) : s;
    };
    if (opts.capture !== false) child.stdout?.on('data', (d: Buffer) => (out = keep(out, d)));
    child.stderr?.on('data', (d: Buffer) => (err = keep(err, d)));
    let status: ExitStatus | null = null;
    const exited = new Promise<ExitStatus>((resolve) => {
      child.once('exit', (code, signal) => {
        status = { code, signal };
        resolve(status);
      });
      child.once('error', (e) => {
        err += `\nspawn error: ${e.message}`;
        status = { code: -1, signal: null };
        resolve(status);
      });
    });
    const pid = child.pid ?? -1;
    const proc: LabProcess = {
      pid,
      argv: [cmd, ...args],
      child,
      stdin: child.stdin,
      stdout: child.stdout,
      exited,
      exitStatus: () => status,
      output: () => (err ? `${out}${out && !out.endsWith('\n') ? '\n' : ''}${err}` : out),
      kill: (signal = 'SIGTERM') => {
        if (status === null && pid > 0) killGroup(pid, signal);
      },
      stop: async (graceMs = 2000) => {
        if (status !== null || pid <= 0) return exited;
        killGroup(pid, 'SIGTERM');
        const t = setTimeout(() => killGroup(pid, 'SIGKILL'), graceMs);
        const s = await exited;
        clearTimeout(t);
        // Children that left the group's leader alive (daemons) are handled by their owners.
        killGroup(pid, 'SIGKILL');
        return s;
      },
    };
    const forget = this.defer(
      `process ${pid} ${cmd}`,
      async () => {
        await proc.stop(1000);
        // What the group still holds after its leader ended (a shell's background job).
        if (pid > 0) killGroup(pid, 'SIGKILL');
      },
      () => killGroup(pid, 'SIGKILL'),
    );
    // A process that ended with its whole group needs no cleanup: forgetting it lets the
    // ChildProcess go. Kept, thousands of them (a soak spawns two per transfer) slowed the
    // harness down by half in five minutes.
    void exited.then(() => {
      if (pid > 0 && !groupAlive(pid)) forget();
    });
    return proc;
  }

  /** A private temp directory, removed on dispose. */
  tmpdir(): string {
    const dir = mkdtempSync(join(tmpdir(), `${this.base}-`));
    this.defer(
      `tmpdir ${dir}`,
      () => rmSync(dir, { recursive: true, force: true }),
      () => rmSync(dir, { recursive: true, force: true }),
    );
    return dir;
  }

  /**
   * Undoes everything in reverse order. Idempotent; errors of single steps are collected and
   * reported on stderr, never thrown, so one failure does not leave the rest behind.
   */
  dispose(): Promise<void> {
    if (!this.disposing) {
      this.disposing = (async () => {
        while (this.undos.length > 0) {
          const u = this.undos.pop()!;
          const t0 = Date.now();
          try {
            await u.undo();
            if (process.env['LAB_DEBUG'])
              process.stderr.write(`lab: ${u.what} ${Date.now() - t0} ms\n`);
          } catch (err) {
            process.stderr.write(`lab cleanup (${u.what}): ${(err as Error).message}\n`);
          }
        }
        liveLabs.delete(this);
      })();
    }
    return this.disposing;
  }

  /** Best-effort synchronous cleanup for the process 'exit' event. */
  disposeSync(): void {
    while (this.undos.length > 0) {
      const u = this.undos.pop()!;
      try {
        u.undoSync?.();
      } catch {
        // keep going: this is the last chance to clean the rest
      }
    }
    liveLabs.delete(this);
  }
}

function killGroupOrPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}
