import { durationMs } from "./duration.ts";
import { fraction } from "./fraction.ts";
import type { SloSpec } from "./model.ts";
import type { SloInput } from "./schema.ts";

/** SLO when neither the service nor `defaults.slo` sets one: 1 % errors, p99 1s. */
export const SLO_DEFAULTS: SloSpec = { errorRate: 0.01, p99Ms: 1_000 };

/** The SLO merged field by field: the service's own value, else `defaults.slo`, else {@link SLO_DEFAULTS}. */
export function resolveSlo(defaults: SloInput | undefined, own: SloInput | undefined): SloSpec {
  const errorRate = own?.errorRate ?? defaults?.errorRate;
  const p99 = own?.p99 ?? defaults?.p99;
  return {
    errorRate: errorRate === undefined ? SLO_DEFAULTS.errorRate : fraction(errorRate),
    p99Ms: p99 === undefined ? SLO_DEFAULTS.p99Ms : durationMs(p99),
  };
}
