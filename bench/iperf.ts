/**
 * iperf3 runs and the parsing of their `--json` reports. Rates are the receiver's: for TCP what
 * arrived, for UDP what was delivered (the sender's rate says nothing when 90% is lost).
 */
import { WgError } from '../src/errors.js';

export interface TcpResult {
  readonly gbps: number;
  readonly retransmits: number;
}

export interface UdpResult {
  /** Delivered (receiver-side) rate. */
  readonly gbps: number;
  readonly sentGbps: number;
  readonly lossPercent: number;
}

interface IperfSum {
  readonly bits_per_second?: number;
  readonly retransmits?: number;
  readonly lost_percent?: number;
}

interface IperfReport {
  readonly error?: string;
  readonly end?: { readonly sum_sent?: IperfSum; readonly sum_received?: IperfSum };
}

function parseReport(text: string): IperfReport {
  let report: IperfReport;
  try {
    report = JSON.parse(text) as IperfReport;
  } catch {
    throw new WgError('ERR_SYSTEM', `iperf3: unparsable JSON report (${text.slice(0, 80).trim()})`);
  }
  if (report.error) throw new WgError('ERR_SYSTEM', `iperf3: ${report.error}`);
  return report;
}

function rate(sum: IperfSum | undefined, what: string): number {
  const bps = sum?.bits_per_second;
  if (typeof bps !== 'number' || !Number.isFinite(bps)) {
    throw new WgError('ERR_SYSTEM', `iperf3: report has no ${what} rate`);
  }
  return bps / 1e9;
}

export function parseTcpReport(text: string): TcpResult {
  const end = parseReport(text).end;
  return {
    gbps: rate(end?.sum_received, 'received'),
    retransmits: end?.sum_sent?.retransmits ?? 0,
  };
}

export function parseUdpReport(text: string): UdpResult {
  const end = parseReport(text).end;
  return {
    gbps: rate(end?.sum_received, 'received'),
    sentGbps: rate(end?.sum_sent, 'sent'),
    lossPercent: end?.sum_received?.lost_percent ?? Number.NaN,
  };
}

/** Client arguments for one run against `server` (the server runs with `iperf3 -s`). */
export function tcpArgs(server: string, durationS: number, streams: number): string[] {
  return ['-c', server, '-t', String(durationS), '-P', String(streams), '--json'];
}

/**
 * UDP at full rate (`-b 0`), datagrams sized to fill the inner MTU exactly so nothing is
 * fragmented, with a 2 MB socket buffer so the receiver's buffer is not the only bottleneck.
 */
export function udpArgs(server: string, durationS: number, mtu: number): string[] {
  const payload = mtu - 28;
  return [
    '-c',
    server,
    '-u',
    '-b',
    '0',
    '-l',
    String(payload),
    '-w',
    '2M',
    '-t',
    String(durationS),
    '--json',
  ];
}
