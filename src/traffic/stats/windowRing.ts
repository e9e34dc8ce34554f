import { LATENCY_BUCKET_COUNT, latencyBucket, quantileMs } from "./latencyBuckets.ts";

/** Seconds of history each series keeps: five minutes, the longest window decisions look at. */
export const RING_SECONDS = 300;

/** Totals over a window, as {@link WindowRing.sum} reports them. */
export interface WindowTotals {
  requests: number;
  errors: number;
  p50Ms: number | null;
  p99Ms: number | null;
}

/**
 * One second of a ring, as the data plane reports it to the controller: the second, its request
 * and error counts, and its latency histogram as flat [bucket, count, bucket, count, …] pairs.
 */
export type RingSecond = [second: number, requests: number, errors: number, latencies: number[]];

/** Shared scratch for {@link WindowRing.sum}: JavaScript runs one sum at a time. */
const scratchLatency = new Float64Array(LATENCY_BUCKET_COUNT);

/**
 * One series (a service, a release or an instance) as a ring of one-second buckets, each with a
 * request count, an error count and a latency histogram. All memory is allocated up front: a
 * sample costs a few typed-array writes, and a bucket is cleared when its second comes round again.
 */
export class WindowRing {
  /** The epoch second each slot holds, or -1 for a slot never written. */
  private readonly seconds = new Float64Array(RING_SECONDS).fill(-1);
  private readonly requests = new Uint32Array(RING_SECONDS);
  private readonly errors = new Uint32Array(RING_SECONDS);
  /** Slot s's histogram is latencies[s × LATENCY_BUCKET_COUNT ...]. */
  private readonly latencies = new Uint32Array(RING_SECONDS * LATENCY_BUCKET_COUNT);

  /** Counts one sample at `nowMs`. Samples older than the ring (time went backwards) are dropped. */
  /** `count` requests of that latency and outcome (more than 1: one sampled log line standing for several). */
  record(nowMs: number, latencyMs: number, isError: boolean, count = 1): void {
    const second = Math.floor(nowMs / 1000);
    const slot = slotOf(second);
    const held = this.seconds[slot]!;
    if (held !== second) {
      if (held > second) return;
      this.seconds[slot] = second;
      this.requests[slot] = 0;
      this.errors[slot] = 0;
      this.latencies.fill(0, slot * LATENCY_BUCKET_COUNT, (slot + 1) * LATENCY_BUCKET_COUNT);
    }
    this.requests[slot]! += count;
    if (isError) this.errors[slot]! += count;
    this.latencies[slot * LATENCY_BUCKET_COUNT + latencyBucket(latencyMs)]! += count;
  }

  /** Totals of the last `seconds` seconds up to and including the one of `nowMs` (at most {@link RING_SECONDS}). */
  sum(nowMs: number, seconds: number): WindowTotals {
    scratchLatency.fill(0);
    const { requests, errors } = this.accumulate(nowMs, seconds, scratchLatency);
    return {
      requests,
      errors,
      p50Ms: quantileMs(scratchLatency, requests, 0.5),
      p99Ms: quantileMs(scratchLatency, requests, 0.99),
    };
  }

  /**
   * Add the last `seconds` seconds (as {@link sum} reads them) to `latencies` and return the
   * request and error counts: how windows of several rings (one per data-plane worker) merge.
   */
  accumulate(nowMs: number, seconds: number, latencies: Float64Array): { requests: number; errors: number } {
    const current = Math.floor(nowMs / 1000);
    let requests = 0;
    let errors = 0;
    for (let second = current - seconds + 1; second <= current; second++) {
      const slot = slotOf(second);
      if (this.seconds[slot] !== second) continue;
      requests += this.requests[slot]!;
      errors += this.errors[slot]!;
      const offset = slot * LATENCY_BUCKET_COUNT;
      for (let bucket = 0; bucket < LATENCY_BUCKET_COUNT; bucket++)
        latencies[bucket]! += this.latencies[offset + bucket]!;
    }
    return { requests, errors };
  }

  /** The seconds in [`fromSecond`, `toSecond`] that hold samples (see {@link RingSecond}). */
  exportSeconds(fromSecond: number, toSecond: number): RingSecond[] {
    const out: RingSecond[] = [];
    for (let second = Math.max(fromSecond, toSecond - RING_SECONDS + 1); second <= toSecond; second++) {
      const slot = slotOf(second);
      if (this.seconds[slot] !== second || this.requests[slot] === 0) continue;
      const latencies: number[] = [];
      const offset = slot * LATENCY_BUCKET_COUNT;
      for (let bucket = 0; bucket < LATENCY_BUCKET_COUNT; bucket++) {
        const count = this.latencies[offset + bucket]!;
        if (count > 0) latencies.push(bucket, count);
      }
      out.push([second, this.requests[slot]!, this.errors[slot]!, latencies]);
    }
    return out;
  }

  /**
   * Replace one second with figures read elsewhere (a mirror of the data plane's ring). A second
   * older than the one the slot holds is ignored, like a late sample.
   */
  importSecond([second, requests, errors, latencies]: RingSecond): void {
    const slot = slotOf(second);
    if (this.seconds[slot]! > second) return;
    this.seconds[slot] = second;
    this.requests[slot] = requests;
    this.errors[slot] = errors;
    const offset = slot * LATENCY_BUCKET_COUNT;
    this.latencies.fill(0, offset, offset + LATENCY_BUCKET_COUNT);
    for (let i = 0; i + 1 < latencies.length; i += 2) {
      const bucket = latencies[i]!;
      if (bucket >= 0 && bucket < LATENCY_BUCKET_COUNT) this.latencies[offset + bucket] = latencies[i + 1]!;
    }
  }
}

function slotOf(second: number): number {
  const slot = second % RING_SECONDS;
  return slot < 0 ? slot + RING_SECONDS : slot;
}
