import type { CheckName, CheckResult } from "./types.ts";

export type Severity = CheckResult["severity"];
export type Finding = CheckResult["findings"][number];

/** A finding and how much it weighs; the check's severity is the heaviest of its findings. */
export interface WeighedFinding {
  severity: Severity;
  finding: Finding;
}

const WEIGHT: Record<Severity, number> = { ok: 0, warning: 1, blocking: 2 };

export function heaviest(severities: Iterable<Severity>): Severity {
  let result: Severity = "ok";
  for (const severity of severities) if (WEIGHT[severity] > WEIGHT[result]) result = severity;
  return result;
}

/**
 * Folds weighed findings into a `CheckResult`. `ok` is true only when nothing weighs (a warning
 * still lets the rollback go ahead, but it is not "ok"). Findings come out heaviest first, so the
 * first one is the reason.
 */
export function checkResult(
  name: CheckName,
  weighed: WeighedFinding[],
  detail: (severity: Severity, weighed: WeighedFinding[]) => string,
): CheckResult {
  const severity = heaviest(weighed.map((item) => item.severity));
  const ordered = [...weighed].sort((a, b) => WEIGHT[b.severity] - WEIGHT[a.severity]);
  return {
    name,
    ok: severity === "ok",
    severity,
    detail: detail(severity, ordered),
    findings: ordered.map((item) => item.finding),
  };
}

/** The messages of the findings of one severity, for a check's one-sentence detail. */
export function messagesOf(weighed: WeighedFinding[], severity: Severity): string[] {
  return weighed.filter((item) => item.severity === severity).map((item) => item.finding.message);
}
