import { durationMs } from "./duration.ts";
import { fraction } from "./fraction.ts";
import type { DeploySpec } from "./model.ts";
import type { DeployInput } from "./schema.ts";

/**
 * Deploy settings when neither the service nor `defaults.deploy` sets them: 10 → 50 → 100 % of
 * 30s each with a 2m deadline (see {@link defaultStepDeadlineMs}), a 10m soak, the stable release kept warm, 10 releases of history;
 * a step fails on +1 % errors or p99 × 1.5 (and +20ms), with at least 50 requests a side.
 */
export const DEPLOY_DEFAULTS: DeploySpec = {
  steps: [10, 50, 100],
  stepDurationMs: 30_000,
  stepDeadlineMs: 120_000,
  soakMs: 600_000,
  keepStableWarm: true,
  historyLimit: 10,
  analysis: { minRequests: 50, maxErrorRateIncrease: 0.01, maxP99Ratio: 1.5, minP99IncreaseMs: 50 },
};

/**
 * The deadline of a step when no mapping sets one: 2 minutes, or 4 step durations when that is
 * longer (room for a few inconclusive analyses before the deploy gives up).
 */
export function defaultStepDeadlineMs(stepDurationMs: number): number {
  return Math.max(DEPLOY_DEFAULTS.stepDeadlineMs, 4 * stepDurationMs);
}

/**
 * Deploy settings merged field by field (`analysis` too): the service's own value, else the fleet
 * default, else {@link DEPLOY_DEFAULTS}. `steps` is one field: a service's list replaces the default's.
 */
export function resolveDeploy(defaults: DeployInput | undefined, own: DeployInput | undefined): DeploySpec {
  const base = DEPLOY_DEFAULTS;
  const pick = <Value>(read: (input: DeployInput | undefined) => Value | undefined): Value | undefined =>
    read(own) ?? read(defaults);
  const ms = (value: string | number | undefined, fallback: number): number =>
    value === undefined ? fallback : durationMs(value);
  const stepDurationMs = ms(
    pick((d) => d?.stepDuration),
    base.stepDurationMs,
  );
  return {
    steps: [...(pick((d) => d?.steps) ?? base.steps)],
    stepDurationMs,
    stepDeadlineMs: ms(
      pick((d) => d?.stepDeadline),
      defaultStepDeadlineMs(stepDurationMs),
    ),
    soakMs: ms(
      pick((d) => d?.soak),
      base.soakMs,
    ),
    keepStableWarm: pick((d) => d?.keepStableWarm) ?? base.keepStableWarm,
    historyLimit: pick((d) => d?.historyLimit) ?? base.historyLimit,
    analysis: {
      minRequests: pick((d) => d?.analysis?.minRequests) ?? base.analysis.minRequests,
      maxErrorRateIncrease: fractionOr(
        pick((d) => d?.analysis?.maxErrorRateIncrease),
        base.analysis.maxErrorRateIncrease,
      ),
      maxP99Ratio: pick((d) => d?.analysis?.maxP99Ratio) ?? base.analysis.maxP99Ratio,
      minP99IncreaseMs: ms(
        pick((d) => d?.analysis?.minP99Increase),
        base.analysis.minP99IncreaseMs,
      ),
    },
  };
}

function fractionOr(value: string | number | undefined, fallback: number): number {
  return value === undefined ? fallback : fraction(value);
}
