/** Capacity pictures for the failover tests: instances spelt as zone, capacity and load by criticality. */

import type { CapacityInstance, ServiceCapacity } from "../../../src/decide/failover/types.ts";

export interface InstanceOverrides {
  capacity?: number;
  /** Load by criticality, requests/s (missing ones are 0). */
  critical?: number;
  default?: number;
  sheddable?: number;
  healthy?: boolean;
  host?: string;
}

export function instance(
  service: string,
  name: string,
  zone: string,
  o: InstanceOverrides = {},
): CapacityInstance {
  const load = { critical: o.critical ?? 0, default: o.default ?? 0, sheddable: o.sheddable ?? 0 };
  return {
    instance: name,
    service,
    zone,
    host: o.host ?? `host-${zone}`,
    capacityRps: o.capacity ?? 100,
    loadRps: load.critical + load.default + load.sheddable,
    loadByCriticality: load,
    healthy: o.healthy ?? true,
  };
}

export interface ServiceOverrides {
  ceiling?: number;
  maxReplicas?: number;
  instanceCapacityRps?: number;
}

/** A service with one instance per zone, all alike (`<service>-<zone>`), unless `instances` is given. */
export function service(
  name: string,
  zones: Record<string, InstanceOverrides>,
  o: ServiceOverrides = {},
): ServiceCapacity {
  return {
    service: name,
    ceiling: o.ceiling ?? 0.8,
    maxReplicas: o.maxReplicas ?? Object.keys(zones).length,
    instanceCapacityRps: o.instanceCapacityRps ?? 100,
    instances: Object.entries(zones).map(([zone, overrides]) =>
      instance(name, `${name}-${zone}`, zone, overrides),
    ),
  };
}

/** The same load in every zone. */
export function everywhere(zones: string[], overrides: InstanceOverrides): Record<string, InstanceOverrides> {
  return Object.fromEntries(zones.map((zone) => [zone, { ...overrides }]));
}

export const ABC = ["zone-a", "zone-b", "zone-c"];
