/**
 * The fleet of the scale simulation: `services` services of `replicas` instances each, spread over
 * three zones, each with a front port (so the data plane gets membership for every instance) and
 * the fixture's default probes (readiness over http every 1 s, liveness over tcp every 2 s) and a
 * declared capacity (100 rps an instance). Ports
 * are only names here: nothing listens in the simulation.
 */

import type { FleetSpec } from "../../src/spec/model.ts";
import { makeFleet } from "./fleetFixture.ts";

export const SCALE_ZONES = ["zone-a", "zone-b", "zone-c"] as const;

export function scaleFleet(services: number, replicas = 10): FleetSpec {
  return makeFleet({
    name: `scale-${services}x${replicas}`,
    services: Array.from({ length: services }, (_, i) => ({
      name: `s${String(i).padStart(4, "0")}`,
      replicas,
      basePort: 5_000 + i * 2 * replicas,
      port: 40_000 + i,
      placement: SCALE_ZONES.map((zone, z) => ({ zone, host: `host-${z}` })),
      // Declared capacity: failover's N−1 check and survivor protection look at every instance.
      capacity: { rps: 100 },
    })),
  });
}
