/**
 * A daemon's resource use from /proc: CPU seconds (utime + stime of all its threads, so a
 * worker pool counts in full) and peak resident memory (VmHWM).
 */
import { readFileSync } from 'node:fs';

/** Linux reports times in clock ticks; USER_HZ is 100 on every mainstream architecture. */
const CLOCK_TICKS_PER_S = 100;

/** utime + stime in seconds from the text of /proc/<pid>/stat. */
export function parseCpuSeconds(statText: string): number {
  // The command name (field 2) may contain spaces and parentheses: fields count from the last ')'.
  const rest = statText.slice(statText.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime is field 14 and stime field 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return (utime + stime) / CLOCK_TICKS_PER_S;
}

/** VmHWM in MiB from the text of /proc/<pid>/status; NaN when absent (a zombie). */
export function parsePeakRssMiB(statusText: string): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(statusText);
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

export function cpuSeconds(pid: number): number {
  try {
    return parseCpuSeconds(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return Number.NaN;
  }
}

export function peakRssMiB(pid: number): number {
  try {
    return parsePeakRssMiB(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return Number.NaN;
  }
}
