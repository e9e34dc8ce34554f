/**
 * A fixed logarithmic latency scale: bucket i holds [MIN × GROWTH^i, MIN × GROWTH^(i+1)) ms and
 * is reported as its geometric middle, so any value between {@link MIN_LATENCY_MS} and
 * {@link MAX_LATENCY_MS} is read back within √GROWTH − 1 ≈ 2.5 % of itself. Percentiles then cost
 * one pass over the buckets, whatever the number of requests.
 */

export const MIN_LATENCY_MS = 0.1;
export const MAX_LATENCY_MS = 60_000;
const GROWTH = 1.05;
const INVERSE_LOG_GROWTH = 1 / Math.log(GROWTH);

/** Buckets on the scale; the first also takes faster values, the last slower ones. */
export const LATENCY_BUCKET_COUNT =
  Math.ceil(Math.log(MAX_LATENCY_MS / MIN_LATENCY_MS) * INVERSE_LOG_GROWTH) + 1;

/** The bucket a latency falls in (clamped to the scale; NaN and negatives go to the first). */
export function latencyBucket(latencyMs: number): number {
  if (!(latencyMs > MIN_LATENCY_MS)) return 0;
  const index = Math.floor(Math.log(latencyMs / MIN_LATENCY_MS) * INVERSE_LOG_GROWTH);
  return index < LATENCY_BUCKET_COUNT ? index : LATENCY_BUCKET_COUNT - 1;
}

/** The value a bucket stands for: its geometric middle. */
export function bucketValueMs(bucket: number): number {
  return MIN_LATENCY_MS * GROWTH ** (bucket + 0.5);
}

/**
 * The nearest-rank `quantile` (0..1] of the values counted in `counts`, or null when `total` is 0.
 * `total` must be the sum of `counts`.
 */
export function quantileMs(counts: ArrayLike<number>, total: number, quantile: number): number | null {
  if (total <= 0) return null;
  const rank = Math.max(1, Math.ceil(quantile * total));
  let seen = 0;
  for (let bucket = 0; bucket < LATENCY_BUCKET_COUNT; bucket++) {
    seen += counts[bucket]!;
    if (seen >= rank) return bucketValueMs(bucket);
  }
  return bucketValueMs(LATENCY_BUCKET_COUNT - 1);
}
