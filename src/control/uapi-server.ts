/**
 * The UAPI Unix socket server: `/var/run/wireguard/<ifname>.sock`, as wireguard-go's
 * ipc/uapi_linux.go (socket setup, stale-socket takeover, deletion watch) and device/uapi.go
 * IpcHandle (request loop, replies) do it, so `wg` and wg-quick drive us like wireguard-go.
 *
 * Requests are parsed incrementally from the byte stream (a `wg setconf` can send 130,000
 * allowed_ip lines in one request); a set is applied in one handler call at its blank line.
 */
import { lstatSync, mkdirSync, unlinkSync, watch, type FSWatcher } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { basename, dirname } from 'node:path';
import { WgError } from '../errors.js';
import {
  EINVAL,
  EIO,
  EUNKNOWN,
  UAPI_SOCKET_DIR,
  UapiSetParser,
  serializeGet,
  shownUapiKey,
  socketPath,
  type UapiDeviceInfo,
  type UapiSetOp,
} from './uapi.js';

export { socketPath } from './uapi.js';

export interface UapiHandler {
  get(): UapiDeviceInfo;
  /** Applies ops in order; returns 0 or a positive errno (e.g. EADDRINUSE 98 when the port is taken). */
  set(ops: readonly UapiSetOp[]): number;
  /**
   * wireguard-ts's own `stats=1` operation (drop counters by reason and other gauges), which
   * `wg` never sends; without it the operation is refused like any unknown one.
   */
  stats?(): ReadonlyArray<readonly [string, number]>;
}

export interface UapiServer {
  readonly path: string;
  close(): Promise<void>;
}

export type UapiLogLevel = 'error' | 'info' | 'debug';

export interface ListenUapiOptions {
  readonly ifname: string;
  readonly handler: UapiHandler;
  /** Socket directory (default /var/run/wireguard). */
  readonly dir?: string;
  /** An inherited listening socket (WG_UAPI_FD) to serve instead of creating one. */
  readonly fd?: number;
  /** Called once when the socket file is deleted or replaced (wireguard-go then exits). */
  readonly onSocketRemoved?: () => void;
  readonly log?: (level: UapiLogLevel, msg: string) => void;
}

/** bufio.Scanner's default token limit in wireguard-go: longer lines fail the set with EIO. */
export const MAX_LINE_BYTES = 64 * 1024;
/** Fallback poll for socket deletion, in case inotify events are missed. */
const WATCH_POLL_MS = 2_000;

function errnoReply(errno: number): string {
  return errno === 0 ? 'errno=0\n\n' : `errno=${-Math.abs(errno)}\n\n`;
}

function inodeOf(path: string): number | null {
  try {
    return lstatSync(path).ino;
  } catch {
    return null;
  }
}

function canConnect(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ path });
    s.on('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** Listens with umask 077 so the socket is srwx------ (root only), as wireguard-go does. */
function listenPrivate(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    let old: number | null = null;
    try {
      old = process.umask(0o077); // bind() happens synchronously inside listen()
    } catch {
      // worker threads cannot change the umask; the socket dir is then the only guard
    }
    try {
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    } finally {
      if (old !== null) process.umask(old);
    }
  });
}

/** One connection's request loop (IpcHandle). */
class Connection {
  private parts: string[] = [];
  private partLen = 0;
  private state: 'op' | 'get' | 'stats' | 'set' | 'set-failed' = 'op';
  private parser: UapiSetParser | null = null;
  private failedErrno = 0;
  private closed = false;

  constructor(
    private readonly sock: Socket,
    private readonly handler: UapiHandler,
    private readonly log: (level: UapiLogLevel, msg: string) => void,
  ) {
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
    sock.on('error', () => this.sock.destroy());
    // A set cut off by EOF is applied, as wireguard-go applies each line as it reads it.
    sock.on('end', () => {
      if (!this.closed && this.state === 'set') this.finishSet(false);
      this.sock.end();
    });
  }

  destroy(): void {
    this.closed = true;
    this.sock.destroy();
  }

