/**
 * Where the WireGuard device lives: a userspace daemon (wireguard-ts, or any xplatform daemon
 * such as wireguard-go) configured over its UAPI socket, or the kernel module configured with
 * `wg`. Both present the same get/set, so the agent's reconcile is one code path and a mixed
 * cluster is one mesh. This file also starts the daemon when none is running, and reattaches
 * to a running one, which is what makes agent restarts hitless.
 */
import { spawn } from 'node:child_process';
import { WgError } from '../../errors.js';
import { formatEndpoint, formatPrefix, parseEndpoint, parsePrefix } from '../../tunnel/ip.js';
import { daemonCommand } from '../daemon-command.js';
import { run } from '../exec.js';
import { isUapiLive, uapiGet, uapiSet, uapiStats } from '../uapi-client.js';
import type { UapiDeviceInfo, UapiPeerInfo, UapiSetOp } from '../uapi.js';

export interface WgBackend {
  readonly kind: 'userspace' | 'kernel';
  get(): Promise<UapiDeviceInfo>;
  set(ops: readonly UapiSetOp[]): Promise<void>;
  /** True while the device can be configured (daemon alive / link present). */
  live(): Promise<boolean>;
}

export class UapiBackend implements WgBackend {
  readonly kind = 'userspace';
  constructor(
    private readonly ifname: string,
    private readonly dir?: string,
  ) {}
  get(): Promise<UapiDeviceInfo> {
    return uapiGet(this.ifname, this.dir ? { dir: this.dir } : {});
  }
  set(ops: readonly UapiSetOp[]): Promise<void> {
    return uapiSet(this.ifname, ops, this.dir ? { dir: this.dir } : {});
  }
  live(): Promise<boolean> {
    return isUapiLive(this.ifname, this.dir);
  }
  /** The daemon's drop counters and gauges (wireguard-ts's `stats=1`). */
  stats(): Promise<Map<string, number>> {
    return uapiStats(this.ifname, this.dir ? { dir: this.dir } : {});
  }
}

/**
 * Starts the daemon for `ifname` unless one already serves its socket. The daemon daemonizes
 * (its parent exits 0 once ready), so it outlives this agent. Returns whether it was started.
 */
export async function ensureDaemon(
  ifname: string,
  dir?: string,
  timeoutMs = 15_000,
): Promise<boolean> {
  if (await isUapiLive(ifname, dir)) return false;
  const { file, args } = daemonCommand();
  const code = await new Promise<number>((resolve, reject) => {
    const child = spawn(file, [...args, ifname], {
      stdio: ['ignore', 'ignore', 'inherit'],
      detached: true,
    });
    child.on('error', reject);
    child.on('exit', (c) => resolve(c ?? 1));
  });
  if (code !== 0) throw new WgError('ERR_SYSTEM', `daemon ${file} ${ifname} exited with ${code}`);
  const deadline = Date.now() + timeoutMs;
  while (!(await isUapiLive(ifname, dir))) {
    if (Date.now() > deadline)
      throw new WgError('ERR_SYSTEM', `daemon for ${ifname} never opened its UAPI socket`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

/** Whether this kernel can create WireGuard links (module loaded or loadable). */
export async function kernelHasWireguard(
  probeName = `wgtsprobe${process.pid % 100000}`,
): Promise<boolean> {
  try {
    await run('ip', ['link', 'add', probeName, 'type', 'wireguard'], { timeoutMs: 5_000 });
  } catch {
    return false;
  }
  await run('ip', ['link', 'del', probeName]).catch(() => undefined);
  return true;
}

/**
 * The kernel device through `wg`: `wg show IF dump` to read, `wg set` to write. Kept small; the
 * userspace path is the tested one on machines without the module.
 */
export class KernelBackend implements WgBackend {
  readonly kind = 'kernel';
  constructor(private readonly ifname: string) {}

  async ensureLink(): Promise<void> {
    const exists = await run('ip', ['link', 'show', this.ifname]).then(
      () => true,
      () => false,
    );
    if (!exists) await run('ip', ['link', 'add', this.ifname, 'type', 'wireguard']);
  }

  async live(): Promise<boolean> {
    return run('ip', ['link', 'show', this.ifname]).then(
      () => true,
      () => false,
    );
  }

  async get(): Promise<UapiDeviceInfo> {
    const { stdout } = await run('wg', ['show', this.ifname, 'dump']);
    return parseWgDump(stdout);
  }

  async set(ops: readonly UapiSetOp[]): Promise<void> {
    const { args, input } = wgSetArgs(this.ifname, ops);
    if (args.length > 2) await run('wg', args, input === undefined ? {} : { input });
  }
}

const fromB64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

/** Parses `wg show IF dump` (tab-separated; first line is the device). */
export function parseWgDump(text: string): UapiDeviceInfo {
  const lines = text.split('\n').filter((l) => l.trim());
  const dev = (lines[0] ?? '').split('\t');
  const peers: UapiPeerInfo[] = lines.slice(1).map((l) => {
    const f = l.split('\t');
    return {
      publicKey: fromB64(f[0]!),
      presharedKey: f[1] === '(none)' ? null : fromB64(f[1]!),
      endpoint: f[2] && f[2] !== '(none)' ? parseEndpoint(f[2]) : null,
      allowedIps: f[3] && f[3] !== '(none)' ? f[3].split(',').map(parsePrefix) : [],
      lastHandshakeMs: Number(f[4] ?? 0) * 1000,
      rxBytes: Number(f[5] ?? 0),
      txBytes: Number(f[6] ?? 0),
      persistentKeepalive: f[7] === 'off' ? 0 : Number(f[7] ?? 0),
      protocolVersion: 1,
    };
  });
  return {
    privateKey: dev[0] && dev[0] !== '(none)' ? fromB64(dev[0]) : null,
    listenPort: Number(dev[2] ?? 0),
    fwmark: dev[3] && dev[3] !== 'off' ? Number(dev[3]) : 0,
    peers,
  };
}

/** Turns UAPI operations into one `wg set` command; the private key travels on stdin. */
export function wgSetArgs(
  ifname: string,
  ops: readonly UapiSetOp[],
): { args: string[]; input?: string } {
  const args = ['set', ifname];
  let input: string | undefined;
  let allowed: string[] | null = null;
  const flush = () => {
    if (allowed) args.push('allowed-ips', allowed.join(','));
    allowed = null;
  };
  for (const op of ops) {
    switch (op.key) {
      case 'private_key':
        input = op.value ? Buffer.from(op.value).toString('base64') : '';
        args.push('private-key', '/dev/stdin');
        break;
      case 'listen_port':
        args.push('listen-port', String(op.value));
        break;
      case 'fwmark':
        args.push('fwmark', String(op.value));
        break;
      case 'public_key':
        flush();
        args.push('peer', Buffer.from(op.value).toString('base64'));
        break;
      case 'remove':
        args.push('remove');
        break;
      case 'endpoint':
        args.push('endpoint', formatEndpoint(op.value));
        break;
      case 'persistent_keepalive_interval':
        args.push('persistent-keepalive', String(op.value));
        break;
      case 'replace_allowed_ips':
        allowed = [];
        break;
      case 'allowed_ip':
        (allowed ??= []).push((op.remove ? '-' : '') + formatPrefix(op.value));
        break;
      default:
        throw new WgError('ERR_UNSUPPORTED', `kernel backend: ${op.key} not supported`, op.key);
    }
  }
  flush();
  return input === undefined ? { args } : { args, input };
}
