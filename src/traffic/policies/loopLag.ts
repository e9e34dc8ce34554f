import { monotonicNow, requireNumber } from "./options.ts";

/** Scheduling of the probe; `set` returns a handle for `clear`. */
export interface LagTimers {
  setInterval(callback: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

const REAL_TIMERS: LagTimers = {
  setInterval: (callback, ms) => {
    const timer = setInterval(callback, ms);
    // A probe must never keep a process alive.
    timer.unref();
    return timer;
  },
  clearInterval: (handle) => clearInterval(handle as ReturnType<typeof setInterval>),
};

export interface LoopLagOptions {
  /** How often the probe runs, in ms (default 10). */
  intervalMs?: number;
  /** Monotonic clock in ms (default `performance.now()`). */
  now?: () => number;
  timers?: LagTimers;
}

/**
 * How late this process's event loop runs now: a probe scheduled every `intervalMs` notes how much
 * later than due it ran. A process short of CPU (or stalled by a long task or a GC pause) reads
 * every socket late by about that much, and counts it in every latency it measures; an
 * {@link AdaptiveLimit} given {@link lagMs} as its `ownLagMs` does not take that lateness for the
 * upstream's. After a stall the probe's timer runs before the I/O that waited, so the figure is
 * fresh when the delayed responses are read.
 *
 * Started by the first {@link acquire}, stopped by the last {@link release}. Costs one timer
 * callback per interval, none on the request path.
 */
export class LoopLag {
  private readonly intervalMs: number;
  private readonly now: () => number;
  private readonly timers: LagTimers;
  private timer: unknown;
  private users = 0;
  private due = 0;
  private lastLagMs = 0;

  constructor(options: LoopLagOptions = {}) {
    this.intervalMs = requireNumber("LoopLag", "intervalMs", options.intervalMs ?? 10, {
      min: 1,
      integer: true,
    });
    this.now = options.now ?? monotonicNow;
    this.timers = options.timers ?? REAL_TIMERS;
  }

  /** The lag the last probe saw, in ms (0 when not running). */
  readonly lagMs = (): number => this.lastLagMs;

  /** Start probing (reference-counted). */
  acquire(): void {
    if (this.users++ > 0) return;
    this.due = this.now() + this.intervalMs;
    this.timer = this.timers.setInterval(this.probe, this.intervalMs);
  }

  /** Stop probing once every user has released it. */
  release(): void {
    if (this.users === 0 || --this.users > 0) return;
    this.timers.clearInterval(this.timer);
    this.timer = undefined;
    this.lastLagMs = 0;
  }

  private readonly probe = (): void => {
    const now = this.now();
    this.lastLagMs = Math.max(0, now - this.due);
    this.due = now + this.intervalMs;
  };
}

/** The process's shared probe: every proxy in a process sees the same event loop. */
export const processLoopLag = new LoopLag();
