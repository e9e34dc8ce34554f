/**
 * Static stability: could the fleet lose any one zone right now, at current load, and stay under
 * its ceilings without the control plane doing anything (no scale-up, no shedding)? With N
 * equal zones that needs N/(N−1) × peak load in capacity (1.5× for three zones).
 */

import type { DomainHeadroom, ServiceCapacity } from "./types.ts";
import { clean } from "./words.ts";

/**
 * For each zone in `zones` (in that order): every service's whole current load spread over its
 * healthy instances outside the zone in proportion to capacity. `survivorPeakUtilization` is the
 * busiest service's utilization (∞ when a service with load would have no survivor);
 * `headroomRps` is the tightest service's spare under its ceiling (negative: short by that much),
 * so one service's surplus never hides another's shortfall.
 */
export function staticStability(
  services: readonly ServiceCapacity[],
  zones: readonly string[],
): DomainHeadroom[] {
  return [...new Set(zones)].map((zone) => {
    let peak = 0;
    let headroom = Number.POSITIVE_INFINITY;
    let survives = true;
    for (const service of services) {
      let load = 0;
      let capacity = 0;
      for (const instance of service.instances) {
        load += instance.loadRps;
        if (instance.healthy && instance.zone !== zone) capacity += instance.capacityRps;
      }
      const utilization = capacity > 0 ? load / capacity : load > 0 ? Number.POSITIVE_INFINITY : 0;
      const spare = service.ceiling * capacity - load;
      peak = Math.max(peak, utilization);
      headroom = Math.min(headroom, spare);
      if (utilization > service.ceiling + 1e-9) survives = false;
    }
    return {
      zone,
      survivorPeakUtilization: clean(peak),
      survivesLoss: survives,
      headroomRps: Number.isFinite(headroom) ? clean(headroom) : 0,
    };
  });
}

/**
 * Capacity needed, as a multiple of peak load, for N equal zones to survive losing one: N/(N−1).
 * One zone (or none) cannot survive losing it: `Infinity`.
 */
export function requiredCapacityFactor(zones: number): number {
  if (zones <= 1) return Number.POSITIVE_INFINITY;
  return zones / (zones - 1);
}
