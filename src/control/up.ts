/**
 * `wireguard-ts up <file.conf>` and `down <ifname|file.conf>`: a standalone wg-quick subset that
 * needs no wireguard-tools. `up` parses the file, starts the daemon (which creates the TUN link
 * and the UAPI socket, then daemonizes), configures it over the UAPI like `wg setconf`, then adds
 * addresses, MTU, link up and routes with iproute2, as wg-quick's cmd_up does.
 *
 * Default routes (a /0 in AllowedIPs) follow wg-quick's policy routing: a fwmark on the daemon's
 * sockets, the /0 route in table <fwmark> (51820 or the next free table), `not fwmark → table`
 * and `main suppress_prefixlength 0` rules, src_valid_mark=1. wg-quick's extra nftables
 * anti-spoofing rules are not installed.
 */
import { spawn } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { WgError } from '../errors.js';
import { endpointFromBytes, parseAddress, type Endpoint } from '../tunnel/ip.js';
import { parseConfigFile, toUapiOps, type QuickConfig } from './config-file.js';
import { daemonCommand } from './daemon-command.js';
import { tunnelMtu } from './mtu.js';
import {
  addAddress,
  addRoute,
  addRule,
  defaultRouteMtu,
  delLink,
  deleteRulesMatching,
  linkExists,
  pathMtu,
  routeCovers,
  setLinkUp,
  setMtu,
  tableInUse,
} from './iproute.js';
import { isUapiLive, uapiGet, uapiSet } from './uapi-client.js';
import { socketPath } from './uapi.js';

const IFNAME = /^[a-zA-Z0-9_=+.-]{1,15}$/;
const DAEMON_START_TIMEOUT_MS = 15_000;
const DEFAULT_TABLE = 51820;

class UsageError extends Error {}

function fail(cmd: string, msg: string): void {
  process.stderr.write(`wireguard-ts ${cmd}: ${msg}\n`);
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** `wg0` → /etc/wireguard/wg0.conf (as wg-quick); anything with a `/` or `.conf` is a path. */
export function configPathFor(arg: string): string {
  return arg.includes('/') || arg.endsWith('.conf') ? arg : `/etc/wireguard/${arg}.conf`;
}

/** The interface name a config file gives: its basename without `.conf`. */
export function interfaceNameFor(arg: string): string {
  const name = basename(arg).replace(/\.conf$/, '');
  if (!IFNAME.test(name)) {
    throw new UsageError(
      `interface name "${name}" (from ${arg}) must be 1-15 characters of [a-zA-Z0-9_=+.-]`,
    );
  }
  return name;
}

async function resolveEndpoints(cfg: QuickConfig): Promise<(Endpoint | null)[]> {
  return Promise.all(
    cfg.peers.map(async (p) => {
      if (!p.endpoint) return null;
      let bytes = parseAddress(p.endpoint.host);
      if (!bytes) {
        try {
          const r = await lookup(p.endpoint.host, { verbatim: true });
          bytes = parseAddress(r.address);
        } catch (e) {
          throw new WgError(
            'ERR_INVALID_ENDPOINT',
            `cannot resolve endpoint host "${p.endpoint.host}": ${errorMessage(e)}`,
            'Endpoint',
          );
        }
      }
      if (!bytes) throw new WgError('ERR_INVALID_ENDPOINT', `bad endpoint ${p.endpoint.host}`);
      return endpointFromBytes(bytes, p.endpoint.port);
    }),
  );
}

/** Starts the daemon and waits for its (parent) process to exit: 0 means the link is ready. */
function startDaemon(ifname: string): Promise<void> {
  const { file, args } = daemonCommand();
  return new Promise((resolve, reject) => {
    // stdout ignored: a daemon that kept it open would hold our caller's pipe.
    const child = spawn(file!, [...args, ifname], { stdio: ['ignore', 'ignore', 'inherit'] });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new WgError('ERR_SYSTEM', `daemon ${file} did not become ready in time`));
    }, DAEMON_START_TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new WgError('ERR_SYSTEM', `cannot start daemon ${file}: ${e.message}`));
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else {
        const why = signal ? `signal ${signal}` : `exit code ${code}`;
        reject(new WgError('ERR_SYSTEM', `daemon ${file} ${ifname} failed (${why})`));
      }
    });
  });
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** wg-quick set_mtu_up: the tunnel MTU (mtu.ts) of the largest path MTU towards the endpoints,
 * else of the default route's. */
