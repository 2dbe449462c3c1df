/**
 * The shape of a benchmark run's results (also the JSON file's schema) and the reduction of
 * repeats to medians.
 */
import type { CaseName } from './options.js';
import type { TcpResult, UdpResult } from './iperf.js';
import type { RttMethod, RttResult } from './rtt.js';
import { medianOfFinite } from './stats.js';

/** One daemon's resource use during one repeat (CPU) or the whole case (peak RSS). */
export interface DaemonUsage {
  readonly side: 'a' | 'b';
  readonly impl: 'go' | 'ts';
  readonly cpuSeconds: number;
  readonly peakRssMiB: number;
}

export interface RepeatResult {
  readonly tcp1: TcpResult | null;
  readonly tcp4: TcpResult | null;
  readonly udp: UdpResult | null;
  readonly rtt: RttResult | null;
  readonly daemons: readonly DaemonUsage[];
  /** Measurements of this repeat that failed, one line each. */
  readonly errors: readonly string[];
}

/** Medians over the repeats; NaN (null in JSON) where no repeat produced the figure. */
export interface CaseSummary {
  readonly tcp1Gbps: number;
  readonly tcp1Retransmits: number;
  readonly tcp4Gbps: number;
  readonly udpGbps: number;
  readonly udpLossPercent: number;
  readonly rttMethod: RttMethod | null;
  readonly rttMedianMs: number;
  readonly rttP99Ms: number;
  /** Per daemon: median CPU seconds per repeat, peak RSS over the case. */
  readonly daemons: readonly DaemonUsage[];
  /**
   * Both daemons' CPU seconds per Gbit delivered (TCP 1 + TCP 4 + UDP runs of a repeat): the
   * cost of the traffic, comparable between implementations that move different amounts.
   */
  readonly cpuSecondsPerGbit: number;
}

export type CaseStatus = 'ok' | 'skipped' | 'failed';

export interface CaseResult {
  readonly name: CaseName;
  readonly label: string;
  readonly status: CaseStatus;
  /** Why a case was skipped or failed. */
  readonly note: string | null;
  readonly repeats: readonly RepeatResult[];
  readonly summary: CaseSummary | null;
}

export interface EncryptionProof {
  readonly caseName: CaseName;
  readonly marker: string;
  /** The marker arrived at the far end of the tunnel (so it really was sent through it). */
  readonly delivered: boolean;
  /** The marker's bytes appear somewhere in the underlay capture. */
  readonly markerOnWire: boolean;
  /** Control run without the tunnel: the same capture does see a plaintext marker. */
  readonly controlMarkerOnWire: boolean | null;
  readonly packets: number;
  readonly wireguardPackets: number;
  readonly wireguardByType: Readonly<Record<string, number>>;
  readonly otherIpPackets: number;
  readonly otherIpSamples: readonly string[];
  readonly linkControlFrames: number;
  /** delivered, marker absent, control saw it, and nothing but WireGuard UDP carried IP. */
  readonly passed: boolean;
}

export interface BenchReport {
  readonly startedAt: string;
  readonly host: { readonly cpus: number; readonly kernel: string; readonly node: string };
  readonly versions: Readonly<Record<string, string>>;
  readonly options: {
    readonly durationS: number;
    readonly repeat: number;
    readonly only: readonly CaseName[];
    /** The --wireguard-go path; null: wireguard-go from PATH. */
    readonly wireguardGo: string | null;
    readonly workers: number | null;
    readonly mtu: number;
    readonly pingIntervalMs: number;
  };
  readonly cases: readonly CaseResult[];
  readonly proof: EncryptionProof | null;
  readonly proofNote: string | null;
}

function cpuPerGbit(r: RepeatResult, durationS: number): number {
  if (r.daemons.length === 0) return Number.NaN;
  const cpu = r.daemons.reduce((a, d) => a + d.cpuSeconds, 0);
  const gbit = ((r.tcp1?.gbps ?? 0) + (r.tcp4?.gbps ?? 0) + (r.udp?.gbps ?? 0)) * durationS;
  return gbit > 0 ? cpu / gbit : Number.NaN;
}

/** Reduces repeats to medians; `durationS` is each iperf3 run's length. */
export function summarize(repeats: readonly RepeatResult[], durationS: number): CaseSummary {
  const pick = (f: (r: RepeatResult) => number | undefined): number =>
    medianOfFinite(repeats.map((r) => f(r) ?? Number.NaN));
  const first = repeats[0]?.daemons ?? [];
  const daemons = first.map((d, i) => ({
    side: d.side,
    impl: d.impl,
    cpuSeconds: pick((r) => r.daemons[i]?.cpuSeconds),
    // Peak RSS is a high-water mark over the daemon's life: the last repeat holds the case's peak.
    peakRssMiB: repeats[repeats.length - 1]?.daemons[i]?.peakRssMiB ?? Number.NaN,
  }));
  return {
    tcp1Gbps: pick((r) => r.tcp1?.gbps),
    tcp1Retransmits: pick((r) => r.tcp1?.retransmits),
    tcp4Gbps: pick((r) => r.tcp4?.gbps),
    udpGbps: pick((r) => r.udp?.gbps),
    udpLossPercent: pick((r) => r.udp?.lossPercent),
    rttMethod: repeats.find((r) => r.rtt)?.rtt?.method ?? null,
    rttMedianMs: pick((r) => r.rtt?.medianMs),
    rttP99Ms: pick((r) => r.rtt?.p99Ms),
    daemons,
    cpuSecondsPerGbit: pick((r) => cpuPerGbit(r, durationS)),
  };
}

/** JSON with NaN and Infinity written as null (JSON.stringify would do the same silently). */
export function toJson(report: BenchReport): string {
  return (
    JSON.stringify(
      report,
      (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v),
      2,
    ) + '\n'
  );
}
