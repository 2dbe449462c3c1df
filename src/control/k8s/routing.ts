/**
 * Host routing for the mesh, as Calico does it: a dedicated table holding the remote pod CIDRs
 * (and, with host encryption, the remote node IPs) through the WireGuard device, and one ip rule
 * per family, `not fwmark M/M lookup T`, so everything except the daemon's own marked UDP
 * consults it. Same-node traffic never matches (our own pod CIDRs are `throw` routes). Keyless
 * Nodes get nothing (plaintext) or, under --strict, `unreachable` routes (fail-closed). The
 * API server and etcd ports toward control-plane nodes are exempted with higher-priority rules
 * pointing at `main`, as nodeCryptor does. Reconciled by diffing against the kernel's state.
 */
import { tunnelMtu } from '../mtu.js';
import { writeFile } from 'node:fs/promises';
import {
  formatAddress,
  formatPrefix,
  parsePrefix,
  type IpFamily,
  type IpPrefix,
} from '../../tunnel/ip.js';
import { run } from '../exec.js';
import type { MeshPlan } from './mesh-plan.js';
import { prefixText } from './prefix-text.js';
import type { PortRange } from './options.js';

export interface RoutingConfig {
  readonly ifname: string;
  readonly table: number;
  readonly fwmark: number;
  readonly rulePriority: number;
  readonly hostEncryption: boolean;
  readonly strict: boolean;
  readonly exemptPorts: readonly PortRange[];
}

export type RouteType = 'unicast' | 'unreachable' | 'throw';

export interface TableRoute {
  readonly dst: string;
  readonly type: RouteType;
  /** Preferred source for host routes (host encryption), so replies come back to our node IP. */
  readonly src?: string;
}

/** The routes table T should hold for this plan. Pure. */
export function desiredRoutes(plan: MeshPlan, cfg: RoutingConfig): TableRoute[] {
  const out = new Map<string, TableRoute>();
  const add = (r: TableRoute) => {
    if (!out.has(r.dst)) out.set(r.dst, r);
  };
  // Own pod CIDRs first: a remote Node claiming an overlapping CIDR must not capture local pods.
  for (const p of plan.throwPrefixes) add({ dst: prefixText(p), type: 'throw' });
  const srcOf = (f: IpFamily) => {
    const ip = plan.selfIps.find((p) => p.family === f);
    return ip ? formatAddress(ip.bytes) : undefined;
  };
  for (const peer of plan.peers) {
    for (const p of peer.podPrefixes) add({ dst: prefixText(p), type: 'unicast' });
    if (cfg.hostEncryption) {
      for (const ip of peer.nodeIps) {
        const src = srcOf(ip.family);
        add(
          src
            ? { dst: formatPrefix(ip), type: 'unicast', src }
            : { dst: formatPrefix(ip), type: 'unicast' },
        );
      }
    }
  }
  if (cfg.strict) {
    for (const n of plan.keyless)
      for (const p of n.podPrefixes) add({ dst: prefixText(p), type: 'unreachable' });
  }
  return [...out.values()];
}

/** The exemption rules (ip rule selectors, without priority/table), in `ip rule show` form. */
export function desiredExemptRules(plan: MeshPlan, cfg: RoutingConfig): string[] {
  if (!cfg.hostEncryption) return [];
  const ports = cfg.exemptPorts.map((r) => (r.from === r.to ? `${r.from}` : `${r.from}-${r.to}`));
  const rules: string[] = [];
  for (const peer of plan.peers) {
    if (!peer.controlPlane) continue;
    for (const ip of peer.nodeIps) {
      for (const p of ports)
        rules.push(`from all to ${formatAddress(ip.bytes)} ipproto tcp dport ${p}`);
    }
  }
  // On a control-plane node, replies from its own API server and etcd stay plaintext too.
  if (plan.selfControlPlane) {
    for (const ip of plan.selfIps) {
      for (const p of ports) rules.push(`from ${formatAddress(ip.bytes)} ipproto tcp sport ${p}`);
    }
  }
  return rules;
}

function familyOfText(s: string): IpFamily {
  return s.includes(':') ? 6 : 4;
}

function familyOfRule(rule: string): IpFamily {
  const m = /(?:to|from) ([0-9a-fA-F:.]+)/.exec(rule.replace('from all', ''));
  return m ? familyOfText(m[1]!) : 4;
}

interface JsonRoute {
  type?: string;
  dst: string;
  dev?: string;
  prefsrc?: string;
}

