/**
 * How long an attempt may wait before it is hedged: the service's own recent latency, so that the
 * delay follows the service (a 2 ms API and a 400 ms report generator need different ones).
 *
 * "The Tail at Scale" (Dean & Barroso) hedges after the 95th-percentile expected latency, which
 * costs about 5 % more requests. We wait p95 × 1.5, so that a service doing nothing wrong hedges a
 * few percent at most, and an attempt still waiting after that long is most likely stuck.
 */

import { bucketValueMs, LATENCY_BUCKET_COUNT, latencyBucket } from "../stats/latencyBuckets.ts";
import { requireNumber } from "./options.ts";

/** The latency percentile the delay is derived from. */
export const HEDGE_QUANTILE = 0.95;
/** The delay is the percentile times this. */
export const HEDGE_FACTOR = 1.5;
/** With fewer samples than this there is no percentile worth the name: the no-data delay applies. */
export const HEDGE_MIN_SAMPLES = 20;
/** The delay while there is no data (clamped to min..max): a guess that is long for most APIs. */
export const HEDGE_NO_DATA_DELAY_MS = 100;
/** Successful attempts the estimate looks at: the last half-window to whole window of them. */
const WINDOW_SAMPLES = 1_000;
/** The delay is recomputed every this many samples (one pass over the buckets). */
const RECOMPUTE_EVERY = 32;

export interface HedgeDelaySettings {
  /** A fixed delay (ms), or null: derived from the recent latency. */
  delayMs: number | null;
  minDelayMs: number;
  maxDelayMs: number;
}

/**
 * The hedge delay for a percentile of recent latency (null: no data yet). Pure.
 *
 * A fixed delay is used as it is. Otherwise percentile × {@link HEDGE_FACTOR}, or
 * {@link HEDGE_NO_DATA_DELAY_MS} without data, within [minDelayMs, maxDelayMs], rounded up to two
 * significant digits ({@link roundDelayMs}).
 */
export function hedgeDelayMs(percentileMs: number | null, settings: HedgeDelaySettings): number {
  if (settings.delayMs !== null) return roundDelayMs(settings.delayMs);
  const raw = percentileMs === null ? HEDGE_NO_DATA_DELAY_MS : percentileMs * HEDGE_FACTOR;
  const max = Math.max(settings.minDelayMs, settings.maxDelayMs);
  return roundDelayMs(Math.min(max, Math.max(settings.minDelayMs, raw)));
}

/**
 * `ms` rounded up to two significant digits, at least 1 (10–99 ms in 1 ms steps, 100–990 in 10 ms
 * steps…). Hedge timers share one deadline list per distinct delay (see DeadlineList): rounding
 * keeps the lists few (about 90 per power of ten: 331 from 1 ms to 60 s) while moving the delay by at most 10 %.
 */
export function roundDelayMs(ms: number): number {
  if (!(ms > 1)) return 1;
  const step = 10 ** Math.max(0, Math.floor(Math.log10(ms)) - 1);
  return Math.ceil(ms / step - 1e-9) * step;
}

/**
 * The hedge delay of one service, learnt from the latency of its successful attempts.
 *
 * Samples go into two generations of log-scale latency buckets (the scale of the traffic stats);
 * when the current one holds half a window it becomes the previous one. The percentile reads both,
 * so it covers the last 500 to 1,000 successful attempts whatever the traffic rate, and recording
 * costs a bucket lookup and an increment (no clock, no allocation).
 */
export class HedgeDelay {
  private settings: HedgeDelaySettings;
  private current = new Uint32Array(LATENCY_BUCKET_COUNT);
  private previous = new Uint32Array(LATENCY_BUCKET_COUNT);
  private currentCount = 0;
  private previousCount = 0;
  private sinceRecompute = 0;
  private delay: number;

  constructor(settings: HedgeDelaySettings) {
    this.settings = checked(settings);
    this.delay = hedgeDelayMs(null, this.settings);
  }

  /** The delay now, in ms (rounded: see {@link roundDelayMs}). */
  get delayMs(): number {
    return this.delay;
  }

  /** Samples the estimate reads now. */
  get samples(): number {
    return this.currentCount + this.previousCount;
  }

  /** New settings; the samples are kept. */
  configure(settings: HedgeDelaySettings): void {
    this.settings = checked(settings);
    this.recompute();
  }

  /** One successful attempt's latency (time to its response head). */
  record(latencyMs: number): void {
    this.current[latencyBucket(latencyMs)]!++;
    this.currentCount++;
    if (this.currentCount >= WINDOW_SAMPLES / 2) {
      const recycled = this.previous;
      recycled.fill(0);
      this.previous = this.current;
      this.previousCount = this.currentCount;
      this.current = recycled;
      this.currentCount = 0;
    }
    if (++this.sinceRecompute >= RECOMPUTE_EVERY || this.samples === HEDGE_MIN_SAMPLES) this.recompute();
  }

  /** The percentile of the samples, or null with fewer than {@link HEDGE_MIN_SAMPLES}. */
  percentileMs(): number | null {
    const total = this.samples;
    if (total < HEDGE_MIN_SAMPLES) return null;
    const rank = Math.max(1, Math.ceil(HEDGE_QUANTILE * total));
    let seen = 0;
    for (let bucket = 0; bucket < LATENCY_BUCKET_COUNT; bucket++) {
      seen += this.current[bucket]! + this.previous[bucket]!;
      if (seen >= rank) return bucketValueMs(bucket);
    }
    return bucketValueMs(LATENCY_BUCKET_COUNT - 1);
  }

  private recompute(): void {
    this.sinceRecompute = 0;
    this.delay = hedgeDelayMs(this.percentileMs(), this.settings);
  }
}

function checked(settings: HedgeDelaySettings): HedgeDelaySettings {
  requireNumber("HedgeDelay", "minDelayMs", settings.minDelayMs, { min: 0 });
  requireNumber("HedgeDelay", "maxDelayMs", settings.maxDelayMs, { min: 0 });
  if (settings.delayMs !== null) requireNumber("HedgeDelay", "delayMs", settings.delayMs, { min: 0 });
  return settings;
}
