import { monotonicNow, requireNumber } from "./options.ts";
import { SlidingWindowCounter } from "./slidingWindowCounter.ts";

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit (default 5). */
  failureThreshold?: number;
  /**
   * Share of failures over `windowMs` that opens the circuit, once at least `minimumVolume` calls
   * were seen in the window (default 0.5). Catches a dependency that fails every other call, which
   * never makes `failureThreshold` in a row.
   */
  failureRate?: number;
  /** Calls in the window below which `failureRate` is not judged (default 20). */
  minimumVolume?: number;
  /** Window for `failureRate`, in ms (default 10 000, sliding in 1 s buckets). */
  windowMs?: number;
  /** How long the circuit stays open before probing, in ms (default 5 000). */
  halfOpenAfterMs?: number;
  /**
   * Probes let through while half-open; that many successes close the circuit, one failure
   * reopens it (default 1). A probe that never reports back is written off after
   * `halfOpenAfterMs`, so a lost verdict cannot wedge the circuit half-open.
   */
  halfOpenMaxProbes?: number;
  /** Monotonic clock in ms (default `performance.now()`). */
  now?: () => number;
  /** Called on every state change (for events and metrics). */
  onStateChange?: (state: CircuitState) => void;
}

/** The circuit's state. Times are on the breaker's clock. */
export type CircuitState =
  | { name: "closed" }
  | { name: "open"; since: number; until: number }
  | { name: "half-open"; since: number };

const CLOSED: CircuitState = Object.freeze({ name: "closed" });
const SUCCESSES = 0;
const FAILURES = 1;

/** The circuit is open: the call was not attempted. */
export class BrokenCircuitError extends Error {
  /** How long until the circuit lets a probe through, in ms (0 if it is half-open with all probes out). */
  readonly retryAfterMs: number;

  constructor(retryAfterMs: number) {
    super(`circuit open: not attempting the call (next probe in ${Math.ceil(retryAfterMs)} ms)`);
    this.name = "BrokenCircuitError";
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * A circuit breaker: closed → (failureThreshold consecutive failures, or failureRate over at
 * least minimumVolume calls) → open → (halfOpenAfterMs) → half-open → (halfOpenMaxProbes
 * successes) → closed, or (one failure) → open again.
 *
 * Use `tryPass()` before a call and report it with `success()` or `failure()`, or wrap the call in
 * `execute(fn)`. Reports of calls that started before the circuit opened are ignored while it is
 * open: they say nothing about the dependency's state now.
 */
export class CircuitBreaker {
  private readonly failureThreshold: number;
  private readonly failureRate: number;
  private readonly minimumVolume: number;
  private readonly halfOpenAfterMs: number;
  private readonly halfOpenMaxProbes: number;
  private readonly now: () => number;
  private readonly onStateChange: (state: CircuitState) => void;
  private readonly window: SlidingWindowCounter;
  private current: CircuitState = CLOSED;
  private consecutiveFailures = 0;
  private probesOut = 0;
  private probeSuccesses = 0;
  private lastProbeAt = 0;

  constructor(options: CircuitBreakerOptions = {}) {
    const name = "CircuitBreaker";
    this.failureThreshold = requireNumber(name, "failureThreshold", options.failureThreshold ?? 5, {
      min: 1,
      integer: true,
    });
    this.failureRate = requireNumber(name, "failureRate", options.failureRate ?? 0.5, {
      min: 0,
      max: 1,
      minExclusive: true,
    });
    this.minimumVolume = requireNumber(name, "minimumVolume", options.minimumVolume ?? 20, {
      min: 1,
      integer: true,
    });
    const windowMs = requireNumber(name, "windowMs", options.windowMs ?? 10_000, {
      min: 0,
      minExclusive: true,
    });
    this.halfOpenAfterMs = requireNumber(name, "halfOpenAfterMs", options.halfOpenAfterMs ?? 5_000, {
      min: 0,
    });
    this.halfOpenMaxProbes = requireNumber(name, "halfOpenMaxProbes", options.halfOpenMaxProbes ?? 1, {
      min: 1,
      integer: true,
    });
    this.now = options.now ?? monotonicNow;
    this.onStateChange = options.onStateChange ?? (() => {});
    this.window = new SlidingWindowCounter(windowMs, 2);
  }

  /** The current state (an open circuit whose time is up reads as open until the next `tryPass`). */
  get state(): CircuitState {
    return this.current;
  }

  /** May a call go through now? A true answer while half-open takes one probe slot. */
  tryPass(): boolean {
    const state = this.current;
    if (state.name === "closed") return true;
    const now = this.now();
    if (state.name === "open") {
      if (now < state.until) return false;
      this.transition({ name: "half-open", since: now });
      this.probesOut = 0;
      this.probeSuccesses = 0;
    }
    if (this.probesOut >= this.halfOpenMaxProbes) {
      if (now - this.lastProbeAt < this.halfOpenAfterMs) return false;
      // No verdict for a whole open period since the last probe went out: write one probe off as lost.
      this.probesOut--;
    }
    this.probesOut++;
    this.lastProbeAt = now;
    return true;
  }

  /** Report a call that succeeded. */
  success(): void {
    const state = this.current;
    if (state.name === "closed") {
      this.consecutiveFailures = 0;
      this.window.add(SUCCESSES, this.now());
    } else if (state.name === "half-open") {
      this.probesOut = Math.max(0, this.probesOut - 1);
      if (++this.probeSuccesses >= this.halfOpenMaxProbes) this.close();
    }
  }

  /** Report a call that failed. */
  failure(): void {
    const state = this.current;
    const now = this.now();
    if (state.name === "half-open") {
      this.open(now);
      return;
    }
    if (state.name === "open") return;
    this.consecutiveFailures++;
    this.window.add(FAILURES, now);
    if (this.consecutiveFailures >= this.failureThreshold || this.rateTripped(now)) this.open(now);
  }

  /**
   * Run `fn` if the circuit lets it through, reporting its outcome (any rejection is a failure);
   * otherwise throw {@link BrokenCircuitError} without calling it.
   */
  async execute<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.tryPass()) throw new BrokenCircuitError(this.retryAfterMs());
    let value: T;
    try {
      value = await fn();
    } catch (error) {
      this.failure();
      throw error;
    }
    this.success();
    return value;
  }

  private retryAfterMs(): number {
    const state = this.current;
    return state.name === "open" ? Math.max(0, state.until - this.now()) : 0;
  }

  private rateTripped(now: number): boolean {
    const failures = this.window.total(FAILURES, now);
    const volume = failures + this.window.total(SUCCESSES, now);
    return volume >= this.minimumVolume && failures >= this.failureRate * volume;
  }

  private open(now: number): void {
    this.transition({ name: "open", since: now, until: now + this.halfOpenAfterMs });
  }

  private close(): void {
    this.consecutiveFailures = 0;
    // Failures from before the outage must not reopen a circuit that just proved healthy.
    this.window.reset();
    this.transition(CLOSED);
  }

  private transition(state: CircuitState): void {
    this.current = state;
    this.onStateChange(state);
  }
}
