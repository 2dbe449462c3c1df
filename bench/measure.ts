/**
 * One repeat of one case: iperf3 TCP with 1 and 4 streams, UDP at full rate, RTT, and the CPU
 * the daemons used meanwhile. A failing measurement is recorded as an error of the repeat and
 * the others still run, so one hiccup does not cost the whole case.
 */
import type { Lab, Netns } from '../src/lab/lab.js';
import type { Daemon } from '../src/lab/daemon.js';
import { parseTcpReport, parseUdpReport, tcpArgs, udpArgs } from './iperf.js';
import { cpuSeconds, peakRssMiB } from './proc-stats.js';
import type { DaemonUsage, RepeatResult } from './results.js';
import { parsePingTimes, pingArgs, rttCount, summarizeRtt, type RttResult } from './rtt.js';
import { RTT_PORT, RTT_PROBE_JS, hasCommand } from './topology.js';

export interface MeasureTarget {
  readonly lab: Lab;
  /** The client side (iperf3 client, pings). */
  readonly ns: Netns;
  /** The address of namespace b to measure against: underlay or tunnel. */
  readonly server: string;
  readonly daemons: readonly Daemon[];
  readonly durationS: number;
  readonly mtu: number;
  readonly pingIntervalMs: number;
  readonly log: (line: string) => void;
}

/** Slack for iperf3's own connection setup and result exchange, on top of the test time. */
const IPERF_SLACK_MS = 30_000;

async function iperf(t: MeasureTarget, args: string[]): Promise<string> {
  const r = await t.lab.tryExec(t.ns, 'iperf3', args, {
    timeoutMs: t.durationS * 1000 + IPERF_SLACK_MS,
  });
  // iperf3 --json prints its report (with an "error" field) even when it fails.
  if (r.stdout.trim() === '') throw new Error(`iperf3 exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

async function measureRtt(t: MeasureTarget): Promise<RttResult> {
  const count = rttCount(t.durationS, t.pingIntervalMs);
  const timeoutMs = count * t.pingIntervalMs * 2 + 10_000;
  if (hasCommand('ping')) {
    const r = await t.lab.tryExec(t.ns, 'ping', pingArgs(t.server, count, t.pingIntervalMs), {
      timeoutMs,
    });
    return summarizeRtt('icmp', count, parsePingTimes(r.stdout));
  }
  const r = await t.lab.exec(
    t.ns,
    process.execPath,
    [RTT_PROBE_JS, 'probe', t.server, String(RTT_PORT), String(count), String(t.pingIntervalMs)],
    { timeoutMs },
  );
  const out = JSON.parse(r.stdout) as { sent: number; timesMs: number[] };
  return summarizeRtt('udp-probe', out.sent, out.timesMs);
}

async function attempt<T>(
  what: string,
  errors: string[],
  t: MeasureTarget,
  f: () => Promise<T>,
): Promise<T | null> {
  try {
    return await f();
  } catch (err) {
    const line = `${what}: ${(err as Error).message.split('\n')[0]}`;
    errors.push(line);
    t.log(`    ${line}`);
    return null;
  }
}

export async function measureRepeat(t: MeasureTarget): Promise<RepeatResult> {
  const errors: string[] = [];
  const cpu0 = t.daemons.map((d) => cpuSeconds(d.pid));
  const tcp1 = await attempt('TCP 1 stream', errors, t, async () =>
    parseTcpReport(await iperf(t, tcpArgs(t.server, t.durationS, 1))),
  );
  const tcp4 = await attempt('TCP 4 streams', errors, t, async () =>
    parseTcpReport(await iperf(t, tcpArgs(t.server, t.durationS, 4))),
  );
  const udp = await attempt('UDP', errors, t, async () =>
    parseUdpReport(await iperf(t, udpArgs(t.server, t.durationS, t.mtu))),
  );
  const rtt = await attempt('RTT', errors, t, () => measureRtt(t));
  const daemons: DaemonUsage[] = t.daemons.map((d, i) => ({
    side: i === 0 ? 'a' : 'b',
    impl: d.impl,
    cpuSeconds: cpuSeconds(d.pid) - cpu0[i]!,
    peakRssMiB: peakRssMiB(d.pid),
  }));
  for (const d of t.daemons) {
    if (!d.alive())
      errors.push(`${d.impl} daemon ${d.ifname} died: ${d.log().trim().split('\n').pop() ?? ''}`);
  }
  return { tcp1, tcp4, udp, rtt, daemons, errors };
}
