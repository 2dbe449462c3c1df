/**
 * Round-trip times through the tunnel. ping (iputils) when it is installed: ICMP echo at the
 * bench's --ping-interval (10 ms by default), per-reply times parsed from its output. Without
 * ping, a UDP echo probe in Node (bench/rtt-probe.ts) measures the same path plus a little
 * user-space time on both ends; the report names the method, since the two are not comparable.
 */
import { median, percentile } from './stats.js';

export type RttMethod = 'icmp' | 'udp-probe';

export interface RttResult {
  readonly method: RttMethod;
  readonly sent: number;
  readonly received: number;
  readonly medianMs: number;
  readonly p99Ms: number;
}

/** Reply times in ms from ping's per-reply lines ("... time=0.123 ms"). */
export function parsePingTimes(text: string): number[] {
  const out: number[] = [];
  for (const m of text.matchAll(/time[=<]([\d.]+) ?ms/g)) out.push(Number(m[1]));
  return out;
}

export function summarizeRtt(
  method: RttMethod,
  sent: number,
  timesMs: readonly number[],
): RttResult {
  return {
    method,
    sent,
    received: timesMs.length,
    medianMs: median(timesMs),
    p99Ms: percentile(timesMs, 99),
  };
}

export function pingArgs(target: string, count: number, intervalMs: number): string[] {
  return ['-n', '-i', String(intervalMs / 1000), '-c', String(count), '-W', '1', target];
}

/** Probes for one repeat: as many as fit in --duration at the interval, 50 to 1000. */
export function rttCount(durationS: number, intervalMs: number): number {
  return Math.min(1000, Math.max(50, Math.floor((durationS * 1000) / intervalMs)));
}
