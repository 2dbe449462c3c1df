/**
 * The text report: one table row per case, then ratios against the wireguard-go pair, then the
 * encryption proof. Figures are medians over repeats.
 */
import { DEBIAN_WIREGUARD_GO } from './options.js';
import type { BenchReport, CaseResult, CaseSummary, EncryptionProof } from './results.js';

function fmt(v: number, digits: number): string {
  return Number.isFinite(v) ? v.toFixed(digits) : '-';
}

function daemonCell(s: CaseSummary, what: 'cpu' | 'rss'): string {
  if (s.daemons.length === 0) return '-';
  return s.daemons
    .map((d) => (what === 'cpu' ? fmt(d.cpuSeconds, 1) : fmt(d.peakRssMiB, 0)))
    .join('/');
}

const COLUMNS = [
  'case',
  'TCP1 Gb/s',
  'retr',
  'TCP4 Gb/s',
  'UDP Gb/s',
  'loss %',
  'RTT med ms',
  'RTT p99 ms',
  'CPU s a/b',
  'RSS MiB a/b',
  'CPU s/Gbit',
] as const;

function row(c: CaseResult): string[] {
  const s = c.summary;
  if (c.status !== 'ok' || !s) return [c.label, `${c.status}: ${c.note ?? ''}`];
  return [
    c.label,
    fmt(s.tcp1Gbps, 3),
    fmt(s.tcp1Retransmits, 0),
    fmt(s.tcp4Gbps, 3),
    fmt(s.udpGbps, 3),
    fmt(s.udpLossPercent, 1),
    fmt(s.rttMedianMs, 3),
    fmt(s.rttP99Ms, 3),
    daemonCell(s, 'cpu'),
    daemonCell(s, 'rss'),
    fmt(s.cpuSecondsPerGbit, 2),
  ];
}

export function formatTable(cases: readonly CaseResult[]): string {
  const rows = cases.map(row);
  const widths = COLUMNS.map((h, i) =>
    Math.max(h.length, ...rows.filter((r) => r.length === COLUMNS.length).map((r) => r[i]!.length)),
  );
  const line = (cells: readonly string[]): string =>
    cells.length === COLUMNS.length
      ? cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')
      : `${cells[0]!.padEnd(widths[0]!)}  ${cells[1]}`;
  const header = line(COLUMNS);
  return [header, '-'.repeat(header.length), ...rows.map(line)].join('\n');
}

/** Ratios of each case to the wireguard-go pair (x > 1 means faster, or more RTT/CPU). */
export function formatRatios(cases: readonly CaseResult[]): string {
  const go = cases.find((c) => c.name === 'go' && c.status === 'ok')?.summary;
  if (!go) return 'Ratios against wireguard-go: not available (the go case did not run).';
  const lines = ['Ratios against wireguard-go (case / go):'];
  for (const c of cases) {
    if (c.name === 'go' || c.status !== 'ok' || !c.summary) continue;
    const s = c.summary;
    const r = (a: number, b: number): string =>
      Number.isFinite(a / b) ? `${(a / b).toFixed(2)}x` : '-';
    const parts = [
      `TCP1 ${r(s.tcp1Gbps, go.tcp1Gbps)}`,
      `TCP4 ${r(s.tcp4Gbps, go.tcp4Gbps)}`,
      `UDP delivered ${r(s.udpGbps, go.udpGbps)}`,
      `RTT median ${r(s.rttMedianMs, go.rttMedianMs)}`,
    ];
    if (s.daemons.length > 0)
      parts.push(`CPU per Gbit ${r(s.cpuSecondsPerGbit, go.cpuSecondsPerGbit)}`);
    lines.push(`  ${c.label.padEnd(30)} ${parts.join(', ')}`);
  }
  if (lines.length === 1) lines.push('  (no other case ran)');
  return lines.join('\n');
}

export function formatProof(proof: EncryptionProof | null, note: string | null): string {
  if (!proof) return `Encryption proof: not run${note ? ` (${note})` : ''}.`;
  const t = proof.wireguardByType;
  const lines = [
    `Encryption proof (${proof.caseName}: tcpdump on the underlay veth while a marker crosses the tunnel):`,
    `  marker delivered through the tunnel: ${proof.delivered ? 'yes' : 'NO'}`,
    `  marker bytes on the wire: ${proof.markerOnWire ? 'YES (leak)' : 'never'}`,
    `  control without the tunnel sees the marker: ${proof.controlMarkerOnWire === null ? 'not run' : proof.controlMarkerOnWire ? 'yes (capture works)' : 'NO (capture broken?)'}`,
    `  ${proof.packets} frames: ${proof.wireguardPackets} WireGuard UDP (init ${t['1']}, response ${t['2']}, cookie ${t['3']}, data ${t['4']}), ${proof.otherIpPackets} other IP, ${proof.linkControlFrames} ARP/link control`,
  ];
  if (proof.otherIpSamples.length > 0) lines.push(`  other IP: ${proof.otherIpSamples.join('; ')}`);
  lines.push(`  result: ${proof.passed ? 'PASS, only WireGuard UDP crossed the wire' : 'FAIL'}`);
  return lines.join('\n');
}

/** Which wireguard-go build each case ran: ratios mean little without it. */
export function formatBuilds(report: BenchReport): string {
  const v = report.versions;
  const lines = [
    `wireguard-go for go and mixed: ${v['wireguard-go'] ?? '-'} (${report.options.wireguardGo ?? 'wireguard-go on PATH'})`,
  ];
  if (v['wireguard-go-debian'] !== undefined) {
    lines.push(`wireguard-go for go-debian: ${v['wireguard-go-debian']} (${DEBIAN_WIREGUARD_GO})`);
  }
  lines.push(`wireguard-ts ${v['wireguard-ts'] ?? '-'}, ${v['iperf3'] ?? 'iperf3 -'}`);
  return lines.join('\n');
}

export function formatReport(report: BenchReport): string {
  const o = report.options;
  const rttMethods = new Set(report.cases.map((c) => c.summary?.rttMethod).filter((m) => m));
  return [
    `wireguard-ts bench: ${o.durationS} s per run, ${o.repeat} repeat(s), medians; inner MTU ${o.mtu}; ` +
      `${report.host.cpus} CPUs, kernel ${report.host.kernel}, node ${report.host.node}`,
    formatBuilds(report),
    '',
    formatTable(report.cases),
    '',
    `RTT by ${[...rttMethods].join(', ') || '-'} every ${o.pingIntervalMs} ms; CPU seconds per repeat and peak RSS for daemon a (client side) / b.`,
    formatRatios(report.cases),
    '',
    formatProof(report.proof, report.proofNote),
  ].join('\n');
}