async function readTable(table: number, family: IpFamily): Promise<TableRoute[]> {
  let stdout: string;
  try {
    ({ stdout } = await run('ip', [`-${family}`, '-j', 'route', 'show', 'table', String(table)]));
  } catch {
    return []; // "FIB table does not exist" until the first route is added
  }
  const routes = JSON.parse(stdout || '[]') as JsonRoute[];
  return routes.map((r) => {
    const dst = formatPrefix(parsePrefix(r.dst));
    const type = (r.type ?? 'unicast') as RouteType;
    return r.prefsrc ? { dst, type, src: r.prefsrc } : { dst, type };
  });
}

async function readRules(family: IpFamily, priority: number): Promise<string[]> {
  const { stdout } = await run('ip', [`-${family}`, 'rule', 'show', 'priority', String(priority)]);
  return stdout
    .split('\n')
    .map((l) => l.replace(/^\d+:\s*/, '').trim())
    .filter((l) => l);
}

export interface RoutingChange {
  readonly added: number;
  readonly removed: number;
}

/** The `ip` commands (per family) that take table T from `have` to `want`. Pure. */
export function routeCommands(
  have: readonly TableRoute[],
  want: readonly TableRoute[],
  cfg: RoutingConfig,
): { cmds: Record<IpFamily, string[]>; added: number; removed: number } {
  // Keyed by destination (one route per destination in table T): `route replace` turns a
  // route of another type or source into the wanted one, so only vanished ones are deleted.
  const wantBy = new Map(want.map((r) => [r.dst, r]));
  const haveBy = new Map(have.map((r) => [r.dst, r]));
  const cmds: Record<IpFamily, string[]> = { 4: [], 6: [] };
  let added = 0;
  let removed = 0;
  for (const r of have) {
    if (wantBy.has(r.dst)) continue;
    removed++;
    cmds[familyOfText(r.dst)].push(
      `route del ${r.type === 'unicast' ? '' : `${r.type} `}${r.dst} table ${cfg.table}`,
    );
  }
  for (const r of want) {
    const h = haveBy.get(r.dst);
    if (h && h.type === r.type && h.src === r.src) continue;
    added++;
    const dev = r.type === 'unicast' ? ` dev ${cfg.ifname}${r.src ? ` src ${r.src}` : ''}` : '';
    const type = r.type === 'unicast' ? '' : `${r.type} `;
    cmds[familyOfText(r.dst)].push(`route replace ${type}${r.dst}${dev} table ${cfg.table}`);
  }
  return { cmds, added, removed };
}

export class Routing {
  /** The table as our last apply left it; null = read it from the kernel next time. */
  private applied: TableRoute[] | null = null;

  constructor(private readonly cfg: RoutingConfig) {}

  /** The next apply reads the table from the kernel (periodic resync, after a reboot). */
  invalidate(): void {
    this.applied = null;
  }

  private get hexMark(): string {
    return `0x${this.cfg.fwmark.toString(16)}`;
  }

  /** Brings the device up with its MTU and sets the sysctls replies need. */
  async setupDevice(mtu: number): Promise<void> {
    await run('ip', ['link', 'set', 'dev', this.cfg.ifname, 'mtu', String(mtu), 'up']);
    // Decrypted packets arrive on the device from addresses whose reverse route may be elsewhere.
    await sysctl(`net/ipv4/conf/${this.cfg.ifname}/rp_filter`, '0');
    // Lets rp_filter take the fwmark into account, as Calico sets it.
    await sysctl('net/ipv4/conf/all/src_valid_mark', '1');
  }

