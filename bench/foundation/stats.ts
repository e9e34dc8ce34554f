/**
 * Small-sample statistics for the benchmark tables.
 */

/** Distribution of one measurement over the trials that produced it. */
export interface Summary {
  n: number;
  min: number;
  p50: number;
  p95: number;
  max: number;
  mean: number;
}

/**
 * Nearest-rank percentile of already sorted values: the smallest value with at least `p`% of the
 * values at or below it. With 20 trials p95 is the 19th value, so it is a real observation, never
 * an interpolation between two.
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new Error("percentile of no values");
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

/** p50 / p95 / max (and friends) of `values`, or null when there are none. */
export function summarize(values: readonly number[]): Summary | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const sum = sorted.reduce((total, v) => total + v, 0);
  return {
    n: sorted.length,
    min: sorted[0]!,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    max: sorted[sorted.length - 1]!,
    mean: sum / sorted.length,
  };
}

/** The median of `values` (nearest rank), or null when there are none. */
export function median(values: readonly number[]): number | null {
  return summarize(values)?.p50 ?? null;
}