  private onData(chunk: Buffer): void {
    // latin1 maps bytes 1:1, so a chunk boundary never splits a character; the protocol is ASCII.
    const text = chunk.toString('latin1');
    let start = 0;
    while (!this.closed) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) {
        const rest = text.length - start;
        if (rest > 0) {
          this.parts.push(start === 0 ? text : text.slice(start));
          this.partLen += rest;
          if (this.partLen > MAX_LINE_BYTES) this.tooLong();
        }
        return;
      }
      let line = text.slice(start, nl);
      if (this.parts.length > 0) {
        this.parts.push(line);
        line = this.parts.join('');
        this.parts = [];
        this.partLen = 0;
      }
      start = nl + 1;
      if (line.length > MAX_LINE_BYTES) {
        this.tooLong();
        return;
      }
      this.onLine(line);
    }
  }

  private tooLong(): void {
    this.log('error', `UAPI: request line longer than ${MAX_LINE_BYTES} bytes; closing`);
    // bufio.Scanner fails a set with EIO on such a line; any other state just closes.
    if (this.state === 'set') {
      const applied = this.applyParsed();
      this.sock.write(errnoReply(applied !== 0 ? applied : EIO));
    } else if (this.state === 'set-failed') {
      this.sock.write(errnoReply(this.failedErrno));
    }
    this.state = 'op';
    this.closed = true;
    this.sock.end(() => this.sock.destroy());
  }

  /** Stops reading requests; flushes what was written, then closes. */
  private destroySoon(): void {
    this.closed = true;
    this.sock.end(() => this.sock.destroy());
  }

  private onLine(line: string): void {
    switch (this.state) {
      case 'op':
        if (line === 'set=1') {
          this.state = 'set';
          this.parser = new UapiSetParser();
          this.failedErrno = 0;
        } else if (line === 'get=1') {
          this.state = 'get';
        } else if (line === 'stats=1' && this.handler.stats) {
          this.state = 'stats';
        } else {
          // wireguard-go logs and closes without a reply. The line may be a pasted key (whose
          // padding is its only "="): only an operation-like name is shown, else its length.
          this.log('error', `UAPI: invalid operation ${shownUapiKey(line)}; closing connection`);
          this.destroySoon();
        }
        return;
      case 'get':
        this.state = 'op';
        if (line !== '') {
          this.log('error', 'UAPI: trailing characters after get=1');
          this.reply(errnoReply(EINVAL));
          return;
        }
        this.replyGet();
        return;
      case 'stats':
        this.state = 'op';
        if (line !== '') {
          this.reply(errnoReply(EINVAL));
          return;
        }
        this.reply(
          this.handler.stats!()
            .map(([k, v]) => `${k}=${v}\n`)
            .join('') + errnoReply(0),
        );
        return;
      case 'set':
        if (line === '' || line === '\r') {
          this.finishSet(true);
          return;
        }
        if (!this.parser!.line(line)) {
          const err = this.parser!.error!;
          this.log('error', `UAPI: set line ${err.line}: ${err.message}`);
          // Lines before the bad one stay applied; the rest of the request is read and dropped.
          const applied = this.applyParsed();
          this.failedErrno = applied !== 0 ? applied : err.errno;
          this.state = 'set-failed';
        }
        return;
      case 'set-failed':
        if (line === '' || line === '\r') {
          this.state = 'op';
          this.reply(errnoReply(this.failedErrno));
        }
        return;
    }
  }

  /** Applies what the parser accepted; returns 0 or a positive errno. */
  private applyParsed(): number {
    const ops = this.parser?.ops ?? [];
    this.parser = null;
    if (ops.length === 0) return 0;
    try {
      return this.handler.set(ops);
    } catch (e) {
      this.log('error', `UAPI: set failed: ${e instanceof Error ? e.message : String(e)}`);
      return EUNKNOWN;
    }
  }

  private finishSet(replyNow: boolean): void {
    this.state = 'op';
    const errno = this.applyParsed();
    if (errno !== 0) this.log('error', `UAPI: set failed with errno ${errno}`);
    if (replyNow) this.reply(errnoReply(errno));
  }

  private replyGet(): void {
    let body: string;
    try {
      body = serializeGet(this.handler.get());
    } catch (e) {
      this.log('error', `UAPI: get failed: ${e instanceof Error ? e.message : String(e)}`);
      this.reply(errnoReply(EIO));
      return;
    }
    this.reply(body + errnoReply(0));
  }

  private reply(text: string): void {
    if (!this.sock.destroyed && this.sock.writable) this.sock.write(text);
  }
}

/**
 * Serves the UAPI on `<dir>/<ifname>.sock`. Throws WgError('ERR_IN_USE') when another daemon
 * answers on that path; a stale socket (or any other file) there is replaced.
 */
export async function listenUapi(opts: ListenUapiOptions): Promise<UapiServer> {
  const dir = opts.dir ?? UAPI_SOCKET_DIR;
  const path = socketPath(opts.ifname, dir);
  const log = opts.log ?? (() => {});
  const conns = new Set<Connection>();
  const server = createServer({ allowHalfOpen: true }, (sock) => {
    const c = new Connection(sock, opts.handler, log);
    conns.add(c);
    sock.on('close', () => conns.delete(c));
  });

  if (opts.fd !== undefined) {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ fd: opts.fd }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } else {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    if (inodeOf(path) !== null) {
      if (await canConnect(path)) {
        throw new WgError('ERR_IN_USE', `interface ${opts.ifname} is in use (${path} answers)`);
      }
      try {
        unlinkSync(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
    try {
      await listenPrivate(server, path);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'EADDRINUSE') {
        throw new WgError('ERR_IN_USE', `interface ${opts.ifname} is in use (${path} exists)`);
      }
      throw new WgError('ERR_SYSTEM', `cannot listen on ${path}: ${err.message}`);
    }
  }
  server.on('error', (e) => log('error', `UAPI server: ${e.message}`));

  // Deletion watch: wireguard-go uses inotify on the path and exits when it disappears. We
  // watch the directory (the path itself vanishes) and compare inodes, plus a slow poll.
  const ino = inodeOf(path);
  let removed = false;
  let watcher: FSWatcher | null = null;
  const check = () => {
    if (removed) return;
    const now = inodeOf(path);
    if (now === null || (ino !== null && now !== ino)) {
      removed = true;
      stopWatch();
      log('info', `UAPI: socket ${path} was removed`);
      opts.onSocketRemoved?.();
    }
  };
  try {
    watcher = watch(dirname(path), (_event, name) => {
      if (name === null || name === basename(path)) check();
    });
    watcher.on('error', () => {});
    watcher.unref();
  } catch {
    watcher = null;
  }
  const poll = setInterval(check, WATCH_POLL_MS);
  poll.unref();
  function stopWatch(): void {
    clearInterval(poll);
    watcher?.close();
    watcher = null;
  }

  let closing: Promise<void> | null = null;
  return {
    path,
    close(): Promise<void> {
      if (closing) return closing;
      removed = true;
      stopWatch();
      closing = new Promise<void>((resolve) => {
        for (const c of conns) c.destroy();
        server.close(() => resolve());
      }).then(() => {
        // Unlink on close (wireguard-go SetUnlinkOnClose), but never another daemon's socket.
        if (ino !== null && inodeOf(path) === ino) {
          try {
            unlinkSync(path);
          } catch {
            // already gone
          }
        }
      });
      return closing;
    },
  };
}