  /** Makes table, rules and exemptions match the plan; returns what changed. */
  async apply(plan: MeshPlan): Promise<RoutingChange> {
    const want = desiredRoutes(plan, this.cfg);
    // Between resyncs the table is ours alone: diff against what we wrote, not a 55,000-route
    // dump per pod event.
    const have = this.applied ?? [
      ...(await readTable(this.cfg.table, 4)),
      ...(await readTable(this.cfg.table, 6)),
    ];
    this.applied = null;
    const { cmds, added, removed } = routeCommands(have, want, this.cfg);
    // Exemptions before the main rule, so API-server traffic never enters the tunnel.
    const exPrio = this.cfg.rulePriority - 1;
    const wantRules = desiredExemptRules(plan, this.cfg);
    for (const f of [4, 6] as const) {
      // Only our own kind of rule (`... lookup main`) at our priority is ours to remove.
      // IPv6 may be disabled: then there is nothing to remove (adding would fail loudly).
      const haveRules = (await readRules(f, exPrio).catch(() => [] as string[]))
        .filter((r) => r.endsWith(' lookup main'))
        .map((r) => r.slice(0, -' lookup main'.length));
      const mine = wantRules.filter((r) => familyOfRule(r) === f);
      for (const r of haveRules) {
        if (!mine.includes(r)) cmds[f].push(`rule del priority ${exPrio} ${r} table main`);
      }
      for (const r of mine) {
        if (!haveRules.includes(r)) cmds[f].push(`rule add priority ${exPrio} ${r} table main`);
      }
    }
    // One `ip -batch` per family: the family flag cannot be given per line.
    for (const f of [4, 6] as const) {
      if (cmds[f].length)
        await run('ip', [`-${f}`, '-batch', '-'], { input: `${cmds[f].join('\n')}\n` });
    }
    await this.ensureMainRule(want.some((r) => familyOfText(r.dst) === 6));
    this.applied = want;
    return { added, removed };
  }

  private mainRuleText(): string {
    return `not from all fwmark ${this.hexMark}/${this.hexMark} lookup ${this.cfg.table}`;
  }

  /** Added after the peers are configured (as Felix does), and kept across agent restarts. */
  async ensureMainRule(needV6 = true): Promise<void> {
    for (const f of [4, 6] as const) {
      // A host with IPv6 disabled has no IPv6 rules to hold; that is only an error if we need one.
      const rules = await readRules(f, this.cfg.rulePriority).catch((err: unknown) => {
        if (f === 6 && !needV6) return null;
        throw err;
      });
      if (rules === null || rules.includes(this.mainRuleText())) continue;
      await run('ip', [
        `-${f}`,
        'rule',
        'add',
        'not',
        'fwmark',
        `${this.hexMark}/${this.hexMark}`,
        'table',
        String(this.cfg.table),
        'priority',
        String(this.cfg.rulePriority),
      ]);
    }
  }

  /** Removes the rules and the table; the device goes with the daemon. */
  async teardown(): Promise<void> {
    this.applied = null;
    for (const f of [4, 6] as const) {
      for (const prio of [this.cfg.rulePriority, this.cfg.rulePriority - 1]) {
        const rules = await readRules(f, prio).catch(() => []);
        for (const r of rules) {
          const mine =
            prio === this.cfg.rulePriority ? r === this.mainRuleText() : r.endsWith('lookup main');
          if (mine)
            await run('ip', [
              `-${f}`,
              'rule',
              'del',
              'priority',
              String(prio),
              ...ruleArgs(r),
            ]).catch(() => undefined);
        }
      }
      await run('ip', [`-${f}`, 'route', 'flush', 'table', String(this.cfg.table)]).catch(
        () => undefined,
      );
    }
  }
}

/** `from all to X ipproto tcp dport P lookup main` → arguments `ip rule del` accepts. */
function ruleArgs(rule: string): string[] {
  return rule
    .replace(/lookup /, 'table ')
    .split(/\s+/)
    .filter((w) => w);
}

async function sysctl(path: string, value: string): Promise<void> {
  await writeFile(`/proc/sys/${path}`, value).catch(() => undefined);
}

/**
 * The MTU `auto` picks: the tunnel MTU (../mtu.ts) of the uplink, the link carrying our
 * InternalIP, else the default route's.
 */
export async function autoMtu(selfIps: readonly IpPrefix[]): Promise<number> {
  return tunnelMtu(await uplinkMtu(selfIps));
}

async function uplinkMtu(selfIps: readonly IpPrefix[]): Promise<number> {
  const { stdout } = await run('ip', ['-j', 'addr', 'show']);
  const links = JSON.parse(stdout) as Array<{
    ifname: string;
    mtu: number;
    addr_info?: Array<{ local: string }>;
  }>;
  const want = new Set(selfIps.map((p) => formatAddress(p.bytes)));
  const byAddr = links.find((l) => l.addr_info?.some((a) => want.has(a.local)));
  if (byAddr) return byAddr.mtu;
  const { stdout: r } = await run('ip', ['-j', 'route', 'show', 'default']).catch(() => ({
    stdout: '[]',
  }));
  const def = (JSON.parse(r || '[]') as Array<{ dev?: string }>)[0];
  return links.find((l) => l.ifname === def?.dev)?.mtu ?? 1500;
}
