import { compatibilityCheck } from "./compatibilityCheck.ts";
import type { RollbackContext } from "./context.ts";
import { driftCheck } from "./driftCheck.ts";
import { evidenceCheck } from "./evidenceCheck.ts";
import { migrationCheck } from "./migrationCheck.ts";
import { securityCheck } from "./securityCheck.ts";
import type { CheckResult, ReleaseHistoryEntry, RollbackDecision } from "./types.ts";

/** Every check of going from what runs now to `target`, in a fixed order. */
export function checkTarget(context: RollbackContext, target: ReleaseHistoryEntry): CheckResult[] {
  return [
    evidenceCheck(target),
    driftCheck(target, context.facts.current, context.facts),
    compatibilityCheck(context, target.spec, target.version),
    migrationCheck(context, target),
    securityCheck(
      {
        service: context.service.name,
        label: target.version,
        versions: [target.version],
        secrets: target.spec.secrets,
      },
      context.security,
    ),
  ];
}

/** Any blocking check refuses; otherwise any warning goes ahead with warnings. */
export function decisionOf(checks: readonly CheckResult[]): RollbackDecision {
  if (checks.some((check) => check.severity === "blocking")) return "refuse";
  if (checks.some((check) => check.severity === "warning")) return "rollback-with-warnings";
  return "rollback";
}
