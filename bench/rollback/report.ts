/**
 * The markdown the bench prints: the tables docs/rollback.md quotes.
 */

import type { Summary } from "../foundation/stats.ts";
import type { MigrationScenario } from "./migrationScenario.ts";
import type { RollbackBenchResult } from "./results.ts";

function ms(value: number): string {
  return `${Math.round(value)} ms`;
}

function s(value: number): string {
  return `${(value / 1000).toFixed(1)} s`;
}

function pct(value: number): string {
  return `${(value * 100).toFixed(2)} %`;
}

function msFine(value: number): string {
  return `${value.toFixed(2)} ms`;
}

/** min–max of a per-trial figure, or – without trials. */
function range(summary: Summary | null, unit: (v: number) => string): string {
  if (summary === null) return "–";
  return summary.min === summary.max ? unit(summary.min) : `${unit(summary.min)}–${unit(summary.max)}`;
}

function row(label: string, summary: Summary | null, unit: (v: number) => string): string {
  if (summary === null) return `| ${label} | 0 | – | – | – |`;
  return `| ${label} | ${summary.n} | ${unit(summary.min)} | **${unit(summary.p50)}** | ${unit(summary.max)} |`;
}

export function renderMarkdown(result: RollbackBenchResult): string {
  const { summary } = result.canary;
  const sc = result.scenario;
  const m = result.machine;
  const lines: string[] = [];
  lines.push("## Rollback: a failing canary under load");
  lines.push("");
  lines.push(
    `- ${result.startedAt} (${s(result.durationMs)}), \`${result.command}\`; ${m.cpus} CPUs, ${m.cpuModel}, ` +
      `${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}; load average ${m.loadAverage1m.toFixed(2)} → ` +
      `${m.loadAverage1mAtEnd.toFixed(2)}; commit ${m.git?.commit.slice(0, 7) ?? "?"}${m.git?.dirty ? " + uncommitted changes" : ""}.`,
  );
  lines.push(
    `- ${sc.service}: ${sc.replicas} replicas, steps ${sc.steps.join("/")} %, stepDuration ${s(sc.stepDurationMs)}, ` +
      `stepDeadline ${s(sc.stepDeadlineMs)}, soak ${s(sc.soakMs)}, minRequests ${sc.minRequests}; ` +
      `canary error rate ${pct(sc.canaryErrorRate)}; load ${result.options.ratePerSecond} req/s open loop on :${sc.frontPort}.`,
  );
  lines.push(
    `- Trials: ${summary.ok} of ${summary.trials} ok; ${summary.invalid} of those invalid (the load generator fell behind: ` +
      `counted, left out of every figure below); **${summary.valid} summarised**.`,
  );
  lines.push(
    `- Load generator (bench/common/loadgen, open loop; lateness = written − due, latency from the due time), per valid trial: ` +
      `achieved ÷ offered rate ${range(summary.achievedFraction, pct)}, lateness p99 ${range(summary.latenessP99Ms, msFine)}, ` +
      `latency p99 ${range(summary.latencyP99Ms, ms)}.`,
  );
  lines.push("");
  lines.push("| Measure | n | min | p50 | max |");
  lines.push("| --- | --- | --- | --- | --- |");
  lines.push(row("(a) verdict → weights back (`traffic.weights` event)", summary.verdictToWeightsEvent, ms));
  lines.push(
    row(
      "(a) deciding tick (`failedAt`) → weights back (`traffic.weights` event)",
      summary.decidedToWeightsEvent,
      ms,
    ),
  );
  lines.push(
    row(
      "(a) verdict → send time of the last request a canary instance answered",
      summary.verdictToLastCanarySend,
      ms,
    ),
  );
  lines.push(row("(a) verdict → that last canary answer received", summary.verdictToLastCanaryAnswer, ms));
  lines.push(
    row("(b) non-200 answers, deploy start → verdict", summary.failedDeployToVerdict, (v) => String(v)),
  );
  lines.push(row("(b) their share of requests sent in that window", summary.failedShareDeployToVerdict, pct));
  lines.push(
    row("(b) non-200 answers, first step → verdict", summary.failedCanaryToVerdict, (v) => String(v)),
  );
  lines.push(row("(b) their share of requests sent in that window", summary.failedShareCanaryToVerdict, pct));
  lines.push(row("(b) share of those requests the canary answered", summary.canaryShareOfTraffic, pct));
  lines.push(row("(b) the canary's error rate as clients saw it", summary.canaryErrorRate, pct));
  lines.push(row("(c) deploy start → canary ready, first step set", summary.starting, ms));
  lines.push(row("(c) first step → failing verdict", summary.judging, ms));
  lines.push(row("(c) deploy start → failing verdict", summary.deployToVerdict, ms));
  lines.push(row("(c) canary exposure (first step → weights back)", summary.exposure, ms));
  lines.push(row("(c) deploy start → last canary instance stopped", summary.deployToCanaryStopped, ms));
  lines.push("");
  lines.push(
    `Bound for (b): first step ${sc.steps[0]} % × canary error rate ${pct(sc.canaryErrorRate)} = ${pct(summary.expectedShare)}. ` +
      `Totals over the ok trials: ${summary.failedAfterVerdictTotal} non-200 sent after the verdict, ` +
      `${summary.failedOnStableTotal} non-200 from a stable instance, ${summary.unansweredTotal} without an answer, ` +
      `${summary.canaryAnswersAfterVerdictTotal} requests sent after the verdict answered by the canary, ` +
      `${summary.canaryAnswersBeforeFirstStepTotal} requests sent before the first step's weights answered by the canary ` +
      `(${summary.failedBeforeFirstStepTotal} of them non-200); warm-up (before the deploy): ` +
      `${summary.warmupFailedTotal} non-200 of ${summary.warmupRequestsTotal}.`,
  );
  for (const t of result.canary.trials.filter((x) => !x.ok))
    lines.push(`- trial ${t.trial} FAILED: ${t.error ?? "?"}`);
  for (const reason of summary.invalidReasons) lines.push(`- INVALID ${reason}`);
  lines.push("");
  lines.push("## Rollback: refused after an irreversible migration");
  lines.push("");
  if (result.migration === null) lines.push("Not run (BENCH_MIGRATION=0).");
  for (const mig of result.migration?.attempts ?? []) lines.push(...migrationLines(mig, result.planFile));
  lines.push("");
  if (result.leftoverPids.length > 0) lines.push(`LEFTOVER PROCESSES: ${result.leftoverPids.join(", ")}`);
  return `${lines.join("\n")}\n`;
}

