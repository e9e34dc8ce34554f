import type { DomainHeadroom, FailoverPlan, IndependenceFinding } from "../../decide/failover/types.ts";
import type { StatusAnswer } from "../../server/routes/schemas.ts";
import { apiClient } from "../apiClient.ts";
import { apiPort, apiPortOption, parse } from "../args.ts";
import type { CliIo, Command } from "../command.ts";
import { table } from "../format.ts";
import { renderSpecDrift } from "./history.ts";

interface CheckDocument {
  findings: IndependenceFinding[];
  headroom: DomainHeadroom[];
  requiredCapacityFactor: number;
  skipped: { service: string; reason: string }[];
}

export const checkCommand: Command = {
  name: "check",
  summary: "shared fate and static stability: can the fleet lose any one zone?",
  usage: `homeostat check [--json] [--strict] [--api-port N]

Lists redundancy that shares fate (all replicas in one zone or on one host, single-instance
services that others depend on, backups in their primary's domain) with a severity and a fix,
and, for each zone, whether the survivors could take its load now without passing their
utilization ceiling (static stability, N−1), from the declared capacity and the measured load.
Then drift: whether the fleet file on disk differs from the applied spec revision, and running
instances that differ from the spec (another release or config hash than it names: a partial
rollout, named).

Options:
  --strict       exit 1 when there is a critical finding, a zone the fleet cannot lose, or drift
  --json         print the whole document as JSON
  --api-port N   controller API port (default 7070, or $HOMEOSTAT_API_PORT)`,
  async run(argv, io) {
    const { values } = parse(
      "check",
      argv,
      { json: { type: "boolean" }, strict: { type: "boolean" }, ...apiPortOption },
      0,
    );
    const client = apiClient(apiPort(values));
    const doc = await client.get<CheckDocument>("/v1/check");
    // Drift: the fleet file against the applied revision, and instances that differ from the spec.
    const status = await client.get<StatusAnswer>("/v1/status");
    const drift = specDrift(status);
    if (values.json === true) io.out(JSON.stringify({ ...doc, drift }, null, 2));
    else {
      renderCheck(doc, io);
      io.out("");
      for (const line of renderDrift(drift)) io.out(line);
    }
    const bad =
      doc.findings.some((f) => f.severity === "critical") ||
      doc.headroom.some((h) => !h.survivesLoss) ||
      drift.file !== "same" ||
      drift.instances.length > 0;
    return values.strict === true && bad ? 1 : 0;
  },
};

/** Instance findings that mean "running something other than the spec" (see docs/operations.md, "Drift"). */
const SPEC_DRIFT_KINDS: ReadonlySet<string> = new Set([
  "mixed-releases",
  "old-release",
  "old-config",
  "old-secrets",
  "release-edited",
]);

/** What `check` says about drift: the file on disk, and running instances that differ from the spec. */
interface DriftReport {
  /** The applied revision (null when none is recorded). */
  revision: number | null;
  file: "same" | "differs" | "missing" | "unreadable" | "unknown";
  path: string | null;
  /** Lines for humans about the file (empty when it matches). */
  lines: string[];
  instances: { kind: string; service: string | null; instances: string[]; detail: string }[];
}

function specDrift(status: StatusAnswer): DriftReport {
  const spec = status.spec;
  return {
    revision: spec?.revision ?? null,
    file: spec?.fileOnDisk ?? "unknown",
    path: spec?.file ?? null,
    lines: renderSpecDrift(spec),
    instances: (status.partial ?? [])
      .filter((p) => SPEC_DRIFT_KINDS.has(p.kind))
      .map((p) => ({
        kind: p.kind,
        service: p.service ?? null,
        instances: p.instances ?? [],
        detail: p.detail,
      })),
  };
}

function renderDrift(drift: DriftReport): string[] {
  const lines: string[] = [];
  if (drift.revision === null) lines.push("spec: no revision recorded");
  else if (drift.file === "same") lines.push(`spec: revision ${drift.revision}, fleet file unchanged`);
  lines.push(...drift.lines);
  if (drift.instances.length === 0) lines.push("instances: every running instance matches the spec");
  for (const finding of drift.instances) {
    const names = finding.instances.length > 0 ? ` (${finding.instances.join(", ")})` : "";
    lines.push(`! ${finding.service ?? "fleet"}: ${finding.kind}${names}: ${finding.detail}`);
  }
  return lines;
}

function renderCheck(doc: CheckDocument, io: CliIo): void {
  if (doc.findings.length === 0) io.out("shared fate: none found");
  else {
    io.out(
      table(
        ["SEVERITY", "SERVICE", "KIND", "FINDING", "FIX"],
        doc.findings.map((f) => [f.severity, f.service, f.kind, f.message, f.fix]),
      ),
    );
  }
  io.out("");
  // JSON has no Infinity: a fleet of one zone (which no capacity survives losing) arrives as null.
  const factor: number | null = doc.requiredCapacityFactor;
  io.out(
    factor !== null && Number.isFinite(factor)
      ? `static stability (losing any one zone needs ${factor.toFixed(2)}× the load in capacity):`
      : "static stability (one zone: no capacity survives losing it):",
  );
  io.out(
    table(
      ["ZONE LOST", "SURVIVORS' PEAK", "HEADROOM", "VERDICT"],
      doc.headroom.map((h) => [
        h.zone,
        Number.isFinite(h.survivorPeakUtilization)
          ? `${(h.survivorPeakUtilization * 100).toFixed(0)} %`
          : "no survivor",
        `${h.headroomRps.toFixed(1)} rps`,
        h.survivesLoss ? "survives" : "OVERLOADS the others",
      ]),
    ),
  );
  for (const s of doc.skipped) io.out(`  (${s.service} left out: ${s.reason})`);
}

export function renderFailoverPlan(
  plan: FailoverPlan & { skipped?: { service: string; reason: string }[] },
  io: CliIo,
): void {
  io.out(`failover of ${plan.domain}: ${plan.feasible ? "FEASIBLE" : "NOT FEASIBLE"} — ${plan.summary}`);
  io.out(`targets: ${plan.targets.join(", ") || "none"}`);
  for (const step of plan.steps) {
    io.out("");
    io.out(
      `step ${step.index}: ${step.shiftedPercent} % moved, peak ${(step.peakUtilization * 100).toFixed(0)} %${step.withinCeiling ? "" : " (OVER the ceiling)"}`,
    );
    for (const add of step.addInstances)
      io.out(`  + ${add.count} × ${add.service} in ${add.zone}: ${add.reason}`);
    for (const shed of step.shed)
      io.out(`  - shed ${shed.rps.toFixed(2)} rps ${shed.criticality} ${shed.service}: ${shed.reason}`);
    for (const reason of step.reasons) io.out(`  · ${reason}`);
  }
  for (const s of plan.skipped ?? []) io.out(`(${s.service} left out: ${s.reason})`);
}
