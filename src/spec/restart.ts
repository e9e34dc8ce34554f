import { durationMs } from "./duration.ts";
import type { RestartSpec } from "./model.ts";
import type { RestartInput } from "./schema.ts";

/** Restart settings when neither the service nor `defaults.restart` sets them. */
export const RESTART_DEFAULTS: RestartSpec = {
  policy: "always",
  backoff: { initialMs: 200, maxMs: 30_000, multiplier: 2, jitter: 0.2 },
  crashLoop: { failures: 5, windowMs: 60_000 },
  stopGracePeriodMs: 5_000,
  resetAfterMs: 10_000,
};

/**
 * Restart settings merged field by field (nested `backoff` and `crashLoop` too): the service's
 * own value, else the fleet default, else {@link RESTART_DEFAULTS}.
 */
export function resolveRestart(
  defaults: RestartInput | undefined,
  own: RestartInput | undefined,
): RestartSpec {
  const base = RESTART_DEFAULTS;
  const pick = <Value>(read: (input: RestartInput | undefined) => Value | undefined): Value | undefined =>
    read(own) ?? read(defaults);
  const ms = (value: string | number | undefined, fallback: number): number =>
    value === undefined ? fallback : durationMs(value);
  return {
    policy: pick((r) => r?.policy) ?? base.policy,
    backoff: {
      initialMs: ms(
        pick((r) => r?.backoff?.initial),
        base.backoff.initialMs,
      ),
      maxMs: ms(
        pick((r) => r?.backoff?.max),
        base.backoff.maxMs,
      ),
      multiplier: pick((r) => r?.backoff?.multiplier) ?? base.backoff.multiplier,
      jitter: pick((r) => r?.backoff?.jitter) ?? base.backoff.jitter,
    },
    crashLoop: {
      failures: pick((r) => r?.crashLoop?.failures) ?? base.crashLoop.failures,
      windowMs: ms(
        pick((r) => r?.crashLoop?.window),
        base.crashLoop.windowMs,
      ),
    },
    stopGracePeriodMs: ms(
      pick((r) => r?.stopGracePeriod),
      base.stopGracePeriodMs,
    ),
    resetAfterMs: ms(
      pick((r) => r?.resetAfter),
      base.resetAfterMs,
    ),
  };
}
