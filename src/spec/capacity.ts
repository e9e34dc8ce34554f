import { fraction } from "./fraction.ts";
import type { CapacitySpec } from "./model.ts";
import { PORT_BANKS } from "./ports.ts";
import type { CapacityInput } from "./schema.ts";

/**
 * Capacity when neither the service nor `defaults.capacity` sets it: rps and concurrency unknown
 * (the service takes no part in capacity planning), target utilization 80 %. `maxReplicas`
 * defaults to {@link defaultMaxReplicas}.
 */
export const CAPACITY_DEFAULTS: Omit<CapacitySpec, "maxReplicas"> = {
  rps: null,
  concurrency: null,
  targetUtilization: 0.8,
};

/**
 * The most instances a service of `replicas` may run: every slot of its two port banks
 * (`2 × replicas`, see `ServiceSpec.basePort`), so a failover may double it and no more.
 */
export function defaultMaxReplicas(replicas: number): number {
  return PORT_BANKS * replicas;
}

/**
 * Capacity merged field by field: the service's own value, else `defaults.capacity`, else
 * {@link CAPACITY_DEFAULTS}. An explicit `null` (rps, concurrency) is a value: a service can say
 * "unknown" over a fleet-wide default.
 */
export function resolveCapacity(
  defaults: CapacityInput | undefined,
  own: CapacityInput | undefined,
  replicas: number,
): CapacitySpec {
  const base = CAPACITY_DEFAULTS;
  const targetUtilization = own?.targetUtilization ?? defaults?.targetUtilization;
  return {
    rps: ownOrDefault(own?.rps, defaults?.rps, base.rps),
    concurrency: ownOrDefault(own?.concurrency, defaults?.concurrency, base.concurrency),
    targetUtilization: targetUtilization === undefined ? base.targetUtilization : fraction(targetUtilization),
    maxReplicas: own?.maxReplicas ?? defaults?.maxReplicas ?? defaultMaxReplicas(replicas),
  };
}

/** The first value that is set (null counts as set), else `fallback`. */
function ownOrDefault<Value>(
  own: Value | undefined,
  fromDefaults: Value | undefined,
  fallback: Value,
): Value {
  if (own !== undefined) return own;
  return fromDefaults !== undefined ? fromDefaults : fallback;
}
