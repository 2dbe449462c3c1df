/**
 * The wireguard-go-compatible daemon: `wireguard-ts [-f] IFNAME` creates the TUN device and the
 * UAPI socket, then serves until the link is deleted, the socket file is removed, or SIGTERM /
 * SIGINT arrives (PROTOCOL.md §13).
 *
 * Daemonizing: Node cannot fork, so the parent re-executes itself detached (new session) with
 * WG_PROCESS_FOREGROUND=1 and a pipe on fd 3; the child writes "ready" there once the device
 * and socket exist, and the parent exits 0 then, or 1 with the child's error. Inherited
 * WG_TUN_FD / WG_UAPI_FD are passed through to the child.
 */
import { spawn } from 'node:child_process';
import { closeSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { aeadByName, type AnyAead } from './noise/aead.js';
import { createCryptoPool, type CryptoPool } from './tun/crypto-pool.js';
import {
  nativeAead,
  nativeAeadAvailable,
  nativeAeadEngine,
  nativeAeadUnavailableReason,
} from './tun/aead.js';
import { installNativeMac } from './tun/mac.js';
import { randomPool } from './noise/random.js';
import { Device } from './tunnel/device.js';
import { Driver } from './tunnel/driver.js';
import { openBind, openTun, tunFromFd } from './tun/index.js';
import { listenUapi, type UapiServer } from './control/uapi-server.js';
import { DeviceConfig } from './control/device-config.js';
import { createLogger, parseLogLevel } from './control/log.js';
import { VERSION } from './version.js';

const READY_FD_ENV = 'WG_TS_READY_FD';

export function validInterfaceName(name: string): boolean {
  return (
    name.length > 0 && name.length <= 15 && !/[/\s]/.test(name) && name !== '.' && name !== '..'
  );
}

/**
 * The transport AEAD: WG_TS_CRYPTO=native|node|noble, else the fastest that passed its
 * self-check (native: the addon over Node's OpenSSL, ~5x node:crypto per packet at 1420 B).
 */
export function chooseAead(
  name: string | undefined,
  workers: number,
  log: { info(m: string): void },
): AnyAead | CryptoPool {
  if (name === 'native' || !name) {
    if (nativeAeadAvailable()) {
      if (workers <= 0) return nativeAead;
      log.info(`crypto pool: ${workers} worker thread(s)`);
      return createCryptoPool(workers);
    }
    if (name === 'native') {
      throw new Error(`WG_TS_CRYPTO=native: ${nativeAeadUnavailableReason()}`);
    }
    log.info(`native AEAD unavailable (${nativeAeadUnavailableReason()}), using node:crypto`);
  }
  return aeadByName(name);
}

/**
 * Crypto worker threads from WG_TS_WORKERS: a number, or 0 (the default) to seal and open on
 * the main thread. The benchmark on a 2-core machine found no gain from workers
 * (docs/performance.md); machines with more cores may differ.
 */
export function cryptoWorkers(value: string | undefined): number {
  if (value === undefined || value === '') return 0;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 64) {
    throw new Error(`WG_TS_WORKERS must be a whole number from 0 to 64, not "${value}"`);
  }
  return n;
}

/**
 * V8 flags for the daemon's heap, unless the user set their own. V8 grows the young generation
 * (up to 16 MiB semi-spaces) when the data path allocates fast, and the RSS stays at the new
 * size: a 10-minute soak stepped from ~84 to ~97 MiB at minute 7 (+18%). 4 MiB semi-spaces kept
 * it flat at 75-79 MiB (+1%) with the same throughput (4025 vs 4008 transfers). Heap sizes
 * cannot change after start, so the daemonized child gets them on its command line; a
 * foreground daemon gets them from NODE_OPTIONS (deploy/daemonset.yaml sets it).
 */
export const DAEMON_HEAP_FLAGS = ['--max-semi-space-size=4'] as const;

function heapFlags(): string[] {
  const given = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ');
  return given.includes('semi-space') ? [] : [...DAEMON_HEAP_FLAGS];
}

/** Parent side: starts the detached child and waits until it is ready. */
export async function daemonize(ifname: string): Promise<number> {
  const cli = fileURLToPath(new URL('./cli.js', import.meta.url));
  const keepOutput = process.env.LOG_LEVEL !== undefined;
  const stdio: (number | 'ignore' | 'inherit' | 'pipe')[] = [
    'ignore',
    keepOutput ? 'inherit' : 'ignore',
    keepOutput ? 'inherit' : 'ignore',
    'pipe',
  ];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    WG_PROCESS_FOREGROUND: '1',
    [READY_FD_ENV]: '3',
  };
  for (const name of ['WG_TUN_FD', 'WG_UAPI_FD'] as const) {
    const v = process.env[name];
    if (v !== undefined) {
      env[name] = String(stdio.length);
      stdio.push(Number(v));
    }
  }
  const child = spawn(process.execPath, [...process.execArgv, ...heapFlags(), cli, ifname], {
    detached: true,
    stdio,
    env,
  });
  return new Promise((resolve) => {
    let text = '';
    const pipe = child.stdio[3] as NodeJS.ReadableStream;
    pipe.setEncoding('utf8');
    pipe.on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('ready\n')) {
        child.unref();
        (pipe as unknown as { destroy(): void }).destroy();
        resolve(0);
      }
    });
    child.on('exit', (code) => {
      const msg = text.replace(/^error: /, '').trim();
      process.stderr.write(`${msg || `wireguard-ts exited with code ${code ?? 'signal'}`}\n`);
      resolve(1);
    });
  });
}

