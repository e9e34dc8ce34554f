/**
 * The markdown printed at the end of a failover run, for docs/benchmarks.md.
 */

import { describeCode } from "../proxy/report.ts";
import type { Column, FailoverResult, ScenarioSummary } from "./results.ts";
import { GENERATOR_CONNECTIONS, isHomeostat, QUIET_PERCENT } from "./trial.ts";

const LABEL: Record<string, string> = {
  homeostat: "Homeostat (controller + proxy, default traffic settings)",
  "homeostat-static-limit": "Homeostat, fixed limit (`limits: { adaptive: false }`)",
  "haproxy-default": "HAProxy, default checks (`check`: TCP, inter 2s fall 3 rise 2)",
  "haproxy-tuned": "HAProxy, checks tuned to Homeostat's readiness probe",
  "haproxy-redispatch": "HAProxy, tuned checks + `retries 3`, `option redispatch 1`, `retry-on`",
};

function value(v: number | null, unit = ""): string {
  if (v === null) return "–";
  const rounded = Math.round(v);
  return `${rounded < 0 ? "−" : ""}${Math.abs(rounded)}${unit}`;
}

function runs(c: Column, unit = ""): string {
  return `${c.runs.map((v) => value(v, unit)).join(" / ")} (median **${value(c.median, unit)}**)`;
}

function row(s: ScenarioSummary): string {
  return `| ${LABEL[s.scenario] ?? s.scenario} | ${s.ok}/${s.trials} | ${runs(s.failed)} | ${runs(s.retried)} | ${runs(s.lastTouchedMs, " ms")} | ${isHomeostat(s.scenario) ? runs(s.detectedMs, " ms") : runs(s.markedDownMs, " ms")} |`;
}

function latencyRow(s: ScenarioSummary): string {
  return `| ${s.scenario} | ${runs(s.baselineP99Ms, " ms")} | ${runs(s.afterKillP99Ms, " ms")} | ${runs(s.worstAfterKillMs, " ms")} | ${Object.entries(
    s.failures,
  )
    .map(([k, n]) => `${k}: ${n}`)
    .join(", ")} |`;
}

export function renderFailoverMarkdown(r: FailoverResult): string {
  const t = r.homeostatReadiness;
  const lines = [
    `### Failover run of ${r.startedAt}`,
    "",
    `Date: ${r.dateUtc}. Machine: ${r.machine.cpus} CPU (${r.machine.cpuModel}), ${r.machine.memoryGiB} GiB RAM, Linux ${r.machine.kernel}, Node ${r.machine.node}; ${r.tools.haproxy}; ${r.tools.wrk}. The run took ${(r.durationMs / 1000).toFixed(0)} s. Code: ${describeCode(r.code)}.`,
    "",
    `Capacity through Homeostat's front port (\`${r.calibration.homeostat.command}\`, path \`${r.options.path}\`): ${Math.round(r.calibration.homeostat.requestsPerSecond)} req/s; through HAProxy (default checks): ${Math.round(r.calibration.haproxyDefault.requestsPerSecond)} req/s. Load: open loop, **${r.calibration.ratePerSecond} req/s** of \`GET ${r.options.path}\` for every scenario, from a generator with up to ${GENERATOR_CONNECTIONS} connections (HAProxy: \`maxconn 8000\`), a ${r.options.warmupMs / 1000} s warm-up (not counted), then ${r.options.beforeKillMs / 1000} s before the kill and ${r.options.afterKillMs / 1000} s after. Homeostat's readiness probe: every ${t.intervalMs} ms, timeout ${t.timeoutMs} ms, failure threshold ${t.failureThreshold}, success threshold ${t.successThreshold}.`,
    "",
    "| Scenario | Trials ok | Failed requests | Retried (answered 200) | Last request sent that hit the killed instance (failed or retried), after the kill | Kill → detected (Homeostat) / marked DOWN (HAProxy) |",
    "| --- | --- | --- | --- | --- | --- |",
    ...r.summaries.map(row),
    "",
    ...r.summaries
      .filter((s) => isHomeostat(s.scenario))
      .map(
        (s) =>
          `${s.scenario}: the replacement was ready for the controller ${runs(s.replacementReadyMs, " ms")} after the kill; the first request answered by it ended ${runs(s.replacementServesMs, " ms")} after the kill.`,
      ),
    "",
    "| Scenario | p99 latency, second before the kill | p99, second after the kill | Slowest request after the kill | Failures by kind (all runs) |",
    "| --- | --- | --- | --- | --- |",
    ...r.summaries.map(latencyRow),
    "",
    `Failures not caused by the kill — during the unmeasured ${r.options.warmupMs / 1000} s warm-up (cold connections, full rate at once), and in the measured stretch more than 100 ms before the kill:`,
    "",
    "| Scenario | Failed in the warm-up | Failed > 100 ms before the kill (included above) | Generator's worst send delay |",
    "| --- | --- | --- | --- |",
    ...r.summaries.map(
      (s) =>
        `| ${s.scenario} | ${runs(s.warmupFailed)} | ${runs(s.failedLongBeforeKill)} | ${runs(s.maxLatenessMs, " ms")} |`,
    ),
    "",
    `Other work on the machine: before each trial the bench waited until all CPUs together were at most ${QUIET_PERCENT} % busy (1 s reading, with the bench's own fleets idle); the busiest reading that let a trial start was ${Math.max(...r.trials.map((t) => t.before?.busyPercent ?? 0)).toFixed(0)} %${r.trials.some((t) => t.before !== null && !t.before.quiet) ? `; ${r.trials.filter((t) => t.before !== null && !t.before.quiet).length} trials went ahead after 3 minutes without the machine calming down` : ""}.`,
    "",
    `Target: zero failed idempotent requests through Homeostat: **${r.targets.zeroFailedThroughHomeostat ? "met" : "missed"}**. Leftover processes after teardown: ${r.leftoverPids.length}.`,
    "",
  ];
  return `${lines.join("\n")}\n`;
}
