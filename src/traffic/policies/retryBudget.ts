import { monotonicNow, requireNumber } from "./options.ts";
import { SlidingWindowCounter } from "./slidingWindowCounter.ts";

export interface RetryBudgetOptions {
  /** Retries allowed per original request over the window (default 0.2: at most 20 % extra load). */
  ratio?: number;
  /** Window over which requests and retries are counted, in ms (default 10 000). */
  windowMs?: number;
  /**
   * Floor, as a rate: up to `minPerSecond × windowMs / 1000` retries are allowed per window
   * whatever the request count (default 5/s, so 50 per 10 s window), so a quiet service can still
   * retry its few failures.
   */
  minPerSecond?: number;
  /** Monotonic clock in ms (default `performance.now()`). */
  now?: () => number;
}

export interface RetryBudgetStats {
  /** Original requests counted in the current window. */
  requests: number;
  /** Retries granted in the current window. */
  retries: number;
  /** Retries refused in the current window. */
  refused: number;
  /** Retries the window allows in total now: max(ratio × requests, floor). */
  allowed: number;
}

const REQUESTS = 0;
const RETRIES = 1;
const REFUSED = 2;

/**
 * A retry budget: retries may add at most `ratio` of the original request load, over a sliding
 * window, with a floor for quiet services. It is what stops retries from turning a partial outage
 * into a metastable one (each layer retrying multiplies load at the bottom).
 *
 * A retry is charged the moment it is acquired, not when it is sent: retries sleeping in backoff
 * already count, so a burst of failures cannot acquire more retries than the budget while the
 * first ones wait (Envoy counts only active retries, envoy#30205).
 *
 * Every call is O(1): counts live in a ring of one-second buckets (see {@link SlidingWindowCounter}),
 * so the window slides in whole seconds.
 */
export class RetryBudget {
  readonly ratio: number;
  readonly windowMs: number;
  readonly minPerSecond: number;
  private readonly floor: number;
  private readonly now: () => number;
  private readonly counts: SlidingWindowCounter;

  constructor(options: RetryBudgetOptions = {}) {
    this.ratio = requireNumber("RetryBudget", "ratio", options.ratio ?? 0.2, { min: 0 });
    this.windowMs = requireNumber("RetryBudget", "windowMs", options.windowMs ?? 10_000, {
      min: 0,
      minExclusive: true,
    });
    this.minPerSecond = requireNumber("RetryBudget", "minPerSecond", options.minPerSecond ?? 5, { min: 0 });
    this.floor = (this.minPerSecond * this.windowMs) / 1_000;
    this.now = options.now ?? monotonicNow;
    this.counts = new SlidingWindowCounter(this.windowMs, 3);
  }

  /** Count one original request (not a retry). */
  recordRequest(): void {
    this.counts.add(REQUESTS, this.now());
  }

  /**
   * Ask for one retry. Returns true, and charges it to the window, if the retries already granted
   * in the window are fewer than max(ratio × requests in the window, floor); false otherwise (the
   * caller should fail the request instead of retrying).
   */
  tryAcquireRetry(): boolean {
    const now = this.now();
    const retries = this.counts.total(RETRIES, now);
    if (retries < this.allowedAt(now)) {
      this.counts.add(RETRIES, now);
      return true;
    }
    this.counts.add(REFUSED, now);
    return false;
  }

  stats(): RetryBudgetStats {
    const now = this.now();
    return {
      requests: this.counts.total(REQUESTS, now),
      retries: this.counts.total(RETRIES, now),
      refused: this.counts.total(REFUSED, now),
      allowed: this.allowedAt(now),
    };
  }

  private allowedAt(now: number): number {
    return Math.max(this.ratio * this.counts.total(REQUESTS, now), this.floor);
  }
}
