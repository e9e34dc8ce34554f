/**
 * The markdown section printed at the end of a run, ready to paste into docs/benchmarks.md.
 */

import type { ProbeSettings } from "./fleetFacts.ts";
import type { BenchResult } from "./results.ts";
import type { Summary } from "./stats.ts";

function ms(value: number | undefined | null): string {
  return value === undefined || value === null ? "–" : `${Math.round(value)} ms`;
}

function row(label: string, s: Summary | null, extra = ""): string {
  return `| ${label} | ${s?.n ?? 0} | ${ms(s?.p50)} | ${ms(s?.p95)} | ${ms(s?.max)} |${extra}`;
}

function signed(value: number | undefined | null): string {
  if (value === undefined || value === null) return "–";
  const rounded = Math.round(value);
  return `${rounded >= 0 ? "+" : "−"}${Math.abs(rounded)} ms`;
}

function times(value: number | null): string {
  return value === null ? "–" : `${value.toFixed(1)}×`;
}

function probe(name: string, p: ProbeSettings | null): string {
  if (p === null) return `| ${name} | none | | | | |`;
  return `| ${name} | ${p.check} | ${p.intervalMs} ms | ${p.timeoutMs} ms | ${p.failureThreshold} | ${p.successThreshold} |`;
}

export function renderMarkdown(r: BenchResult): string {
  const first = r.fleet.services[0]!;
  const sameProbes = r.fleet.services.every((s) => JSON.stringify(s.probes) === JSON.stringify(first.probes));
  const hk = r.homeostat.sigkill.summary;
  const hs = r.homeostat.sigstop.summary;
  const bound = r.homeostat.sigstop.bound;
  const nk = r.naive.sigkill.summary;
  const nh = r.naive.sigstop.summary;
  const lines = [
    `### Run of ${r.startedAt}`,
    "",
    `Machine: ${r.machine.cpus} CPU (${r.machine.cpuModel}), ${r.machine.memoryGiB} GiB RAM, Linux ${r.machine.kernel}, Node ${r.machine.node}; load average ${r.machine.loadAverage1m.toFixed(2)} at start, ${r.machine.loadAverage1mAtEnd.toFixed(2)} at end. Run took ${(r.durationMs / 1000).toFixed(0)} s; ${r.options.trials} trials per scenario. Code: ${r.machine.git === null ? "not a git checkout" : `commit ${r.machine.git.commit.slice(0, 7)}${r.machine.git.dirty ? " with uncommitted changes" : ""}`}.`,
    "",
    `Fleet: \`${r.fleet.file}\`, ${r.fleet.instances} instances${sameProbes ? ", every service with these probes" : ` (probes of \`${first.service}\`)`}:`,
    "",
    "| Probe | Check | Interval | Timeout | Failure threshold | Success threshold |",
    "| --- | --- | --- | --- | --- | --- |",
    probe("startup", first.probes.startup),
    probe("readiness", first.probes.readiness),
    probe("liveness", first.probes.liveness),
    "",
    "#### Idle controller",
    "",
    "| Measure | Value |",
    "| --- | --- |",
    `| Steady probe rate (readiness + liveness, from the settings) | ${r.fleet.steadyProbesPerSecond.toFixed(1)} probes/s |`,
    `| Controller CPU over ${(r.idle.windowMs / 1000).toFixed(0)} s idle | ${r.idle.cpuPercent.toFixed(2)} % of one core (busiest 1 s: ${r.idle.cpuPercentMaxInterval.toFixed(1)} %) |`,
    `| Controller RSS | median ${r.idle.rssMiB.median.toFixed(1)} MiB, max ${r.idle.rssMiB.max.toFixed(1)} MiB |`,
    `| Start → all ${r.fleet.instances} instances ready | ${ms(r.startupToAllReadyMs)} |`,
    "",
    "#### SIGKILL of a random ready instance",
    "",
    "| Measure | n | p50 | p95 | max |",
    "| --- | --- | --- | --- | --- |",
    row("Homeostat: kill → incident detected", hk.detectedAfterMs),
    row("Homeostat: TTD (incident `ttdMs`)", hk.ttdMs),
    row("Homeostat: TTR (incident `ttrMs`)", hk.ttrMs),
    row("Homeostat: kill → status shows the replacement ready", hk.faultToReadyMs),
    row("Homeostat: kill → replacement answers `/ready`", hk.faultToAppReadyMs),
    row(
      `Naive (restart after ${r.options.naiveRestartDelayMs} ms): kill → replacement answers \`/ready\``,
      nk.faultToReadyMs,
    ),
    "",
    `Ratio Homeostat ÷ naive, kill → ready: ${times(r.ratios.sigkillStatusReadyP50)} at p50, ${times(r.ratios.sigkillStatusReadyP95)} at p95 (Homeostat's "ready" = its readiness probe passed); kill → answers \`/ready\`: ${times(r.ratios.sigkillAppReadyP50)} at p50, ${times(r.ratios.sigkillAppReadyP95)} at p95. Successful trials: Homeostat ${hk.ok}/${hk.trials}, naive ${nk.ok}/${nk.trials}.`,
    "",
    "Where Homeostat's TTR goes (SIGKILL):",
    "",
    "| Phase | n | p50 | p95 | max |",
    "| --- | --- | --- | --- | --- |",
    row("detected → replacement started (spawned)", hk.phases.detectToStartMs),
    row("started → it answers `/ready` (Node start-up)", hk.phases.startToAppReadyMs),
    row("answers `/ready` → controller marks it ready (probes)", hk.phases.appReadyToControllerReadyMs),
    "",
    "#### SIGSTOP (hang) of a random ready instance",
    "",
    "| Measure | n | p50 | p95 | max |",
    "| --- | --- | --- | --- | --- |",
    row("Homeostat: SIGSTOP → incident detected", hs.detectedAfterMs),
    row("Homeostat: TTD (incident `ttdMs`, from the last good probe)", hs.ttdMs),
    row("Homeostat: TTR (incident `ttrMs`)", hs.ttrMs),
    row("Homeostat: SIGSTOP → status shows the replacement ready", hs.faultToReadyMs),
    "",
    `Liveness bound \`interval × failureThreshold + timeout\` = ${bound.boundMs} ms. Detected within it, counted from the SIGSTOP: ${bound.detectedWithinBound}/${hs.ok} trials. TTD counts from the last good probe, the bound's own reference: TTD − bound is ${signed(bound.ttdOverBoundMs?.p50)} at p50 and ${signed(bound.ttdOverBoundMs?.max)} at worst (timer and event-loop latency). Incident kinds: ${Object.entries(
      hs.incidentKinds,
    )
      .map(([k, n]) => `${k} ×${n}`)
      .join(", ")}.`,
    "",
    `Naive supervisor: hang detected in **${nh.detected}/${nh.trials}** trials within ${nh.capMs / 1000} s; \`GET /ready\` went unanswered (1 s timeout) in ${nh.unansweredWhileStopped}/${nh.trials} while it kept the stopped process as "running".`,
    "",
    "Where Homeostat's TTR goes (SIGSTOP):",
    "",
    "| Phase | n | p50 | p95 | max |",
    "| --- | --- | --- | --- | --- |",
    row("detected → hung process stopped, replacement started", hs.phases.detectToStartMs),
    row("started → it answers `/ready` (Node start-up)", hs.phases.startToAppReadyMs),
    row("answers `/ready` → controller marks it ready (probes)", hs.phases.appReadyToControllerReadyMs),
  ];
  if (r.leftoverPids.length > 0) {
    lines.push("", `**Warning:** processes left running after teardown: ${r.leftoverPids.join(", ")}.`);
  }
  return `${lines.join("\n")}\n`;
}
