/**
 * Leveled logs in wireguard-go's line format, `LEVEL: (ifname) YYYY/MM/DD HH:MM:SS message`,
 * one line per event. LOG_LEVEL is error (default), info, debug (also `verbose`, wireguard-go's
 * most detailed level), or silent. Messages never carry key material: callers log short public-key labels only.
 */
import type { Logger } from '../tunnel/device.js';

export type LogLevel = 'silent' | 'error' | 'info' | 'debug';

const RANK: Record<LogLevel, number> = { silent: 0, error: 1, info: 2, debug: 3 };

/**
 * A LOG_LEVEL or --log-level name, or null when it names none. `verbose` is wireguard-go's most
 * detailed level, so it means debug here, in the daemon and the agent alike.
 */
export function logLevelNamed(v: string): LogLevel | null {
  switch (v.toLowerCase()) {
    case 'silent':
      return 'silent';
    case 'error':
      return 'error';
    case 'info':
      return 'info';
    case 'verbose':
    case 'debug':
      return 'debug';
    default:
      return null;
  }
}

/** The daemon's LOG_LEVEL: unset or unknown is error, as in wireguard-go. */
export function parseLogLevel(v: string | undefined): LogLevel {
  return logLevelNamed(v ?? '') ?? 'error';
}

function stamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}/${p(d.getMonth() + 1)}/${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function createLogger(
  level: LogLevel,
  ifname: string,
  write: (line: string) => void = (l) => process.stderr.write(l),
): Logger {
  const line = (lv: LogLevel, tag: string) => (msg: string) => {
    if (RANK[level] >= RANK[lv]) write(`${tag}: (${ifname}) ${stamp(new Date())} ${msg}\n`);
  };
  return {
    error: line('error', 'ERROR'),
    info: line('info', 'INFO'),
    debug: line('debug', 'DEBUG'),
  };
}
