/**
 * The SVG bar chart of a run, written as a string (no browser, no dependency): one group of bars
 * per metric (TCP 1 stream, TCP 4 streams, UDP delivered), one bar per case, values on the bars.
 * The bare veth is often 20-40x faster than any tunnel, which would flatten the tunnel bars on a
 * linear axis, so the axis turns logarithmic when the values span more than 20x.
 */
import type { CaseResult } from './results.js';

const METRICS = [
  { key: 'tcp1Gbps', label: 'TCP, 1 stream' },
  { key: 'tcp4Gbps', label: 'TCP, 4 streams' },
  { key: 'udpGbps', label: 'UDP delivered' },
] as const;

const COLORS: Record<string, string> = {
  bare: '#9e9e9e',
  go: '#1f77b4',
  'go-debian': '#8fb9dc',
  ts: '#d62728',
  mixed: '#ff7f0e',
};

const W = 900;
const LEGEND_PER_ROW = 4;
const H = 480;
const M = { left: 70, right: 20, top: 50, bottom: 90 };

function esc(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

function valueLabel(v: number): string {
  return v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3);
}

export function renderSvg(cases: readonly CaseResult[], title: string): string {
  const shown = cases.filter((c) => c.status === 'ok' && c.summary);
  const values = shown.flatMap((c) => METRICS.map((m) => c.summary![m.key])).filter((v) => v > 0);
  const max = values.length > 0 ? Math.max(...values) : 1;
  const min = values.length > 0 ? Math.min(...values) : 1;
  const log = max / min > 20;
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  let lo: number;
  let hi: number;
  let ticks: number[];
  if (log) {
    lo = Math.floor(Math.log10(min));
    hi = Math.ceil(Math.log10(max));
    ticks = [];
    for (let e = lo; e <= hi; e++) ticks.push(10 ** e);
  } else {
    lo = 0;
    const step = 10 ** Math.floor(Math.log10(max / 2 || 1));
    hi = Math.ceil((max * 1.05) / step) * step;
    ticks = [];
    for (let t = 0; t <= hi + step / 2; t += step) ticks.push(t);
    if (ticks.length > 12) ticks = ticks.filter((_, i) => i % 2 === 0);
  }
  const y = (v: number): number => {
    const f = log ? (Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo || 1) : v / (hi || 1);
    return M.top + plotH * (1 - f);
  };
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="16">${esc(title)}</text>`,
  );
  for (const t of ticks) {
    const ty = y(t).toFixed(1);
    out.push(
      `<line x1="${M.left}" x2="${W - M.right}" y1="${ty}" y2="${ty}" stroke="#e0e0e0"/>`,
      `<text x="${M.left - 6}" y="${ty}" text-anchor="end" dominant-baseline="middle">${t}</text>`,
    );
  }
  out.push(
    `<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + plotH}" stroke="black"/>`,
    `<line x1="${M.left}" x2="${W - M.right}" y1="${M.top + plotH}" y2="${M.top + plotH}" stroke="black"/>`,
    `<text transform="translate(18 ${M.top + plotH / 2}) rotate(-90)" text-anchor="middle">Gbit/s${log ? ' (log scale)' : ''}</text>`,
  );
  const groupW = plotW / METRICS.length;
  const barW = Math.min(60, (groupW * 0.8) / Math.max(shown.length, 1));
  METRICS.forEach((m, gi) => {
    const gx = M.left + gi * groupW + (groupW - barW * shown.length) / 2;
    shown.forEach((c, ci) => {
      const v = c.summary![m.key];
      if (!Number.isFinite(v)) return;
      const x = gx + ci * barW;
      const top = y(v);
      const h = M.top + plotH - top;
      out.push(
        `<rect x="${(x + 2).toFixed(1)}" y="${top.toFixed(1)}" width="${(barW - 4).toFixed(1)}" height="${Math.max(h, 0).toFixed(1)}" fill="${COLORS[c.name] ?? '#555'}"><title>${esc(`${c.label}: ${v} Gbit/s`)}</title></rect>`,
        `<text x="${(x + barW / 2).toFixed(1)}" y="${(top - 4).toFixed(1)}" text-anchor="middle" font-size="11">${valueLabel(v)}</text>`,
      );
    });
    out.push(
      `<text x="${(M.left + gi * groupW + groupW / 2).toFixed(1)}" y="${M.top + plotH + 20}" text-anchor="middle" font-size="13">${esc(m.label)}</text>`,
    );
  });
  // Four legend entries fit a row; a fifth case (go-debian) starts a second row.
  const rows = Math.ceil(shown.length / LEGEND_PER_ROW);
  shown.forEach((c, i) => {
    const lx = M.left + (i % LEGEND_PER_ROW) * 210;
    const ly = H - (rows > 1 ? 44 : 30) + Math.floor(i / LEGEND_PER_ROW) * 22;
    out.push(
      `<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${COLORS[c.name] ?? '#555'}"/>`,
      `<text x="${lx + 18}" y="${ly}">${esc(c.label)}</text>`,
    );
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
