/**
 * Order statistics for benchmark samples. Medians of repeats are what the report shows: on a
 * shared 2-core machine a mean is dragged by one noisy run, a median is not.
 */

/** The p-th percentile (0..100) by linear interpolation between closest ranks; NaN if empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (Math.min(Math.max(p, 0), 100) / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** Median of the finite values only: a failed measurement (NaN) must not poison the others. */
export function medianOfFinite(values: readonly number[]): number {
  return median(values.filter((v) => Number.isFinite(v)));
}
