export interface JitteredBackoffOptions {
  /** Ceiling of the first retry's delay, in ms. */
  initialMs: number;
  /** No delay is ever longer than this, in ms. */
  maxMs: number;
}

/**
 * Delay before retry number `attempt` (1 for the first retry), with **full jitter**: a uniform
 * draw in [0, min(maxMs, initialMs × 2^(attempt − 1))), rounded down to whole ms.
 *
 * Full jitter rather than decorrelated jitter because it needs no state (the delay depends only on
 * the attempt number, so one function serves every request without a per-request object) and it
 * spreads a synchronized burst of failures the widest, which is what keeps retries from arriving
 * in waves. Short draws are harmless: the retry budget, not the delay, bounds the extra load.
 *
 * Pure: `random` is either a uniform draw in [0, 1) or a source of them (e.g. `Math.random`).
 * Attempts below 1 (or NaN) count as 1; huge attempts stay at `maxMs` (no overflow to Infinity or
 * NaN); draws outside [0, 1) are clamped into it.
 */
export function jitteredBackoff(
  attempt: number,
  options: JitteredBackoffOptions,
  random: number | (() => number),
): number {
  const draw = typeof random === "number" ? random : random();
  const exponent = Number.isNaN(attempt) ? 0 : Math.max(0, Math.floor(attempt) - 1);
  const ceiling = Math.max(0, Math.min(options.maxMs, options.initialMs * 2 ** Math.min(exponent, 1_023)));
  const clamped = Number.isNaN(draw) ? 0 : Math.min(Math.max(draw, 0), 1 - Number.EPSILON);
  return Math.floor(clamped * ceiling);
}
