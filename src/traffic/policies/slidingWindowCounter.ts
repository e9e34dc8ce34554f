/**
 * Counts events over a sliding time window in O(1) per call and constant memory: a ring of
 * fixed-width buckets plus running totals, instead of a list of timestamps to scan.
 *
 * The window slides in whole buckets: an event stops counting between `windowMs − bucketMs` and
 * `windowMs` after it happened. Several series (say requests and retries) share one ring so that
 * they always cover exactly the same span of time and can be compared.
 */
export class SlidingWindowCounter {
  readonly bucketMs: number;
  readonly bucketCount: number;
  private readonly series: number;
  /** `buckets[bucket * series + s]`. */
  private readonly buckets: Float64Array;
  private readonly totals: Float64Array;
  private head = 0;
  /** Index of the bucket `head` holds (time ÷ bucketMs), or -Infinity before the first event. */
  private headBucket = Number.NEGATIVE_INFINITY;

  /**
   * @param windowMs span counted (rounded up to whole buckets)
   * @param series number of independent counts kept per bucket
   * @param bucketMs bucket width, default 1 s (or the window itself when it is shorter)
   */
  constructor(windowMs: number, series: number, bucketMs = Math.min(1_000, windowMs)) {
    this.bucketMs = bucketMs;
    this.bucketCount = Math.max(1, Math.ceil(windowMs / bucketMs));
    this.series = series;
    this.buckets = new Float64Array(this.bucketCount * series);
    this.totals = new Float64Array(series);
  }

  /** Add `n` to series `s` at time `now` (ms). */
  add(s: number, now: number, n = 1): void {
    this.advance(now);
    this.buckets[this.head * this.series + s]! += n;
    this.totals[s]! += n;
  }

  /** The count of series `s` in the window that ends at `now`. */
  total(s: number, now: number): number {
    this.advance(now);
    return this.totals[s]!;
  }

  reset(): void {
    this.buckets.fill(0);
    this.totals.fill(0);
  }

  /**
   * Move the head to the bucket of `now`, emptying the buckets that fell out of the window. Costs
   * at most `bucketCount` steps however long the clock jumped. A clock that goes backwards (an
   * injected one) keeps counting into the current bucket rather than corrupting older ones.
   */
  private advance(now: number): void {
    const bucket = Math.floor(now / this.bucketMs);
    if (bucket <= this.headBucket) return;
    const steps = Math.min(bucket - this.headBucket, this.bucketCount);
    for (let i = 0; i < steps; i++) {
      this.head = (this.head + 1) % this.bucketCount;
      const base = this.head * this.series;
      for (let s = 0; s < this.series; s++) {
        this.totals[s]! -= this.buckets[base + s]!;
        this.buckets[base + s] = 0;
      }
    }
    this.headBucket = bucket;
  }
}
