/** How close automation is to each limit now, for `status` (CLI, API, dashboard). */

import { actedOnWith, instancesAllowed } from "./blastRadius.ts";
import { countInWindow, type WindowCount } from "./rateLimit.ts";
import type { BrakeInputs } from "./types.ts";

export interface ServiceUsage {
  service: string;
  restarts: WindowCount;
  /** Instances automation is acting on now, and how many the blast radius allows. */
  actedOn: { instances: string[]; limit: number; share: number; size: number };
}

export interface BrakeUsage {
  services: ServiceUsage[];
  fleet: {
    actedOn: { count: number; limit: number; share: number; size: number };
    rollbacks: WindowCount;
    failovers: WindowCount;
  };
}

/** Every limit with what is used of it at `now`. */
export function brakeUsage(inputs: Omit<BrakeInputs, "pause">): BrakeUsage {
  const { now, limits, recent, actedOn } = inputs;
  const services: ServiceUsage[] = [];
  let size = 0;
  for (const [service, l] of limits.services) {
    size += l.size;
    const times = recent.filter((r) => r.kind === "restart" && r.service === service).map((r) => r.at);
    services.push({
      service,
      restarts: countInWindow(times, l.restarts, now),
      actedOn: {
        instances: [...actedOnWith(actedOn, [], service)].sort(),
        limit: instancesAllowed(l.blastRadius, l.size),
        share: l.blastRadius,
        size: l.size,
      },
    });
  }
  const of = (kind: "rollback" | "failover") => recent.filter((r) => r.kind === kind).map((r) => r.at);
  return {
    services,
    fleet: {
      actedOn: {
        count: actedOnWith(actedOn, []).size,
        limit: instancesAllowed(limits.fleet.blastRadius, size),
        share: limits.fleet.blastRadius,
        size,
      },
      rollbacks: countInWindow(of("rollback"), limits.fleet.rollbacks, now),
      failovers: countInWindow(of("failover"), limits.fleet.failovers, now),
    },
  };
}
