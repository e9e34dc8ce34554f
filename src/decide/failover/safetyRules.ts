/**
 * Safety rules for evacuating a domain, in the spirit of AWS ARC's assertion and gating rules:
 * automation may be wrong, so it is fenced in; a person may step over the fences that are about
 * pacing (with an audited reason), never over the one that keeps the service up.
 */

import type { DomainHealth } from "./types.ts";
import { duration } from "./words.ts";

export type SafetyRule = "never-evacuate-all" | "one-at-a-time" | "min-interval";

export interface FailoverRequest {
  /** The zone to evacuate. */
  domain: string;
  /** Every zone of the fleet. */
  zones: readonly DomainHealth[];
  /** Zones evacuated now. */
  evacuated: readonly string[];
  /** When the last automated failover started (epoch ms), if any. */
  lastAutomatedAt: number | null;
  now: number;
  minIntervalMs: number;
  /** Started by Homeostat itself rather than by a person. */
  automated: boolean;
  /** A person's reason for stepping over `one-at-a-time` and `min-interval` (manual requests only). */
  override?: { reason: string };
}

export interface FailoverDecision {
  allowed: boolean;
  /** The rule that refused (absent when allowed, or when the request itself is not valid). */
  rule?: SafetyRule;
  reason: string;
}

/**
 * Whether evacuating `domain` may go ahead. Checked in order: never evacuate every zone (no one may
 * override it); at most one evacuation at a time; a minimum interval since the last automated
 * failover. A manual request with a non-empty override reason skips the last two, and the reason
 * says it did; an override on an automated request is ignored.
 */
export function checkFailoverAllowed(request: FailoverRequest): FailoverDecision {
  const { domain, now } = request;
  const zones = request.zones.map((zone) => zone.zone);
  if (!zones.includes(domain)) {
    return {
      allowed: false,
      reason: `${domain} is not a zone of this fleet (zones: ${zones.join(", ") || "none"})`,
    };
  }
  const evacuated = new Set(request.evacuated);
  const keepTraffic = zones.filter((zone) => zone !== domain && !evacuated.has(zone));
  if (keepTraffic.length === 0) {
    return {
      allowed: false,
      rule: "never-evacuate-all",
      reason: `evacuating ${domain} would leave no zone with traffic${evacuated.size > 0 ? ` (${[...evacuated].sort().join(", ")} already evacuated)` : ""}; at least one zone must keep traffic, override or not`,
    };
  }

  const overrideReason = request.override?.reason.trim() ?? "";
  const overriding = !request.automated && overrideReason.length > 0;
  const bypassed: string[] = [];
  const others = [...evacuated].filter((zone) => zone !== domain).sort();
  if (others.length > 0) {
    const why = `${others.join(", ")} ${others.length === 1 ? "is" : "are"} already evacuated; one evacuation at a time`;
    if (!overriding) return { allowed: false, rule: "one-at-a-time", reason: refusal(why, request) };
    bypassed.push(`one-at-a-time (${why})`);
  }
  if (request.lastAutomatedAt !== null) {
    const elapsed = now - request.lastAutomatedAt;
    if (elapsed < request.minIntervalMs) {
      const why = `the last automated failover was ${duration(Math.max(0, elapsed))} ago, the minimum interval is ${duration(request.minIntervalMs)} (${duration(request.minIntervalMs - elapsed)} to go)`;
      if (!overriding) return { allowed: false, rule: "min-interval", reason: refusal(why, request) };
      bypassed.push(`min-interval (${why})`);
    }
  }

  const keeps = `${keepTraffic.join(", ")} keep${keepTraffic.length === 1 ? "s" : ""} traffic`;
  if (bypassed.length > 0) {
    return {
      allowed: true,
      reason: `${domain} may be evacuated: manual override "${overrideReason}" bypasses ${bypassed.join(" and ")}; ${keeps}`,
    };
  }
  return { allowed: true, reason: `${domain} may be evacuated: ${keeps}` };
}

function refusal(why: string, request: FailoverRequest): string {
  if (request.automated && request.override !== undefined) {
    return `${why} (an override is for manual requests; automation cannot use one)`;
  }
  if (request.automated) return why;
  return `${why} (a manual request may override this with a reason)`;
}
