import type { BackoffSpec } from "../spec/model.ts";

/**
 * Delay before restarting after the `failures`-th consecutive failure. The first failure
 * restarts at once (a single crash is the common, cheap case and time-to-recover matters);
 * from the second on the delay grows exponentially up to `maxMs`.
 *
 * `random` in [0, 1) spreads restarts of many instances apart (jitter) and is an argument so the
 * function stays pure and testable.
 */
export function restartDelayMs(spec: BackoffSpec, failures: number, random: number): number {
  if (failures <= 1) return 0;
  const base = Math.min(spec.maxMs, spec.initialMs * spec.multiplier ** (failures - 2));
  const spread = base * spec.jitter * (2 * random - 1);
  return Math.max(0, Math.min(spec.maxMs, Math.round(base + spread)));
}
