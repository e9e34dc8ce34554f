import { HomeostatError } from "../../errors.ts";
import type { FleetSpec, ServiceSpec } from "../../spec/model.ts";
import { findAlternative } from "./alternatives.ts";
import { rollbackContext } from "./context.ts";
import { downMigrationsNeeded } from "./migrationCheck.ts";
import { checkTarget, decisionOf } from "./runChecks.ts";
import { expectedRollbackDurationMs, rollbackSteps } from "./steps.ts";
import { chooseTarget } from "./targetChoice.ts";
import type { LiveFacts, ReleaseHistoryEntry, RollbackPlan } from "./types.ts";

export interface PlanRollbackInput {
  service: ServiceSpec;
  /** Release records; records of other services are ignored. */
  history: ReleaseHistoryEntry[];
  facts: LiveFacts;
  /** The release to go to; absent: the newest proven release other than the running one. */
  to?: string;
  fleet: FleetSpec;
}

/**
 * Plans a rollback of one service and says whether it is safe: evidence (was the target ever
 * proven?), drift (which of today's settings go back), compatibility (schemas, dependencies and
 * dependents as they are now), migrations (what the schemas went through since) and security
 * (deny list, revoked secrets). Any blocking check refuses, and a refusal comes with an
 * alternative when one can be built (see {@link findAlternative}).
 *
 * Pure: no I/O, time comes in `facts.now`. When there is no release to go to, the plan is a
 * refusal whose one (evidence) check says why; its `to` is the requested version, or "" when none
 * was requested. A refused plan has no steps and an expected duration of 0.
 *
 * @throws HomeostatError `HS_INTERNAL` when `facts.current` is not a record of `service`.
 */
export function planRollback(input: PlanRollbackInput): RollbackPlan {
  const { service, facts } = input;
  if (facts.current.service !== service.name) {
    throw new HomeostatError(
      "HS_INTERNAL",
      `planRollback: the current record is of ${facts.current.service}, not of ${service.name}`,
      { details: { service: service.name, current: facts.current.service } },
    );
  }
  const context = rollbackContext(input);
  const from = facts.current.version;
  const choice = chooseTarget(context, input.to);
  if (choice.kind === "none") {
    return refused(service.name, from, choice.to, [choice.check], findAlternative(context, undefined));
  }
  const { target } = choice;
  const checks = checkTarget(context, target);
  const decision = decisionOf(checks);
  if (decision === "refuse")
    return refused(service.name, from, target.version, checks, findAlternative(context, target));
  return {
    service: service.name,
    from,
    to: target.version,
    decision,
    checks,
    steps: rollbackSteps(service, from, target.version, downMigrationsNeeded(context, target)),
    expectedDurationMs: expectedRollbackDurationMs(service),
  };
}

function refused(
  service: string,
  from: string,
  to: string,
  checks: RollbackPlan["checks"],
  alternative: RollbackPlan["alternative"],
): RollbackPlan {
  const plan: RollbackPlan = {
    service,
    from,
    to,
    decision: "refuse",
    checks,
    steps: [],
    expectedDurationMs: 0,
  };
  if (alternative !== undefined) plan.alternative = alternative;
  return plan;
}
