/**
 * A UAPI client over the Unix socket, the way `wg` talks to wireguard-go: one request per
 * connection, reply read up to the blank line that ends it. Used by `up`, the tests and the
 * Kubernetes agent; works against wireguard-go and our own server alike.
 */
import { createConnection } from 'node:net';
import { WgError } from '../errors.js';
import {
  ECONNREFUSED,
  EPROTO,
  UapiErrnoError,
  parseGet,
  serializeSet,
  socketPath,
  strerror,
  type UapiDeviceInfo,
  type UapiSetOp,
} from './uapi.js';

export interface UapiClientOptions {
  /** Socket directory when an interface name is given (default /var/run/wireguard). */
  readonly dir?: string;
  /** Whole request deadline (default 10 s). */
  readonly timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/** An argument containing `/` is a socket path; anything else an interface name. */
function resolvePath(ifnameOrPath: string, dir: string | undefined): string {
  return ifnameOrPath.includes('/') ? ifnameOrPath : socketPath(ifnameOrPath, dir);
}

function connectError(path: string, err: NodeJS.ErrnoException): WgError {
  if (err.code === 'ENOENT') {
    return new WgError('ERR_SYSTEM', `no UAPI socket at ${path}: no such interface or daemon`);
  }
  if (err.code === 'ECONNREFUSED') {
    return new UapiErrnoError(ECONNREFUSED, `UAPI socket ${path} is stale (no daemon listening)`);
  }
  return new WgError('ERR_SYSTEM', `UAPI socket ${path}: ${err.message}`);
}

/** Sends one request and resolves with the reply text, which ends with `\n\n`. */
function request(path: string, payload: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let last = 0; // the byte before the current chunk, to spot "\n\n" split across chunks
    let done = false;
    const finish = (err: Error | null, text?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(text ?? '');
    };
    const sock = createConnection({ path });
    const timer = setTimeout(
      () =>
        finish(
          new WgError('ERR_SYSTEM', `UAPI request to ${path} timed out after ${timeoutMs} ms`),
        ),
      timeoutMs,
    );
    let connected = false;
    sock.on('connect', () => {
      connected = true;
      sock.write(payload);
    });
    sock.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      const n = chunk.length;
      const prev = n >= 2 ? chunk[n - 2]! : last;
      if (n > 0 && chunk[n - 1] === 0x0a && prev === 0x0a) {
        finish(null, Buffer.concat(chunks).toString('utf8'));
      }
      if (n > 0) last = chunk[n - 1]!;
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      finish(
        connected
          ? new WgError('ERR_SYSTEM', `UAPI socket ${path}: ${err.message}`)
          : connectError(path, err),
      );
    });
    sock.on('close', () => {
      finish(new UapiErrnoError(EPROTO, `UAPI socket ${path} closed before a complete reply`));
    });
  });
}

/** Reads the device state (`get=1`). */
export async function uapiGet(
  ifnameOrPath: string,
  opts: UapiClientOptions = {},
): Promise<UapiDeviceInfo> {
  const path = resolvePath(ifnameOrPath, opts.dir);
  const reply = await request(path, 'get=1\n\n', opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  if (!/(^|\n)errno=-?[0-9]+\n\n$/.test(reply)) {
    throw new UapiErrnoError(EPROTO, `UAPI get from ${path}: reply without errno line`);
  }
  return parseGet(reply);
}

/** wireguard-ts's `stats=1`: drop counters (`drop_<reason>`) and gauges, by name. */
export async function uapiStats(
  ifnameOrPath: string,
  opts: UapiClientOptions = {},
): Promise<Map<string, number>> {
  const path = resolvePath(ifnameOrPath, opts.dir);
  const reply = await request(path, 'stats=1\n\n', opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const out = new Map<string, number>();
  for (const line of reply.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out.set(line.slice(0, eq), Number(line.slice(eq + 1)));
  }
  const errno = out.get('errno');
  if (errno === undefined)
    throw new UapiErrnoError(EPROTO, `UAPI stats from ${path}: no errno line`);
  if (errno !== 0) throw new UapiErrnoError(Math.abs(errno), `UAPI stats from ${path} refused`);
  out.delete('errno');
  return out;
}

/** Applies operations (`set=1`); throws UapiErrnoError (positive errno) when the daemon refuses. */
export async function uapiSet(
  ifnameOrPath: string,
  ops: readonly UapiSetOp[],
  opts: UapiClientOptions = {},
): Promise<void> {
  const path = resolvePath(ifnameOrPath, opts.dir);
  const reply = await request(path, serializeSet(ops), opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const m = /^errno=(-?[0-9]+)\n\n$/.exec(reply);
  if (!m) throw new UapiErrnoError(EPROTO, `UAPI set on ${path}: malformed reply`);
  // wireguard-go sends negative values; `wg` negates them. Accept either sign (boringtun: positive).
  const errno = Math.abs(Number(m[1]));
  if (errno !== 0) {
    throw new UapiErrnoError(errno, `Unable to modify interface via ${path}: ${strerror(errno)}`);
  }
}

/** True when a daemon accepts connections on the interface's UAPI socket. */
export function isUapiLive(ifname: string, dir?: string): Promise<boolean> {
  const path = resolvePath(ifname, dir);
  return new Promise((resolve) => {
    const sock = createConnection({ path });
    const timer = setTimeout(() => {
      sock.destroy();
      resolve(false);
    }, 2_000);
    sock.on('connect', () => {
      clearTimeout(timer);
      sock.destroy();
      resolve(true);
    });
    sock.on('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}
