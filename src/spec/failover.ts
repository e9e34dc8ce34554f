import { durationMs } from "./duration.ts";
import { fraction } from "./fraction.ts";
import type { FailoverSpec } from "./model.ts";
import type { FailoverInput } from "./schema.ts";

/**
 * Failover settings when the file sets none: a zone is down at 50 % unhealthy instances and
 * degraded at 20 %; its traffic moves 25 % per step every 5s; it gets traffic back after 30s
 * healthy; a zone must stay down 2s before it is evacuated automatically; automated failovers are
 * at least 5m apart, and off (operators run `homeostat failover`).
 */
export const FAILOVER_DEFAULTS: FailoverSpec = {
  downShare: 0.5,
  degradedShare: 0.2,
  stepPercent: 25,
  stepIntervalMs: 5_000,
  stabilizationMs: 30_000,
  minIntervalMs: 300_000,
  confirmMs: 2_000,
  automatic: false,
};

/** The top-level `failover` mapping with {@link FAILOVER_DEFAULTS} for every field it leaves out. */
export function resolveFailover(input: FailoverInput | undefined): FailoverSpec {
  const base = FAILOVER_DEFAULTS;
  const ms = (value: string | number | undefined, fallback: number): number =>
    value === undefined ? fallback : durationMs(value);
  const share = (value: string | number | undefined, fallback: number): number =>
    value === undefined ? fallback : fraction(value);
  return {
    downShare: share(input?.downShare, base.downShare),
    degradedShare: share(input?.degradedShare, base.degradedShare),
    stepPercent: input?.stepPercent ?? base.stepPercent,
    stepIntervalMs: ms(input?.stepInterval, base.stepIntervalMs),
    stabilizationMs: ms(input?.stabilization, base.stabilizationMs),
    minIntervalMs: ms(input?.minInterval, base.minIntervalMs),
    confirmMs: ms(input?.confirm, base.confirmMs),
    automatic: input?.automatic ?? base.automatic,
  };
}