function migrationLines(mig: MigrationScenario, planFile: string | null): string[] {
  const lines = [`### Attempt ${mig.attempt}: ${mig.ok ? "ok" : "NOT OK"}`, ""];
  if (mig.deploy === undefined || mig.planFindings === undefined) {
    lines.push(`FAILED: ${mig.error ?? mig.problems.join("; ")}`, "");
    return lines;
  }
  lines.push(
    `- v1 proven ${s(mig.stableProvenAfterMs ?? 0)} after the controller started. ` +
      `Deploy of v3-migrates: ${mig.held ? "HELD" : mig.deploy.phase} after ${s(mig.deploy.durationMs)}; ` +
      `${mig.deploy.requests} requests meanwhile, ${mig.deploy.failed} non-200` +
      (mig.load === undefined
        ? "."
        : mig.load.valid
          ? ` (load generator kept its schedule: ${pct(mig.load.achievedFraction)} of the offered rate, lateness p99 ${msFine(mig.load.latenessP99Ms ?? 0)}).`
          : ` (load generator INVALID: ${mig.load.invalidReason}; the counts understate the load).`),
  );
  lines.push(
    `- plan rollback: decision **${mig.planFindings.decision}** (to ${mig.planFindings.to}); blocking: ` +
      `${mig.planFindings.blocking.join(", ")}; alternative: ${mig.planFindings.alternative ? `${mig.planFindings.alternative.kind} ${mig.planFindings.alternative.version}` : "none"}.`,
  );
  lines.push(
    `- checks: ${mig.ok ? "all as expected" : `PROBLEMS: ${mig.problems.join("; ")}`}. Plan JSON: ${planFile ?? "-"}`,
  );
  if (mig.cli) {
    const { planText, rollback, deployIncompatible } = mig.cli;
    lines.push("", "```");
    lines.push(`$ ${planText.command}`, planText.stdout.trimEnd());
    lines.push(
      `$ ${rollback.command}    # exit ${rollback.code}`,
      (rollback.stderr + rollback.stdout).trimEnd(),
    );
    lines.push(
      `$ ${deployIncompatible.command}    # exit ${deployIncompatible.code}`,
      (deployIncompatible.stderr + deployIncompatible.stdout).trimEnd(),
    );
    lines.push("```");
  }
  lines.push("");
  return lines;
}
