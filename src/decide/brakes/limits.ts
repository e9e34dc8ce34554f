import { fleetBrakesOf, serviceBrakesOf } from "../../spec/brakes.ts";
import type { FleetSpec } from "../../spec/model.ts";
import type { BrakeLimits, ServiceLimits } from "./types.ts";

/** The limits of `fleet` as the rules read them: each service's size is its replica count. */
export function limitsOf(fleet: Pick<FleetSpec, "services" | "brakes">): BrakeLimits {
  const services = new Map<string, ServiceLimits>();
  for (const service of fleet.services) {
    const brakes = serviceBrakesOf(service);
    services.set(service.name, {
      restarts: brakes.restarts,
      blastRadius: brakes.blastRadius,
      size: service.replicas,
    });
  }
  const fleetBrakes = fleetBrakesOf(fleet);
  return {
    services,
    fleet: {
      blastRadius: fleetBrakes.blastRadius,
      rollbacks: fleetBrakes.rollbacks,
      failovers: fleetBrakes.failovers,
    },
  };
}

/** The longest window of any limit: automated actions older than it can be forgotten. */
export function longestWindowMs(limits: BrakeLimits): number {
  let longest = Math.max(limits.fleet.rollbacks.windowMs, limits.fleet.failovers.windowMs);
  for (const s of limits.services.values()) longest = Math.max(longest, s.restarts.windowMs);
  return longest;
}
