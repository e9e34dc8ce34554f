import type { FleetSpec, SecuritySpec, ServiceSpec } from "../../spec/model.ts";
import type { LiveFacts, ReleaseHistoryEntry } from "./types.ts";

/** Everything the checks read, gathered once per plan. */
export interface RollbackContext {
  service: ServiceSpec;
  /** This service's release records only. */
  history: ReleaseHistoryEntry[];
  facts: LiveFacts;
  fleet: FleetSpec;
  /** The fleet file's deny and revocation lists merged with the live ones: either list blocks. */
  security: SecuritySpec;
}

/** Builds the context; records of other services in `history` are ignored. */
export function rollbackContext(input: {
  service: ServiceSpec;
  history: ReleaseHistoryEntry[];
  facts: LiveFacts;
  fleet: FleetSpec;
}): RollbackContext {
  const { service, facts, fleet } = input;
  return {
    service,
    history: input.history.filter((entry) => entry.service === service.name),
    facts,
    fleet,
    security: mergeSecurity(facts.security, fleet.security),
  };
}

/**
 * Fail closed: a release denied or a secret revoked in either list counts. The live list may be
 * newer than the fleet file, and the fleet file may hold entries the live store has not seen yet.
 */
function mergeSecurity(live: SecuritySpec, declared: SecuritySpec | undefined): SecuritySpec {
  if (declared === undefined) return live;
  return {
    deniedReleases: [...live.deniedReleases, ...declared.deniedReleases],
    revokedSecrets: [...live.revokedSecrets, ...declared.revokedSecrets],
  };
}