async function autoMtu(endpoints: (Endpoint | null)[]): Promise<number> {
  let mtu = 0;
  for (const ep of endpoints) {
    if (!ep) continue;
    const m = await pathMtu(ep.address);
    if (m !== null && m > mtu) mtu = m;
  }
  if (mtu === 0) mtu = (await defaultRouteMtu()) ?? 0;
  if (mtu <= 0) mtu = 1500;
  return tunnelMtu(mtu);
}

/** wg-quick add_default: policy routing so the tunnel's own UDP still uses the main table. */
async function addDefaultRoute(
  ifname: string,
  prefix: QuickConfig['peers'][number]['allowedIps'][number],
  fwmark: { table: number | null },
): Promise<void> {
  if (fwmark.table === null) {
    let table = DEFAULT_TABLE;
    while (await tableInUse(table)) table++;
    await uapiSet(ifname, [{ key: 'fwmark', value: table }]);
    fwmark.table = table;
  }
  const table = fwmark.table;
  await addRoute(prefix, ifname, table);
  await addRule(prefix.family, ['not', 'fwmark', String(table), 'table', String(table)]);
  await addRule(prefix.family, ['table', 'main', 'suppress_prefixlength', '0']);
  if (prefix.family === 4) {
    writeFileSync('/proc/sys/net/ipv4/conf/all/src_valid_mark', '1\n');
  }
}

/** Removes the rules addDefaultRoute made (wg-quick del_if), before the link goes away. */
async function removeDefaultRules(table: number): Promise<void> {
  for (const fam of [4, 6] as const) {
    await deleteRulesMatching(fam, `lookup ${table}`, ['table', String(table)]);
    await deleteRulesMatching(fam, 'from all lookup main suppress_prefixlength 0', [
      'table',
      'main',
      'suppress_prefixlength',
      '0',
    ]);
  }
}

async function configure(ifname: string, cfg: QuickConfig, endpoints: (Endpoint | null)[]) {
  await uapiSet(ifname, toUapiOps(cfg, endpoints));
  for (const a of cfg.interface.addresses) await addAddress(ifname, a.text);
  await setMtu(ifname, cfg.interface.mtu ?? (await autoMtu(endpoints)));
  await setLinkUp(ifname);
  // Most specific first, as wg-quick sorts them (`sort -nr -k 2 -t /`).
  const prefixes = cfg.peers.flatMap((p) => p.allowedIps).sort((a, b) => b.cidr - a.cidr);
  const fwmark = { table: cfg.interface.fwmark ? cfg.interface.fwmark : null };
  for (const p of prefixes) {
    if (p.cidr === 0) await addDefaultRoute(ifname, p, fwmark);
    else if (!(await routeCovers(p, ifname))) await addRoute(p, ifname);
  }
}

