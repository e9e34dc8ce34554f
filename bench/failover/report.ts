/**
 * The markdown printed at the end of a failover run, for docs/benchmarks.md.
 */

import { describeCode, pairedRatio } from "../proxy/report.ts";
import type { TrialCheck } from "./analysis.ts";
import { HAPROXY_SETUP } from "./haproxyConfig.ts";
import { renderHungMarkdown } from "./hung.ts";
import {
  type Column,
  type FailoverResult,
  type FailoverScenario,
  type FailoverTrial,
  isHomeostatScenario,
  type PairedComparison,
  type ScenarioSummary,
  scenarioLabel,
} from "./results.ts";
import { GENERATOR_CONNECTIONS, QUIET_PERCENT } from "./trial.ts";

const HOMEOSTAT_DETECTION =
  "the child-exit event: the controller started the instance and is its parent, so it hears of the exit at once (no probe, no failed request); a supervisor's advantage that a proxy in front of processes it did not start cannot have";

function label(s: FailoverScenario): string {
  return s === "homeostat" || s === "homeostat-haproxy" ? `**${scenarioLabel(s)}**` : scenarioLabel(s);
}

/** The managed HAProxy adds no retry header (its retries are in its log line): not seen here. */
function retriedCell(s: ScenarioSummary): string {
  return s.scenario === "homeostat-haproxy" ? "not seen (no retry header)" : runs(s.retried);
}

function value(v: number | null, unit = ""): string {
  if (v === null) return "–";
  const rounded = Math.round(v);
  return `${rounded < 0 ? "−" : ""}${Math.abs(rounded)}${unit}`;
}

function runs(c: Column, unit = ""): string {
  return `${c.runs.map((v) => value(v, unit)).join(" / ")} (median **${value(c.median, unit)}**)`;
}

function routingRow(s: ScenarioSummary): string {
  return `| ${label(s.scenario)} | ${s.ok}/${s.trials} | ${s.checksOk}/${s.trials} | ${runs(s.failed)} | ${retriedCell(s)} | ${s.scenario.startsWith("homeostat") && s.scenario !== "homeostat-haproxy" ? runs(s.hedged) : "–"} | ${runs(s.lastTouchedMs, " ms")} |`;
}

function detectionRow(s: ScenarioSummary, trials: readonly FailoverTrial[]): string {
  const mine = trials.filter((t) => t.scenario === s.scenario && t.ok);
  if (isHomeostatScenario(s.scenario)) {
    const kinds = [...new Set(mine.map((t) => t.controller?.incidentKind ?? "–"))].join(", ");
    return `| ${label(s.scenario)} | ${HOMEOSTAT_DETECTION} | ${runs(s.detectedMs, " ms")} | incident kind: ${kinds || "–"} |`;
  }
  const reasons = [...new Set(mine.map((t) => t.markedDownReason ?? "–"))].join(", ");
  return `| ${label(s.scenario)} | ${HAPROXY_SETUP[s.scenario].detection} | ${runs(s.markedDownMs, " ms")} | HAProxy's reason: ${reasons || "–"} |`;
}

function latencyRow(s: ScenarioSummary): string {
  return `| ${label(s.scenario)} | ${runs(s.baselineP99Ms, " ms")} | ${runs(s.afterKillP99Ms, " ms")} | ${runs(s.worstAfterKillMs, " ms")} | ${
    Object.entries(s.failures)
      .map(([k, n]) => `${k}: ${n}`)
      .join(", ") || "none"
  } |`;
}

function checkCell(checks: readonly TrialCheck[]): string {
  const failed = checks.filter((c) => !c.ok);
  return failed.length === 0
    ? `all ${checks.length} pass`
    : `**failed:** ${failed.map((c) => `${c.name} (${c.detail.replaceAll("|", "\\|")})`).join("; ")}`;
}

function trialRow(t: FailoverTrial): string {
  const f = t.figures;
  const warm = t.warmup === null ? "–" : String(t.warmup.non2xx + t.warmup.errors);
  const seen = isHomeostatScenario(t.scenario) ? (t.controller?.detectedMs ?? null) : t.markedDownMs;
  return `| ${label(t.scenario)} | ${t.repeat + 1} | ${t.victim} | ${t.ok ? f.failed : "–"} | ${t.ok ? f.retried : "–"} | ${value(seen, " ms")} | ${warm} | ${t.checksOk ? "**pass**" : "**fail**"} | ${checkCell(t.checks)} |`;
}

