/**
 * Process and socket gauges for hardening tests and the soak: a daemon's RSS, open file
 * descriptors and CPU time from /proc, the kernel's UDP receive-buffer drops inside a namespace
 * (datagrams the daemon never saw), and the total of a wireguard-ts `stats=1` drop counters.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { Lab, Netns } from './lab.js';

/** Resident set size in KiB (VmRSS), or 0 when the process is gone. */
export function rssKiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Number of open file descriptors (entries of /proc/<pid>/fd). */
export function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

/** User + system CPU seconds used so far (all threads). */
export function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

/** UDP RcvbufErrors (IPv4 + IPv6) inside `ns`: datagrams dropped before any reader saw them. */
export async function udpRcvbufErrors(lab: Lab, ns: Netns): Promise<number> {
  let total = 0;
  for (const file of ['/proc/net/snmp', '/proc/net/snmp6']) {
    const r = await lab.tryExec(ns, 'cat', [file]);
    const lines = r.stdout.split('\n');
    const head = lines.find((l) => l.startsWith('Udp: ') && /RcvbufErrors/.test(l));
    const vals = lines.find((l) => l.startsWith('Udp: ') && /^Udp: \d/.test(l));
    if (head && vals) {
      const i = head.split(/\s+/).indexOf('RcvbufErrors');
      total += Number(vals.split(/\s+/)[i]);
    }
    const v6 = /Udp6RcvbufErrors\s+(\d+)/.exec(r.stdout);
    if (v6) total += Number(v6[1]);
  }
  return total;
}

/**
 * Sum of the `drop_*` counters of a `stats=1` reply for what the daemon read and dropped itself:
 * `drop_udp_receive_queue` (datagrams the kernel dropped before the daemon could read them) is
 * left out, so it can be compared with the namespace's own UDP counters.
 */
export function dropTotal(stats: ReadonlyMap<string, number>): number {
  let s = 0;
  for (const [k, v] of stats) if (k.startsWith('drop_') && k !== 'drop_udp_receive_queue') s += v;
  return s;
}

/** Per-counter difference `after - before` of two `stats=1` replies (only non-zero ones). */
export function statsDelta(
  before: ReadonlyMap<string, number>,
  after: ReadonlyMap<string, number>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of after) {
    const d = v - (before.get(k) ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}
