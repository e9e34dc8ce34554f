/**
 * The live capacity picture the failover planner works on: per instance, declared capacity and
 * the load the data plane measures, split by criticality in the service's measured mix.
 */

import type { CapacityInstance, ServiceCapacity } from "../decide/failover/types.ts";
import type { ObservedInstance } from "../decide/snapshot.ts";
import { type FleetSpec, placementOf } from "../spec/model.ts";
import type { DecisionWindows } from "../traffic/stats/index.ts";

/** Load is averaged over this window: long enough to smooth bursts, short enough to follow a shift. */
export const LOAD_WINDOW_MS = 30_000;

export interface CapacityPicture {
  services: ServiceCapacity[];
  /** Services left out, and why (no declared capacity). */
  skipped: { service: string; reason: string }[];
  zones: string[];
}

export function capacityPicture(
  fleet: FleetSpec,
  instances: readonly ObservedInstance[],
  busy: ReadonlySet<string>,
  stats: DecisionWindows | undefined,
): CapacityPicture {
  const services: ServiceCapacity[] = [];
  const skipped: CapacityPicture["skipped"] = [];
  const zones = new Set<string>();
  // Instances by service, in one walk: a walk per service was quadratic in a large fleet.
  const byService = new Map<string, ObservedInstance[]>();
  for (const o of instances) {
    const list = byService.get(o.service);
    if (list === undefined) byService.set(o.service, [o]);
    else list.push(o);
  }
  for (const service of fleet.services) {
    for (const place of service.placement) zones.add(place.zone);
    const rps = service.capacity.rps;
    if (rps === null) {
      skipped.push({ service: service.name, reason: "no `capacity.rps` declared" });
      continue;
    }
    const mix = stats?.criticalityRates(service.name, LOAD_WINDOW_MS) ?? {
      critical: 0,
      default: 0,
      sheddable: 0,
    };
    const mixTotal = mix.critical + mix.default + mix.sheddable;
    const share = (c: number) => (mixTotal === 0 ? 0 : c / mixTotal);
    const members: CapacityInstance[] = [];
    for (const o of byService.get(service.name) ?? []) {
      if (o.runtime !== "running") continue;
      const place = placementOf(service, o.slot);
      const loadRps =
        stats?.window({ service: service.name, instance: o.name, windowMs: LOAD_WINDOW_MS }).rps ?? 0;
      members.push({
        instance: o.name,
        service: service.name,
        zone: place.zone,
        host: place.host,
        capacityRps: rps,
        loadRps,
        // Unknown mix (no traffic yet): count it all as `default`, never as sheddable.
        loadByCriticality:
          mixTotal === 0
            ? { critical: 0, default: loadRps, sheddable: 0 }
            : {
                critical: loadRps * share(mix.critical),
                default: loadRps * share(mix.default),
                sheddable: loadRps * share(mix.sheddable),
              },
        healthy: o.health?.state === "ready" && !busy.has(o.name),
      });
    }
    members.sort((a, b) => a.instance.localeCompare(b.instance));
    services.push({
      service: service.name,
      ceiling: service.capacity.targetUtilization,
      maxReplicas: service.capacity.maxReplicas,
      instanceCapacityRps: rps,
      instances: members,
    });
  }
  return { services, skipped, zones: [...zones].sort() };
}