function pairedLine(c: PairedComparison): string {
  return `- ${scenarioLabel(c.a)} ÷ ${scenarioLabel(c.b)}, ${c.what}: ${pairedRatio(c.pairs.ratio, c.pairs.valid, c.pairs.rounds)}${c.pairs.ratio === null ? "" : `; each round: ${c.pairs.ratio.values.map((v) => v.toFixed(2)).join(" / ")}`}.`;
}

function fenced(title: string, lang: string, text: string): string[] {
  return [`${title}:`, "", `\`\`\`${lang}`, text.trimEnd(), "```", ""];
}

export function renderFailoverMarkdown(r: FailoverResult): string {
  const t = r.homeostatReadiness;
  const o = r.options;
  const haproxyScenarios = r.summaries.map((s) => s.scenario).filter((s) => !isHomeostatScenario(s));
  const unquiet = r.trials.filter((x) => x.before !== null && !x.before.quiet).length;
  const lines = [
    `### Failover run of ${r.startedAt}`,
    "",
    `Date: ${r.dateUtc}. Machine: ${r.machine.cpus} CPU (${r.machine.cpuModel}), ${r.machine.memoryGiB} GiB RAM, Linux ${r.machine.kernel}, Node ${r.machine.node}; ${r.tools.haproxy}; ${r.tools.wrk}. The run took ${(r.durationMs / 1000).toFixed(0)} s. Code: ${describeCode(r.code)}.`,
    "",
    `**Headline:** ${r.headline}`,
    "",
    `Capacity through Homeostat's front port (\`${r.calibration.homeostat.command}\`, path \`${o.path}\`): ${Math.round(r.calibration.homeostat.requestsPerSecond)} req/s; through HAProxy (default checks): ${Math.round(r.calibration.haproxyDefault.requestsPerSecond)} req/s. Load: open loop, **${r.calibration.ratePerSecond} req/s** of \`GET ${o.path}\` for every scenario, from a generator with up to ${GENERATOR_CONNECTIONS} connections (HAProxy: \`maxconn 8000\`), a ${o.warmupMs / 1000} s warm-up (not counted, its failures listed), then ${o.beforeKillMs / 1000} s before the kill and ${o.afterKillMs / 1000} s after. Homeostat's readiness probe: every ${t.intervalMs} ms, timeout ${t.timeoutMs} ms, failure threshold ${t.failureThreshold}, success threshold ${t.successThreshold}.`,
    "",
    "How each contender learns of the kill, and what it does with a request that meets the dead instance:",
    "",
    ...(r.summaries.some((s) => s.scenario === "homeostat" || s.scenario === "homeostat-static-limit")
      ? [
          `- **Homeostat** (controller + proxy, default traffic settings): detection by ${HOMEOSTAT_DETECTION}. Routing: the proxy retries an idempotent request that failed on another instance (up to 3 attempts, within the retry budget); the controller also starts a replacement.`,
        ]
      : []),
    ...(r.summaries.some((s) => s.scenario === "homeostat-haproxy")
      ? [
          `- **Homeostat + HAProxy** (the same controller and defaults, the service on \`traffic.engine: haproxy\`: a managed HAProxy moves the bytes, its own checks off): detection as Homeostat's; the data plane sets the dead instance's server out of rotation through HAProxy's Runtime API. Routing: HAProxy's \`retry-on conn-failure empty-response response-timeout 502 503 504\` with \`option redispatch 1\` (the engine's rendering of the same retry policy: 2 retries, each to another server). HAProxy adds no header saying a request was retried, so "retried" is not seen for it.`,
        ]
      : []),
    ...haproxyScenarios.map((s) => {
      const setup = HAPROXY_SETUP[s as keyof typeof HAPROXY_SETUP];
      return `- **${setup.label}**: detection by ${setup.detection}${s === "haproxy-passive" ? ` (\`error-limit ${o.passiveErrorLimit}\`)` : ""}. Routing: ${setup.routing}. Nothing restarts the killed instance during the trial.`;
    }),
    "",
    "**Routing: what the clients saw.** Trials ran = ran to the end; passed = passed every check of the bench (below). The figures are those of the trials that ran.",
    "",
    "| Scenario | Trials ran | Trials passed checks | Failed requests | Retried (answered 200) | Hedged (not retries; Homeostat only) | Last request sent that hit the killed instance (failed or retried), after the kill |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    ...r.summaries.map(routingRow),
    "",
    "**Detection, apart from routing:** when the one that decides learnt of the kill, and how.",
    "",
    "| Scenario | How the kill is learnt | Kill → detected (Homeostat's incident) / marked DOWN (HAProxy) | Reported as |",
    "| --- | --- | --- | --- |",
    ...r.summaries.map((s) => detectionRow(s, r.trials)),
    "",
    ...(r.paired.length === 0
      ? []
      : [
          `Homeostat against ${r.haproxyBest === null ? "HAProxy" : scenarioLabel(r.haproxyBest)}, **paired by round** (the trials of one round ran back to back, their order rotated each round; a round counts when both trials passed every check and the divisor is above 0): median of the rounds' ratios, with IQR and range.`,
          "",
          ...r.paired.map(pairedLine),
          "",
        ]),
    ...r.summaries
      .filter((s) => isHomeostatScenario(s.scenario))
      .map(
        (s) =>
          `${scenarioLabel(s.scenario)}: the replacement was ready for the controller ${runs(s.replacementReadyMs, " ms")} after the kill; the first request answered by it ended ${runs(s.replacementServesMs, " ms")} after the kill.`,
      ),
    "",
    "| Scenario | p99 latency, second before the kill | p99, second after the kill | Slowest request after the kill | Failures by kind (all trials) |",
    "| --- | --- | --- | --- | --- |",
    ...r.summaries.map(latencyRow),
    "",
    `**Every trial and the bench's own checks.** A trial passes when it ran to the end, the victim answered requests before the kill, nothing failed more than 100 ms before the kill or in the warm-up, the generator never sent a request more than ${o.maxGeneratorLatenessMs} ms after its due time, the machine was quiet before it, and the kill was reported (Homeostat's incident, HAProxy's DOWN).`,
    "",
    "| Scenario | Trial | Killed | Failed | Retried | Kill → detected / DOWN | Warm-up failed | Checks | Failed checks |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...r.trials.map(trialRow),
    "",
    `Trials that passed every check: ${r.trials.filter((x) => x.checksOk).length} of ${r.trials.length}. Warm-up failures (not counted in the figures above): ${r.summaries.map((s) => `${scenarioLabel(s.scenario)} ${s.warmupFailed.runs.map((v) => value(v)).join(" / ")}`).join("; ")}.`,
    "",
    `Other work on the machine: before each trial the bench waited until all CPUs together were at most ${QUIET_PERCENT} % busy (1 s reading, with the bench's own fleets idle); the busiest reading that let a trial start was ${Math.max(0, ...r.trials.map((x) => x.before?.busyPercent ?? 0)).toFixed(0)} %${unquiet > 0 ? `; ${unquiet} trials went ahead after 3 minutes without the machine calming down` : ""}.`,
    "",
    `Target: zero failed idempotent requests through Homeostat, in every trial that ran: ${r.summaries.some((s) => s.scenario === "homeostat") ? `**${r.targets.zeroFailedThroughHomeostat ? "met" : "missed"}**` : "not run"}.${r.targets.zeroFailedThroughHomeostatHaproxy == null ? "" : ` Through Homeostat + HAProxy (issue 14): **${r.targets.zeroFailedThroughHomeostatHaproxy ? "met" : "missed"}**.`} Leftover processes after teardown: ${r.leftoverPids.length}.`,
    "",
    ...(r.hung == null ? [] : renderHungMarkdown(r.hung)),
    "",
    "<details><summary>Every contender's configuration, as written</summary>",
    "",
    ...Object.entries(r.fleetYaml).flatMap(([s, yaml]) =>
      fenced(
        `${scenarioLabel(s as FailoverScenario)}: the fleet file given to \`homeostat up\``,
        "yaml",
        yaml,
      ),
    ),
    ...Object.entries(r.haproxyConfigs).flatMap(([s, cfg]) =>
      fenced(`${scenarioLabel(s as FailoverScenario)}: \`haproxy -db -f haproxy.cfg\``, "", cfg),
    ),
    "</details>",
    "",
  ];
  return `${lines.join("\n")}\n`;
}
