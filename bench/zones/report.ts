/**
 * The markdown the bench prints: the tables docs/benchmarks.md quotes ("Failover across zones"):
 * the summaries per scenario × fault × load × contender, the paired ratios against HAProxy, every
 * trial with its own checks pass/fail, and each contender's full configuration.
 */

import type { Summary } from "../foundation/stats.ts";
import { CRITICALITIES, outageP99, type PairedRatio, RATIO_METRICS } from "./analysis.ts";
import {
  CEILING,
  FAILED_ZONE,
  FAILOVER,
  INSTANCE_CAPACITY_RPS,
  READINESS,
  TRAFFIC,
  WORK_MS,
  WORKERS,
} from "./fleet.ts";
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
  const n = summary.valid;
  return `critical < 0.1 % ${c.criticalErrorRateBelow0_1Percent}/${n}, shed order ${c.sheddableShedBeforeDefault}/${n}, ceiling ${c.ceilingHeldWithinOneStep}/${n}`;
}

function faultLabel(fault: string, kind: string): string {
  return fault === "partition" ? `partition (${kind})` : "hook (simulation)";
}

function ratio(r: PairedRatio | undefined): string {
  if (r === undefined || r.pairs === 0) return "–";
  const parts: string[] = [];
  const x = (v: number) => `${v.toFixed(2)}×`;
  if (r.summary !== null)
    parts.push(`${spread(r.summary, x)}${r.summary.n < r.pairs ? ` [${r.summary.n} of ${r.pairs}]` : ""}`);
  if (r.zeroBaseline.length > 0)
    parts.push(
      `HAProxy 0 in ${r.zeroBaseline.length} pair(s) (contender ${r.zeroBaseline.map((v) => (v < 1 && v > 0 ? v.toPrecision(2) : String(Math.round(v * 100) / 100))).join(", ")})`,
    );
  return parts.length === 0 ? "–" : parts.join("; ");
}

