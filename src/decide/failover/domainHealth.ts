/**
 * Domain health: a zone is degraded or down when a share of its instances fails. An instance fails
 * the zone when it is not ready, when the data plane ejected it, or when the zone probe (through
 * the data plane's path to the zone) fails. Instances that have never been ready yet are not
 * counted: a fleet that is starting is not a zone that is failing. Pure.
 */

import type { FailoverSpec } from "../../spec/model.ts";
import type { DomainHealth } from "./types.ts";

export interface ZoneMember {
  instance: string;
  zone: string;
  /** Why it counts against its zone (e.g. "ejected", "not ready"), or null when it is healthy. */
  problem: string | null;
}

/** Problems listed by name in a zone's reason before the rest is summarised. */
const NAMED_PROBLEMS = 3;

export function domainHealth(
  zones: readonly string[],
  members: readonly ZoneMember[],
  spec: Pick<FailoverSpec, "downShare" | "degradedShare">,
): DomainHealth[] {
  return zones.map((zone) => {
    const inZone = members.filter((m) => m.zone === zone);
    const failing = inZone.filter((m) => m.problem !== null);
    const total = inZone.length;
    if (total === 0) {
      return {
        zone,
        state: "healthy",
        healthyInstances: 0,
        totalInstances: 0,
        reason: "no instance to judge",
      };
    }
    const share = failing.length / total;
    const state = share >= spec.downShare ? "down" : share >= spec.degradedShare ? "degraded" : "healthy";
    const named = failing
      .slice(0, NAMED_PROBLEMS)
      .map((m) => `${m.instance}: ${m.problem}`)
      .join("; ");
    const more = failing.length > NAMED_PROBLEMS ? `; ${failing.length - NAMED_PROBLEMS} more` : "";
    const reason =
      failing.length === 0
        ? total === 1
          ? "its 1 instance is healthy"
          : `all ${total} instances healthy`
        : total === 1
          ? `its 1 instance is failing (${named})`
          : `${failing.length} of ${total} instances failing (${named}${more})`;
    return { zone, state, healthyInstances: total - failing.length, totalInstances: total, reason };
  });
}
