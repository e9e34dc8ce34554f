import { checkResult } from "./checkResult.ts";
import { durationMs, isoTime, percent } from "./display.ts";
import type { CheckResult, ReleaseHistoryEntry } from "./types.ts";
import { wasProven } from "./versions.ts";

/**
 * What proves the target good. Proven (it served all traffic within its SLO for the soak window):
 * ok, with the numbers. Failed or rolled back: blocking, it already failed here. Anything else
 * (never got to 100 %, or never soaked long enough): a warning, since "it ran before" is not
 * evidence that it worked.
 */
export function evidenceCheck(target: ReleaseHistoryEntry): CheckResult {
  const { version } = target;
  if (target.status === "failed" || target.status === "rolled-back") {
    const how = target.status === "failed" ? "failed its deploy" : "was rolled back";
    const message = `${version} already failed here: it ${how}`;
    return checkResult(
      "evidence",
      [{ severity: "blocking", finding: { field: "status", actual: target.status, message } }],
      () => message,
    );
  }
  if (wasProven(target)) {
    const message = provenMessage(target);
    return checkResult(
      "evidence",
      [{ severity: "ok", finding: { field: "status", actual: target.status, message } }],
      () => message,
    );
  }
  const message = `${version} was never proven: it did not serve all traffic within its SLO for the soak window`;
  return checkResult(
    "evidence",
    [
      {
        severity: "warning",
        finding: { field: "status", expected: "proven", actual: target.status, message },
      },
    ],
    () => message,
  );
}

function provenMessage(target: ReleaseHistoryEntry): string {
  const evidence = target.evidence;
  const at = target.provenAt ?? evidence?.at ?? null;
  const when = at === null ? "" : ` at ${isoTime(at)}`;
  if (evidence === null) return `${target.version} was proven${when} (no traffic evidence was recorded)`;
  const p99 = evidence.p99Ms === null ? "no latency data" : durationMs(evidence.p99Ms);
  return (
    `${target.version} was proven${when} with ${evidence.requests} requests over ${durationMs(evidence.windowMs)}, ` +
    `error rate ${percent(evidence.errorRate)}, p99 ${p99}`
  );
}
