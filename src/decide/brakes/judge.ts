/**
 * The verdict on one action: an automated action is allowed, or held with a typed reason; a
 * person's action is allowed, allowed over a pause (override, with a reason), or refused. Checked
 * in order — pause, rate limit, blast radius — and the first brake that holds is the reason.
 */

import type { RateLimitSpec } from "../../spec/model.ts";
import { duration } from "../failover/words.ts";
import { reason } from "../reasons.ts";
import { actedOnWith, instancesAllowed } from "./blastRadius.ts";
import { countInWindow, hasRoom } from "./rateLimit.ts";
import type {
  AutomatedKind,
  AutomatedProposal,
  BrakeHold,
  BrakeInputs,
  BrakeRule,
  BrakeVerdict,
  ManualRequest,
  ManualVerdict,
  PauseState,
} from "./types.ts";

const WHAT: Record<AutomatedKind, string> = {
  restart: "automated restart",
  rollback: "automated rollback",
  failover: "automated failover",
};

/** Whether automation may take `proposal` now, and if not, which brake holds it and why. */
export function judgeAutomated(proposal: AutomatedProposal, inputs: BrakeInputs): BrakeVerdict {
  const what = `${WHAT[proposal.kind]} of ${proposal.target}`;
  if (inputs.pause !== null) {
    const p = inputs.pause;
    return held({
      rule: "paused",
      reason: reason(
        "automation-paused",
        `${what} held: automation is paused by ${p.by} since ${new Date(p.since).toISOString()} (${p.reason}); \`homeostat resume\` lets it act, or act by hand with --override`,
      ),
      used: 0,
      limit: 0,
      until: null,
    });
  }
  const rate = rateHold(proposal, inputs, what);
  if (rate !== null) return held(rate);
  if (proposal.disrupts.length > 0) {
    const blast = blastHold(proposal, inputs, what);
    if (blast !== null) return held(blast);
  }
  return { allowed: true };
}

/**
 * Whether a person's action may go ahead: always when automation runs; while it is paused only
 * with `override` and a reason (the override and its reason are audited).
 */
export function judgeManual(pause: PauseState | null, request: ManualRequest): ManualVerdict {
  if (pause === null) return { allowed: true, overrode: null };
  const paused = `automation is paused by ${pause.by} since ${new Date(pause.since).toISOString()} (${pause.reason})`;
  if (!request.override) {
    return {
      allowed: false,
      why: "paused",
      message: `${request.what} refused: ${paused}. To act anyway, add --override with --reason (API: "override": true, "reason"); \`homeostat resume\` ends the pause`,
    };
  }
  if (request.reason.trim() === "") {
    return {
      allowed: false,
      why: "override-needs-reason",
      message: `${request.what}: --override needs --reason (API: "reason"): acting over a pause is audited (${paused})`,
    };
  }
  return { allowed: true, overrode: pause };
}

function held(hold: BrakeHold): BrakeVerdict {
  return { allowed: false, hold };
}

function rateHold(proposal: AutomatedProposal, inputs: BrakeInputs, what: string): BrakeHold | null {
  let limit: RateLimitSpec;
  let scope: string;
  let rule: BrakeRule;
  const kinds = inputs.recent.filter((r) => r.kind === proposal.kind);
  let times: number[];
  switch (proposal.kind) {
    case "restart": {
      const service = proposal.service === null ? undefined : inputs.limits.services.get(proposal.service);
      if (service === undefined) return null; // a service no longer in the fleet has no limits
      limit = service.restarts;
      scope = `${proposal.service} had`;
      rule = "restart-rate";
      times = kinds.filter((r) => r.service === proposal.service).map((r) => r.at);
      break;
    }
    case "rollback":
      limit = inputs.limits.fleet.rollbacks;
      scope = "the fleet had";
      rule = "rollback-rate";
      times = kinds.map((r) => r.at);
      break;
    case "failover":
      limit = inputs.limits.fleet.failovers;
      scope = "the fleet had";
      rule = "failover-rate";
      times = kinds.map((r) => r.at);
      break;
  }
  const count = countInWindow(times, limit, inputs.now);
  if (hasRoom(count)) return null;
  const wait = count.freeAt === null ? "" : `; the next is allowed in ${duration(count.freeAt - inputs.now)}`;
  return {
    rule,
    reason: reason(
      "brake-rate-limit",
      `${what} held: ${scope} ${count.used} ${WHAT[proposal.kind]}s in the last ${duration(limit.windowMs)} (limit ${limit.max})${wait}`,
    ),
    used: count.used,
    limit: limit.max,
    until: count.freeAt,
  };
}

function blastHold(proposal: AutomatedProposal, inputs: BrakeInputs, what: string): BrakeHold | null {
  const services = [...new Set(proposal.disrupts.map((d) => d.service))].sort();
  for (const name of services) {
    const service = inputs.limits.services.get(name);
    if (service === undefined) continue;
    const acted = actedOnWith(inputs.actedOn, proposal.disrupts, name);
    const allowed = instancesAllowed(service.blastRadius, service.size);
    if (acted.size <= allowed) continue;
    const already = acted.size - proposal.disrupts.filter((d) => d.service === name).length;
    return {
      rule: "blast-radius-service",
      reason: reason(
        "brake-blast-radius",
        `${what} held: it would act on ${acted.size} of ${name}'s ${service.size} instances at once (${[...acted].sort().join(", ")}), over its blast radius of ${pct(service.blastRadius)} = ${allowed}${already > 0 ? `; ${already} still being replaced, the next goes once one is ready again` : ""}`,
      ),
      used: acted.size,
      limit: allowed,
      until: null,
    };
  }
  let size = 0;
  for (const s of inputs.limits.services.values()) size += s.size;
  const acted = actedOnWith(inputs.actedOn, proposal.disrupts);
  const allowed = instancesAllowed(inputs.limits.fleet.blastRadius, size);
  if (acted.size <= allowed) return null;
  return {
    rule: "blast-radius-fleet",
    reason: reason(
      "brake-blast-radius",
      `${what} held: it would act on ${acted.size} of the fleet's ${size} instances at once, over the fleet's blast radius of ${pct(inputs.limits.fleet.blastRadius)} = ${allowed}`,
    ),
    used: acted.size,
    limit: allowed,
    until: null,
  };
}

function pct(share: number): string {
  return `${Number((share * 100).toFixed(1))} %`;
}
