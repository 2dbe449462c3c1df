/**
 * Thin async wrappers over iproute2 (`ip`) for what `up`/`down` do to a link: addresses, MTU,
 * link state, routes and policy rules. Each call runs one command through exec.ts `run()`;
 * failures throw WgError('ERR_SYSTEM') with the command and ip's stderr.
 */
import { formatPrefix, type IpPrefix } from '../tunnel/ip.js';
import { run, type RunOptions } from './exec.js';

export interface IpOptions {
  /** Run inside this network namespace. */
  readonly netns?: string;
}

async function ip(args: readonly string[], opts: IpOptions = {}): Promise<string> {
  const runOpts: RunOptions = opts.netns ? { netns: opts.netns } : {};
  const { stdout } = await run('ip', args, runOpts);
  return stdout;
}

function familyFlag(text: string): '-4' | '-6' {
  return text.includes(':') ? '-6' : '-4';
}

export async function linkExists(dev: string, opts?: IpOptions): Promise<boolean> {
  try {
    await ip(['link', 'show', 'dev', dev], opts);
    return true;
  } catch {
    return false;
  }
}

/** `ip address add <text> dev <dev>`; text is `addr[/cidr]` as in the config file. */
export async function addAddress(dev: string, text: string, opts?: IpOptions): Promise<void> {
  await ip([familyFlag(text), 'address', 'add', text, 'dev', dev], opts);
}

export async function setMtu(dev: string, mtu: number, opts?: IpOptions): Promise<void> {
  await ip(['link', 'set', 'mtu', String(mtu), 'dev', dev], opts);
}

export async function setLinkUp(dev: string, opts?: IpOptions): Promise<void> {
  await ip(['link', 'set', 'up', 'dev', dev], opts);
}

export async function setLinkDown(dev: string, opts?: IpOptions): Promise<void> {
  await ip(['link', 'set', 'down', 'dev', dev], opts);
}

export async function delLink(dev: string, opts?: IpOptions): Promise<void> {
  await ip(['link', 'delete', 'dev', dev], opts);
}

/** The link's MTU, or null when the link does not exist. */
export async function linkMtu(dev: string, opts?: IpOptions): Promise<number | null> {
  try {
    const out = await ip(['link', 'show', 'dev', dev], opts);
    const m = /\smtu (\d+)/.exec(out);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

export async function addRoute(
  prefix: IpPrefix,
  dev: string,
  table?: number,
  opts?: IpOptions,
): Promise<void> {
  const args = [
    prefix.family === 6 ? '-6' : '-4',
    'route',
    'add',
    formatPrefix(prefix),
    'dev',
    dev,
  ];
  if (table !== undefined) args.push('table', String(table));
  await ip(args, opts);
}

/**
 * True when a route on `dev` already covers `prefix` (`ip route show dev X match P`, as wg-quick
 * checks), e.g. the connected route an interface address created.
 */
export async function routeCovers(
  prefix: IpPrefix,
  dev: string,
  opts?: IpOptions,
): Promise<boolean> {
  const fam = prefix.family === 6 ? '-6' : '-4';
  try {
    const out = await ip([fam, 'route', 'show', 'dev', dev, 'match', formatPrefix(prefix)], opts);
    return out.trim() !== '';
  } catch {
    return false;
  }
}

/** True when routing table `table` has any route in either family. */
export async function tableInUse(table: number, opts?: IpOptions): Promise<boolean> {
  for (const fam of ['-4', '-6']) {
    try {
      const out = await ip([fam, 'route', 'show', 'table', String(table)], opts);
      if (out.trim() !== '') return true;
    } catch {
      // a family without routes or support: nothing there
    }
  }
  return false;
}

/** `ip rule add <args...>` for one family. */
export async function addRule(
  family: 4 | 6,
  args: readonly string[],
  opts?: IpOptions,
): Promise<void> {
  await ip([`-${family}`, 'rule', 'add', ...args], opts);
}

/** Deletes every rule whose `ip rule show` line contains `needle`, with `ip rule delete <args>`. */
export async function deleteRulesMatching(
  family: 4 | 6,
  needle: string,
  delArgs: readonly string[],
  opts?: IpOptions,
): Promise<void> {
  for (let i = 0; i < 64; i++) {
    let out: string;
    try {
      out = await ip([`-${family}`, 'rule', 'show'], opts);
    } catch {
      return;
    }
    if (!out.includes(needle)) return;
    await ip([`-${family}`, 'rule', 'delete', ...delArgs], opts);
  }
}

/**
 * The MTU of the path to `address` (`ip route get`: the route's own mtu, else its device's), or
 * null when there is no route. wg-quick's rule for choosing the tunnel MTU uses this.
 */
export async function pathMtu(address: string, opts?: IpOptions): Promise<number | null> {
  let out: string;
  try {
    out = await ip(['route', 'get', address], opts);
  } catch {
    return null;
  }
  return mtuFromRouteLine(out, opts);
}

/** The MTU of the default route's first line, as wg-quick falls back to. */
export async function defaultRouteMtu(opts?: IpOptions): Promise<number | null> {
  let out: string;
  try {
    out = await ip(['route', 'show', 'default'], opts);
  } catch {
    return null;
  }
  const first = out.split('\n')[0] ?? '';
  if (first.trim() === '') return null;
  return mtuFromRouteLine(first, opts);
}

async function mtuFromRouteLine(line: string, opts?: IpOptions): Promise<number | null> {
  const m = /\bmtu (\d+)/.exec(line);
  if (m) return Number(m[1]);
  const d = /\bdev (\S+)/.exec(line);
  return d ? linkMtu(d[1]!, opts) : null;
}