const MODE_LABEL: Record<string, string> = { haproxy: "HAPROXY", homeostat: "HOMEOSTAT", naive: "NAIVE" };

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
      `(declared \`capacity.rps\`), ceiling ${pct(CEILING, 0)}, \`maxReplicas\` 2 × replicas. Open-loop GET at ${o.loadFractions.map((f) => pct(f, 0)).join(" and ")} of the ` +
      `fleet's capacity, 20 % critical / 50 % default / 30 % sheddable, client timeout ${s(o.clientTimeoutMs)}. ` +
      `${s(o.warmupMs)} warm-up, ${FAILED_ZONE} cut off for ${s(o.outageMs)}, ${s(o.tailMs)} after. ${o.repeats} paired round(s).`,
  );
  lines.push(
    `- Faults. **partition** (real): nftables rules on loopback ${o.partitionKind === "blackhole" ? "drop every packet" : "reset every connection"} to and from every port of ${FAILED_ZONE}'s slots (both banks), ` +
      "so the balancer's requests, its checks or probes, and the bench's own readings of those instances all see it. " +
      "**hook** (a simulation, Homeostat only): `POST /v1/faults` blackholes the zone inside Homeostat's proxy and zone probe; the network is untouched and nothing else sees it.",
  );
  lines.push(
    `- Contenders on the same instances, ports and zones. HAPROXY: active HTTP checks ${READINESS.intervalMs} ms / ${READINESS.timeoutMs} ms / fall ${READINESS.failureThreshold} / rise ${READINESS.successThreshold} ` +
      `(Homeostat's readiness and zone probe budget), passive checks (\`observe layer7 error-limit ${TRAFFIC.outlierConsecutiveFailures} on-error mark-down\`), ` +
      `${TRAFFIC.attempts} attempts of ${TRAFFIC.perTryTimeoutMs} ms redispatched, \`maxconn ${WORKERS}\` per server, \`timeout queue ${TRAFFIC.queueTimeoutMs}ms\`, priority classes by criticality, leastconn; ` +
      "its own 503s count as shed. HAProxy cannot add capacity or refuse by criticality before the queue timeout. " +
      `HOMEOSTAT: failover on (stepPercent ${FAILOVER.stepPercent}, stepInterval ${s(FAILOVER.stepIntervalMs)}, stabilization ${s(FAILOVER.stabilizationMs)}), ` +
      `per try ${TRAFFIC.perTryTimeoutMs} ms, request ${TRAFFIC.requestTimeoutMs} ms, queue ${TRAFFIC.queueTimeoutMs} ms. NAIVE: the same fleet with \`failover.automatic: false\`. Full configurations below.`,
  );
  lines.push(
    "- Utilization is each instance's own (`GET /stats`: Δ busy slot-time ÷ (Δt × slots)), read once a second; " +
      "failures are counted from the fault to the end of the run; latency runs from each request's due time. " +
      `Checks, per trial: critical failed < 0.1 %; no default request shed before the first sheddable one; no survivor's run of consecutive readings above the ceiling longer than one step (the readings' measured durations added up, compared with ${FAILOVER.stepIntervalMs} ms as they are). ` +
      "A trial whose load generator fell behind is invalid: counted, and left out of every summary.",
  );
  lines.push(
    `- Trials: ${result.trials.length} run, ${result.failedTrials} failed to run, ${result.invalidTrials} invalid (generator fell behind).`,
  );
  lines.push("");
  lines.push(
    "| Scenario | Fault | Load | Mode | Valid trials | Trials ok (all checks) | Checks passed | Failed critical | Failed default | Failed sheddable | Warm-up failures | p99 of successes during the outage | Survivors' peak utilization | Longest above the ceiling | Last attempt to the failed zone | First ejection / DOWN there | Added capacity ready | Achieved ÷ offered rate |",
  );
  lines.push(
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  );
  for (const x of result.summaries) {
    lines.push(
      `| ${x.scenario} | ${faultLabel(x.fault, o.partitionKind)} | ${pct(x.loadFraction, 0)} (${x.ratePerSecond ?? "–"} req/s) | ${MODE_LABEL[x.mode] ?? x.mode}${x.mode === "homeostat" && x.failoverActed < x.valid ? ` (no failover event in ${x.valid - x.failoverActed})` : ""} | ` +
        `${x.valid} of ${x.trials}${x.invalid > 0 ? ` (${x.invalid} invalid)` : ""}${x.trials - x.ok > 0 ? ` (${x.trials - x.ok} failed)` : ""} | ${x.trialsOk}/${x.valid} | ${checks(x)} | ` +
        `${CRITICALITIES.map((c) => failures(x.failures[c])).join(" | ")} | ${x.warmupFailed} of ${x.warmupSent} | ` +
        `${spread(x.outageOkP99Ms, (v) => `${Math.round(v)} ms`)} | ` +
        `${spread(x.peakSurvivorUtilization, (v) => pct(v, 0))} | ${spread(x.longestAboveCeilingMs, (v) => `${Math.round(v)} ms`)} | ` +
        `${spread(x.failedZoneLastAttemptMs, s)} | ${spread(x.firstEjectionMs, s)} | ${spread(x.capacityReadyMs, s)} | ${spread(x.achievedFraction, (v) => pct(v, 1))} |`,
    );
  }
  lines.push("");
  lines.push("Medians over the valid trials, (min–max) when they differ; times from the fault.");
  lines.push("");
  if (result.comparisons.length > 0) {
    lines.push(
      `| Scenario | Load | Mode | Pairs | ${RATIO_METRICS.map((r) => `${r.label} × HAProxy`).join(" | ")} |`,
    );
    lines.push(`| --- | --- | --- | --- | ${RATIO_METRICS.map(() => "---").join(" | ")} |`);
    for (const c of result.comparisons) {
      lines.push(
        `| ${c.scenario} | ${pct(c.loadFraction, 0)} | ${MODE_LABEL[c.mode] ?? c.mode} | ${c.pairs} | ${RATIO_METRICS.map((r) => ratio(c.ratios[r.key])).join(" | ")} |`,
      );
    }
    lines.push("");
    lines.push(
      "Paired: in each round the contender's figure ÷ HAProxy's on the same scenario and load (run back to back); median of those ratios (min–max). " +
        "A pair in which HAProxy's figure is 0 has no ratio and is listed with the contender's value; a pair with an invalid or failed trial is left out.",
    );
    lines.push("");
  }
  lines.push(
    "| Scenario | Fault | Load | Mode | Round (order) | Generator | Critical < 0.1 % | Shed order | Ceiling (longest run) | Failed crit / default / sheddable | Warm-up failures | p99 outage | Survivors' peak | Last attempt there | First ejection / DOWN | Capacity ready | Failover events | Wall |",
  );
  lines.push(
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  );
  const pf = (ok: boolean) => (ok ? "pass" : "**MISS**");
  for (const t of result.trials) {
    const head = `| ${t.scenario} | ${faultLabel(t.fault, o.partitionKind)} | ${pct(t.loadFraction, 0)} | ${MODE_LABEL[t.mode] ?? t.mode} | ${t.repeat + 1} (${t.order + 1}) |`;
    const f = t.figures;
    if (f === null) {
      lines.push(`${head} FAILED: ${t.error ?? "?"} | | | | | | | | | | | | |`);
      continue;
    }
    const g = t.generator;
    const opt = (v: number | null, unit: (x: number) => string) => (v === null ? "–" : unit(v));
    const kinds = [...new Set(f.failoverEvents.map((e) => e.type))];
    const failed = CRITICALITIES.map((c) => `${f.sinceFault[c].failed}`).join(" / ");
    lines.push(
      `${head} ${g === null ? "?" : g.valid ? `valid, ${opt(g.achievedRatePerSecond, (v) => v.toFixed(1))} req/s` : `**INVALID**: ${g.invalidReason}`} | ` +
        `${pf(f.checks.criticalErrorRateBelow0_1Percent)} | ${pf(f.checks.sheddableShedBeforeDefault)} | ${pf(f.checks.ceilingHeldWithinOneStep)} (${f.longestAboveCeilingMs.toFixed(1)} ms) | ` +
        `${failed} | ${f.warmupFailed} | ${opt(outageP99(f), (v) => `${Math.round(v)} ms`)} | ${opt(f.peakSurvivorUtilization, (v) => pct(v, 0))} | ` +
        `${opt(f.failedZoneLastAttemptMs, s)} | ${opt(f.firstEjectionMs, s)} | ${opt(f.capacityReadyEventMs ?? f.addedInstanceReadyMs, s)} | ` +
        `${f.failoverEvents.length === 0 ? "none" : `${f.failoverEvents.length}: ${kinds.join(", ")}`} | ${s(t.wallMs)} |`,
    );
  }
  lines.push("");
  lines.push("### Configurations");
  lines.push("");
  for (const [name, text] of Object.entries(result.configurations)) {
    lines.push(`${name}:`);
    lines.push("");
    lines.push(name.endsWith("haproxy") || name.includes("503") ? "```" : "```yaml");
    lines.push(text.replace(/\r\n/g, "\n").trimEnd());
    lines.push("```");
    lines.push("");
  }
  if (result.leftoverPids.length > 0)
    lines.push(`Leftover processes (SIGKILLed): ${result.leftoverPids.join(", ")}.`);
  return `${lines.join("\n")}\n`;
}