/** `up <file.conf>`; returns the exit code (0 ok, 1 runtime failure, 2 usage/config error). */
export async function cmdUp(args: string[]): Promise<number> {
  if (args.length !== 1 || args[0]!.startsWith('-')) {
    fail('up', 'usage: wireguard-ts up <file.conf | ifname>');
    return 2;
  }
  let ifname: string;
  let cfg: QuickConfig;
  const file = configPathFor(args[0]!);
  try {
    ifname = interfaceNameFor(file);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new UsageError(
        `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`,
      );
    }
    cfg = parseConfigFile(text, file);
    // The file holds a private key: like ssh with its keys (and stricter than wg-quick, which
    // only warns), refuse one that other users can read or change.
    const mode = statSync(file).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw new UsageError(
        `${file} is accessible to other users (mode ${mode.toString(8).padStart(4, '0')}) ` +
          `and holds a private key: chmod 600 ${file}`,
      );
    }
  } catch (e) {
    fail('up', errorMessage(e));
    return 2;
  }

  let endpoints: (Endpoint | null)[];
  try {
    if (await linkExists(ifname)) throw new WgError('ERR_IN_USE', `\`${ifname}' already exists`);
    if (await isUapiLive(ifname)) {
      throw new WgError('ERR_IN_USE', `${socketPath(ifname)} is served by another daemon`);
    }
    endpoints = await resolveEndpoints(cfg);
  } catch (e) {
    fail('up', errorMessage(e));
    return 1;
  }

  try {
    await startDaemon(ifname);
    if (!(await waitFor(() => isUapiLive(ifname), 3_000))) {
      throw new WgError('ERR_SYSTEM', `daemon did not serve ${socketPath(ifname)}`);
    }
    if (!(await linkExists(ifname))) {
      throw new WgError('ERR_SYSTEM', `daemon did not create link ${ifname}`);
    }
    await configure(ifname, cfg, endpoints);
    return 0;
  } catch (e) {
    fail('up', `${ifname}: ${errorMessage(e)}`);
    await teardown(ifname);
    return 1;
  }
}

/** Best effort after a failed `up`: rules for /0, then the link (which stops the daemon). */
async function teardown(ifname: string): Promise<void> {
  try {
    const info = await uapiGet(ifname, { timeoutMs: 2_000 });
    if (info.fwmark && info.peers.some((p) => p.allowedIps.some((a) => a.cidr === 0))) {
      await removeDefaultRules(info.fwmark);
    }
  } catch {
    // daemon gone or unreachable: nothing to read back
  }
  try {
    if (await linkExists(ifname)) await delLink(ifname);
  } catch (e) {
    fail('up', `cleanup of ${ifname} failed: ${errorMessage(e)}`);
  }
}

/** `down <ifname | file.conf>`: deletes the link; the daemon exits when its link goes. */
export async function cmdDown(args: string[]): Promise<number> {
  if (args.length !== 1 || args[0]!.startsWith('-')) {
    fail('down', 'usage: wireguard-ts down <ifname | file.conf>');
    return 2;
  }
  let ifname: string;
  try {
    ifname = interfaceNameFor(args[0]!);
  } catch (e) {
    fail('down', errorMessage(e));
    return 2;
  }
  try {
    if (!(await linkExists(ifname))) throw new WgError('ERR_SYSTEM', `no such interface ${ifname}`);
    // As wg-quick: never delete a link that is not a WireGuard interface (e.g. `down eth0`).
    if (!(await isUapiLive(ifname))) {
      throw new WgError(
        'ERR_SYSTEM',
        `\`${ifname}' is not a WireGuard interface (no live UAPI socket)`,
      );
    }
    try {
      const info = await uapiGet(ifname, { timeoutMs: 2_000 });
      if (info.fwmark && info.peers.some((p) => p.allowedIps.some((a) => a.cidr === 0))) {
        await removeDefaultRules(info.fwmark);
      }
    } catch {
      // not served by a userspace daemon we can reach: just delete the link
    }
    await delLink(ifname);
  } catch (e) {
    fail('down', errorMessage(e));
    return 1;
  }
  // The daemon removes its socket as it exits; clear a stale one if it did not.
  const path = socketPath(ifname);
  const gone = await waitFor(async () => !(await isUapiLive(ifname)), 3_000);
  if (gone) {
    try {
      unlinkSync(path);
    } catch {
      // already removed by the daemon
    }
  }
  return 0;
}
