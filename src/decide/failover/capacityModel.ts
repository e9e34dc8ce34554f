/**
 * The capacity picture of failure domains: how busy an instance is, and whether a zone is healthy,
 * degraded (repair its instances in place) or down (evacuate it).
 */

import type { CapacityInstance, DomainHealth, DomainState } from "./types.ts";
import { percent } from "./words.ts";

/** Load over capacity (0..1, above 1 when overloaded). An instance without capacity is at 0 idle, ∞ busy. */
export function utilization(instance: Pick<CapacityInstance, "loadRps" | "capacityRps">): number {
  if (instance.capacityRps > 0) return instance.loadRps / instance.capacityRps;
  return instance.loadRps > 0 ? Number.POSITIVE_INFINITY : 0;
}

export interface DomainHealthOptions {
  /** A zone with at least this share of unhealthy instances is down (0..1, default 0.5). */
  downShare?: number;
  /** A zone with at least this share of unhealthy instances is degraded (0..1, default 0.2). */
  degradedShare?: number;
}

export const DEFAULT_DOWN_SHARE = 0.5;
export const DEFAULT_DEGRADED_SHARE = 0.2;

/**
 * The state of each zone in `zones` (in that order, duplicates dropped) from its instances' health.
 * A zone is down when the unhealthy share reaches `downShare`, or when it has instances and none is
 * healthy (whatever the thresholds say: a zone that serves nothing is gone); degraded from
 * `degradedShare`; healthy otherwise, and also when nothing is placed in it.
 */
export function domainHealth(
  instances: readonly CapacityInstance[],
  zones: readonly string[],
  options: DomainHealthOptions = {},
): DomainHealth[] {
  const downShare = options.downShare ?? DEFAULT_DOWN_SHARE;
  const degradedShare = options.degradedShare ?? DEFAULT_DEGRADED_SHARE;
  const counts = new Map<string, { total: number; healthy: number }>();
  for (const instance of instances) {
    const zone = counts.get(instance.zone) ?? { total: 0, healthy: 0 };
    zone.total += 1;
    if (instance.healthy) zone.healthy += 1;
    counts.set(instance.zone, zone);
  }
  return [...new Set(zones)].map((zone) => {
    const { total, healthy } = counts.get(zone) ?? { total: 0, healthy: 0 };
    return {
      zone,
      healthyInstances: healthy,
      totalInstances: total,
      ...judge(total, healthy, downShare, degradedShare),
    };
  });
}

function judge(
  total: number,
  healthy: number,
  downShare: number,
  degradedShare: number,
): { state: DomainState; reason: string } {
  if (total === 0) return { state: "healthy", reason: "no instances placed here" };
  const unhealthy = total - healthy;
  const share = unhealthy / total;
  const tally = `${unhealthy} of ${total} instances unhealthy (${percent(share)})`;
  if (healthy === 0) return { state: "down", reason: `no healthy instance: ${tally}` };
  if (share >= downShare) return { state: "down", reason: `${tally} ≥ down threshold ${percent(downShare)}` };
  if (share >= degradedShare) {
    return { state: "degraded", reason: `${tally} ≥ degraded threshold ${percent(degradedShare)}` };
  }
  if (unhealthy === 0) return { state: "healthy", reason: `all ${total} instances healthy` };
  return { state: "healthy", reason: `${tally} < degraded threshold ${percent(degradedShare)}` };
}