/**
 * V8 tiers a function up to optimized code only after ~66 KB of its bytecode has run and 500
 * calls have passed since its last inline-cache change. A daemon passing 100 packets/s (a ping
 * every 10 ms, a keepalive mesh) ran its data path in baseline code for many seconds, and each
 * packet cost 35-90 us of JavaScript against ~5 us once optimized (perf, `bench`'s RTT). Lower
 * thresholds get the data path optimized after a few hundred packets. Set before any packet is
 * handled, so the feedback of the hot functions is allocated with them; WG_TS_V8_TIERUP=0
 * leaves V8's defaults.
 */
export function tuneTierUp(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.WG_TS_V8_TIERUP === '0') return false;
  v8.setFlagsFromString('--interrupt-budget=8192');
  v8.setFlagsFromString('--minimum-invocations-after-ic-update=20');
  return true;
}

/** Child / foreground side: runs the device until it is told to stop. */
export async function runDevice(ifname: string): Promise<number> {
  tuneTierUp();
  const log = createLogger(parseLogLevel(process.env.LOG_LEVEL), ifname);
  const readyFd = process.env[READY_FD_ENV] ? Number(process.env[READY_FD_ENV]) : null;
  const report = (line: string) => {
    if (readyFd === null) return;
    try {
      writeSync(readyFd, line);
    } catch {
      // the parent is gone; nothing to tell
    }
  };
  let driver: Driver | null = null;
  let uapi: UapiServer | null = null;
  try {
    const tunFd = process.env.WG_TUN_FD;
    const tun = tunFd !== undefined ? tunFromFd(Number(tunFd)) : openTun(ifname);
    const aead = chooseAead(
      process.env.WG_TS_CRYPTO,
      cryptoWorkers(process.env.WG_TS_WORKERS),
      log,
    );
    // WG_TS_CRYPTO=noble is the portable mode: no native crypto at all.
    const macName = process.env.WG_TS_CRYPTO !== 'noble' && installNativeMac() ? 'native' : 'noble';
    const device = new Device({
      randomBytes: randomPool(),
      wallClockMs: () => Date.now(),
      aead,
      // The driver sends every batch before returning, so send slabs can be reused. 6 MiB moved
      // as much as 16 in the benchmark (2.41 vs 2.38 Gbit/s) with ~10 MiB less peak RSS.
      sendArenaBytes: 6 * 1024 * 1024,
      log,
      ...(process.env.WG_TS_REKEY_AFTER_TIME_MS
        ? { rekeyAfterTimeMs: Number(process.env.WG_TS_REKEY_AFTER_TIME_MS) }
        : {}),
    });
    let stopping = false;
    const stop = (why: string) => {
      if (stopping) return;
      stopping = true;
      log.info(`shutting down: ${why}`);
      driver?.close(why);
      void (uapi?.close() ?? Promise.resolve()).finally(() => process.exit(0));
    };
    const bind = openBind();
    bind.onOffloadError = (msg) => log.info(msg);
    if ('share' in aead) (aead as CryptoPool).share(bind.receiveBuffer);
    driver = new Driver(device, tun, bind, { log, onClose: (why) => stop(why) });
    driver.start();
    const uapiFd = process.env.WG_UAPI_FD;
    uapi = await listenUapi({
      ifname: tun.name,
      handler: new DeviceConfig(driver, (m) => log.error(m)),
      ...(uapiFd !== undefined ? { fd: Number(uapiFd) } : {}),
      onSocketRemoved: () => stop('UAPI socket removed'),
      log: (level, msg) => log[level](msg),
    });
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    const offloads = bind.offloads;
    const crypto = aead.name === 'native' ? `native (${nativeAeadEngine()})` : aead.name;
    log.info(
      `wireguard-ts ${VERSION} started on ${tun.name}, UDP port ${driver.listenPort}, ` +
        `crypto ${crypto}, MAC ${macName}, TUN offload flags ${tun.stats().offload}, ` +
        `UDP GSO ${offloads.gso ? 'on' : 'off'}, GRO ${offloads.gro ? 'on' : 'off'}`,
    );
    report('ready\n');
    if (readyFd !== null) closeSync(readyFd);
    return await new Promise<number>(() => {}); // runs until stop() exits the process
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    if (readyFd === null) process.stderr.write(`wireguard-ts: ${msg}\n`);
    else report(`error: ${msg}\n`);
    driver?.close('startup failed');
    await uapi?.close();
    return 1;
  }
}
