/**
 * The markdown the bench prints: the tables docs/benchmarks.md quotes ("Failover across zones").
 */

import type { Summary } from "../foundation/stats.ts";
import { CRITICALITIES } from "./analysis.ts";
import { CEILING, FAILED_ZONE, FAILOVER, INSTANCE_CAPACITY_RPS, WORK_MS, WORKERS } from "./fleet.ts";
import type { FailureTotals, ScenarioSummary, ZonesBenchResult } from "./results.ts";

function pct(value: number, digits = 1): string {
  return `${(value * 100).toFixed(digits)} %`;
}

function s(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** "p50 (min–max)" of a summary, or "–". */
function spread(summary: Summary | null, unit: (v: number) => string): string {
  if (summary === null) return "–";
  if (summary.n === 1 || summary.min === summary.max) return unit(summary.p50);
  return `${unit(summary.p50)} (${unit(summary.min)}–${unit(summary.max)})`;
}

function failures(t: FailureTotals): string {
  if (t.sent === 0) return "–";
  const causes = [
    t.shed > 0 ? `${t.shed} shed` : "",
    t.http5xx > 0 ? `${t.http5xx} 5xx` : "",
    t.timeout > 0 ? `${t.timeout} timeout` : "",
    t.connectionError > 0 ? `${t.connectionError} conn` : "",
    t.other > 0 ? `${t.other} other` : "",
  ].filter((c) => c !== "");
  return `${pct(t.failedShare ?? 0, 2)} (${t.failed}/${t.sent}${causes.length > 0 ? `: ${causes.join(", ")}` : ""})`;
}

function checks(summary: ScenarioSummary): string {
  const c = summary.checks;
  const n = summary.ok;
  return `ceiling ${c.ceilingHeldWithinOneStep}/${n}, shed order ${c.sheddableShedBeforeDefault}/${n}, critical < 0.1 % ${c.criticalErrorRateBelow0_1Percent}/${n}`;
}

export function renderMarkdown(result: ZonesBenchResult): string {
  const m = result.machine;
  const o = result.options;
  const lines: string[] = [];
  lines.push("## Failover across zones");
  lines.push("");
  lines.push(
    `- ${result.dateUtc} (${s(result.durationMs)}), \`${result.command}\`; ${m.cpus} CPUs, ${m.cpuModel}, ${m.memoryGiB} GiB, ` +
      `Linux ${m.kernel}, Node ${m.node}; load average ${m.loadAverage1m.toFixed(2)} → ${m.loadAverage1mAtEnd.toFixed(2)}; ` +
      `commit ${result.code.commit?.slice(0, 7) ?? "?"}${result.code.changedFiles.length > 0 ? ` + uncommitted changes in ${result.code.changedFiles.length} file(s) (diff sha256 ${result.code.diffSha256?.slice(0, 12)})` : ""}.`,
  );
  lines.push(
    `- One service, 2 instances per zone, each the demo app with ${WORKERS} slots × ${WORK_MS} ms = ${INSTANCE_CAPACITY_RPS} req/s ` +
      `(declared \`capacity.rps\`), ceiling ${pct(CEILING, 0)}, \`maxReplicas\` 2 × replicas. Open-loop GET at ${pct(o.loadFraction, 0)} of the ` +
      `fleet's capacity, 20 % critical / 50 % default / 30 % sheddable, client timeout ${s(o.clientTimeoutMs)}. ` +
      `${s(o.warmupMs)} warm-up, ${FAILED_ZONE} blackholed (\`POST /v1/faults\`) for ${s(o.outageMs)}, ${s(o.tailMs)} after. ` +
      `failover: stepPercent ${FAILOVER.stepPercent}, stepInterval ${s(FAILOVER.stepIntervalMs)}, stabilization ${s(FAILOVER.stabilizationMs)}. ` +
      `NAIVE = the same fleet with \`failover.automatic: false\`. ${o.repeats} trial(s) each.`,
  );
  lines.push(
    "- Utilization is each instance's own (`GET /stats`: Δ busy slot-time ÷ (Δt × slots)), read once a second; " +
      "failures are counted from the fault to the end of the run.",
  );
  lines.push("");
  lines.push(
    "| Scenario | Mode | Load | Failed critical | Failed default | Failed sheddable | p99 of successes during the outage | Survivors' peak utilization | Longest above the ceiling | Last attempt to the failed zone | Added capacity ready | Checks |",
  );
  lines.push("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const summary of result.summaries) {
    lines.push(
      `| ${summary.scenario} | ${summary.mode.toUpperCase()}${summary.mode === "homeostat" && summary.failoverActed === 0 ? " (no failover event)" : ""} | ` +
        `${summary.ratePerSecond ?? "–"} req/s | ${CRITICALITIES.map((c) => failures(summary.failures[c])).join(" | ")} | ` +
        `${spread(summary.outageOkP99Ms, (v) => `${Math.round(v)} ms`)} | ` +
        `${spread(summary.peakSurvivorUtilization, (v) => pct(v, 0))} | ${spread(summary.longestAboveCeilingMs, s)} | ` +
        `${spread(summary.failedZoneLastAttemptMs, s)} | ${spread(summary.capacityReadyMs, s)} | ${checks(summary)} |`,
    );
  }
  lines.push("");
  lines.push("Medians over the trials, (min–max) when they differ; times from the fault.");
  lines.push("");
  lines.push(
    "| Scenario | Mode | # | Baseline util. | Survivors' peak (offered) | Settled survivors' util. | Above ceiling: longest / survivor-s | First ejection in the failed zone | Last attempt / last served there | Capacity ready (event / status) | Failover events |",
  );
  lines.push("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const t of result.trials) {
    const f = t.figures;
    if (f === null) {
      lines.push(`| ${t.scenario} | ${t.mode} | ${t.repeat + 1} | FAILED: ${t.error ?? "?"} | | | | | | | |`);
      continue;
    }
    const opt = (v: number | null, unit: (x: number) => string) => (v === null ? "–" : unit(v));
    const kinds = [...new Set(f.failoverEvents.map((e) => e.type))];
    lines.push(
      `| ${t.scenario} | ${t.mode} | ${t.repeat + 1} | ${opt(f.baselineUtilization, (v) => pct(v, 0))} | ` +
        `${opt(f.peakSurvivorUtilization, (v) => pct(v, 0))} (${opt(f.peakSurvivorOffered, (v) => pct(v, 0))}) | ` +
        `${opt(f.settledSurvivorUtilization, (v) => pct(v, 0))} | ${s(f.longestAboveCeilingMs)} / ${f.survivorSecondsAboveCeiling.toFixed(0)} | ` +
        `${opt(f.firstEjectionMs, s)} | ${opt(f.failedZoneLastAttemptMs, s)} / ${opt(f.failedZoneLastServedMs, s)} | ` +
        `${opt(f.capacityReadyEventMs, s)} / ${opt(f.addedInstanceReadyMs, s)} | ` +
        `${f.failoverEvents.length === 0 ? "none" : `${f.failoverEvents.length}: ${kinds.join(", ")}`} |`,
    );
  }
  lines.push("");
  const silent = result.summaries.filter((x) => x.mode === "homeostat" && x.failoverActed < x.ok);
  if (silent.length > 0) {
    lines.push(
      `HOMEOSTAT emitted no failover event in ${silent.map((x) => `${x.ok - x.failoverActed} of ${x.ok} ${x.scenario} trial(s)`).join(", ")}: ` +
        "there it behaved as NAIVE (only the data plane's outlier ejection moved the traffic).",
    );
    lines.push("");
  }
  if (result.leftoverPids.length > 0)
    lines.push(`Leftover processes (SIGKILLed): ${result.leftoverPids.join(", ")}.`);
  return `${lines.join("\n")}\n`;
}
