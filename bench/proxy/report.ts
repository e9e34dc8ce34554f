/**
 * The markdown printed at the end of a proxy run, for docs/benchmarks.md.
 */

import type { CodeState } from "./codeState.ts";
import { MIN_VALID_PAIRS, type PairedSummary, type RatioSpread, subjectOf } from "./paired.ts";
import type { ContenderSummary, ProxyBenchResult, UpstreamSummary } from "./results.ts";
import { TARGETS } from "./results.ts";

const UPSTREAM_LABEL = {
  demo: "demo app (`examples/app/server.ts`, `GET /`, 108-byte JSON)",
  static: "tiny fixed-response upstream (nginx, 1 worker, `return 200`, 12-byte JSON)",
} as const;

function n(value: number | null, digits = 0): string {
  return value === null || Number.isNaN(value) ? "–" : value.toFixed(digits);
}

function rps(value: number): string {
  return Number.isNaN(value) ? "–" : Math.round(value).toLocaleString("en-US");
}

function times(value: number | null): string {
  return value === null ? "–" : `${value.toFixed(2)}×`;
}

function signedMs(value: number | null): string {
  if (value === null || Number.isNaN(value)) return "–";
  return `${value >= 0 ? "+" : "−"}${Math.abs(value).toFixed(2)} ms`;
}

function yes(met: boolean | null): string {
  return met === null ? "–" : met ? "**met**" : "**missed**";
}

function throughputTable(s: UpstreamSummary): string[] {
  return [
    "| Contender | Max req/s (median) | Runs | Contender CPU | CPU µs/request (user + kernel) | Upstream CPU | Errors |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    ...s.contenders.map(
      (c: ContenderSummary) =>
        `| ${c.contender} | **${rps(c.rps)}** | ${c.rpsRuns.map(rps).join(" / ")} | ${c.cpuAtMax.contender === null ? "–" : `${n(c.cpuAtMax.contender)} %`} | ${c.cpuPerRequestUs === null ? "–" : `${n(c.cpuPerRequestUs.user, 1)} + ${n(c.cpuPerRequestUs.system, 1)}`} | ${n(c.cpuAtMax.upstream)} % | ${c.throughputErrors} |`,
    ),
  ];
}

/** "0.51× (IQR 0.45–0.55, range 0.40–0.57, 6 pairs)", or "not shown (…)". */
export function pairedRatio(spread: RatioSpread | null, valid: number, run: number): string {
  if (spread === null) {
    return `not shown (${valid} of ${run} pairs valid; at least ${MIN_VALID_PAIRS} needed)`;
  }
  return `${times(spread.median)} (IQR ${spread.q1.toFixed(2)}–${spread.q3.toFixed(2)}, range ${spread.min.toFixed(2)}–${spread.max.toFixed(2)}, ${spread.n} pairs)`;
}

function pairedTable(pairs: readonly PairedSummary[]): string[] {
  if (pairs.length === 0) return [];
  const d = pairs[0]!.durationS;
  return [
    `Each subject ÷ its peer, **paired**: in each round, one ${d} s wrk run (same settings, after a 1 s warm-up) on the subject and one on the peer, back to back, who goes first alternating; the ratio is the median of the pairs' ratios (nearest rank), with their interquartile range and range. A pair is left out when a run had errors or served nothing, or when other work disturbed it after 3 attempts; with fewer than ${MIN_VALID_PAIRS} valid pairs the ratio is not shown. No ratio in this report is taken between medians of runs measured apart. CPU per request counts every process of a contender (Homeostat + HAProxy: the data-plane process and the managed HAProxy; haproxy-log: HAProxy and its log sink).`,
    "",
    "| Subject ÷ peer | Throughput, paired | Each pair | CPU per request, paired | Pairs left out |",
    "| --- | --- | --- | --- | --- |",
    ...pairs.map(
      (p) =>
        `| ${subjectOf(p)} ÷ ${p.peer} | **${pairedRatio(p.rpsRatio, p.validRounds, p.rounds)}** | ${p.rpsRatio?.values.map((v) => v.toFixed(2)).join(" / ") ?? "–"} | ${pairedRatio(p.cpuPerRequestRatio, p.cpuPerRequestRatio?.n ?? 0, p.rounds)} | ${
          Object.entries(p.invalidReasons)
            .map(([k, c]) => `${k}: ${c}`)
            .join(", ") || "none"
        } |`,
    ),
  ];
}

/** The throughput target, judged on the paired median only; the spread always printed. */
export function throughputTargetLine(s: UpstreamSummary, vsNginx: PairedSummary | undefined): string {
  const target = `Homeostat ≥ ${TARGETS.throughputVsNginx}× nginx's throughput (paired median)`;
  if (vsNginx === undefined) return `${target}: not judged (nginx was not paired).`;
  return `${target}: ${pairedRatio(vsNginx.rpsRatio, vsNginx.validRounds, vsNginx.rounds)}, ${s.targets.throughputMet === null ? "**not judged**" : yes(s.targets.throughputMet)}.`;
}

/**
 * Issue 14's target for the `haproxy` engine, and what the log line costs, from the pairs; "" when
 * Homeostat + HAProxy did not run.
 */
export function haproxyEngineLine(s: UpstreamSummary, pairs: readonly PairedSummary[]): string {
  const find = (subject: string, peer: string) =>
    pairs.find((p) => p.upstream === s.upstream && subjectOf(p) === subject && p.peer === peer);
  const ratio = (p: PairedSummary | undefined) =>
    p === undefined ? "not paired" : pairedRatio(p.rpsRatio, p.validRounds, p.rounds);
  const vsPlain = find("homeostat-haproxy", "haproxy");
  const vsLog = find("homeostat-haproxy", "haproxy-log");
  const log = find("haproxy-log", "haproxy");
  if (vsPlain === undefined && vsLog === undefined && log === undefined) return "";
  const met = s.targets.haproxyEngineMet ?? null;
  return `Homeostat + HAProxy ≥ ${TARGETS.haproxyEngineVsHaproxy}× plain HAProxy with the engine's settings (paired median): ${ratio(vsPlain)}, ${met === null ? "**not judged**" : yes(met)}. The per-request log line alone (HAProxy with it ÷ without, paired): ${ratio(log)}; Homeostat + HAProxy ÷ HAProxy with the same log line to a sink that only counts: ${ratio(vsLog)}.`;
}

/** " (Homeostat fell behind in k of n runs: …)" when it did, else "". */
function homeostatFellBehind(s: UpstreamSummary): string {
  const h = s.contenders.find((c) => c.contender === "homeostat");
  if (h === undefined || h.fellBehindRuns.length === 0) return "";
  const runs = h.p99Runs.length + h.fellBehindRuns.length;
  return ` (Homeostat could not keep up with the rate in ${h.fellBehindRuns.length} of ${runs} runs: ${fellBehind(h)})`;
}

/** The runs that fell behind, as they went: "p99 624 ms (generator 594 ms late at p99)" each. */
function fellBehind(c: UpstreamSummary["contenders"][number]): string {
  if (c.fellBehindRuns.length === 0) return "none";
  return c.fellBehindRuns
    .map((r) => `p99 ${n(r.p99Ms, 1)} ms (generator ${n(r.latenessP99Ms, 1)} ms late at p99)`)
    .join("; ");
}

function latencyTable(s: UpstreamSummary): string[] {
  return [
    "| Contender | p50 | p99 | p99.9 | Added p50 vs direct | Added p99 vs direct | p99 runs | Achieved req/s | Contender CPU | Own event-loop delay p99 / max | Errors | Runs that fell behind (not summarised; p99 from due time) |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...s.contenders.map(
      (c) =>
        `| ${c.contender} | ${n(c.p50, 2)} ms | **${n(c.p99, 2)} ms** | ${n(c.p999, 2)} ms | ${signedMs(c.addedP50VsDirectMs)} | **${signedMs(c.addedP99VsDirectMs)}** | ${c.p99Runs.map((v) => n(v, 2)).join(" / ")} | ${rps(c.achievedRate)} | ${c.cpuAtRate.contender === null ? "–" : `${n(c.cpuAtRate.contender)} %`} | ${c.loopDelayAtRate === null ? "–" : `${n(c.loopDelayAtRate.p99Ms, 1)} / ${n(c.loopDelayAtRate.maxMs, 1)} ms`} | ${c.latencyErrors} | ${fellBehind(c)} |`,
    ),
  ];
}

/** The data plane's reports to the bench's fake controller during Homeostat's measured runs. */
function feedLine(r: ProxyBenchResult): string[] {
  const runs = [...r.throughput, ...r.latency, ...r.paired.flatMap((p) => [p.homeostat, p.peerRun])].filter(
    (run) => run.feed != null,
  );
  if (runs.length === 0) return [];
  const reports = runs.reduce((sum, run) => sum + run.feed!.reports, 0);
  const maxGaps = runs.map((run) => run.feed!.maxGapMs).sort((a, b) => a - b);
  const fed = [...new Set(runs.map((run) => run.contender))].join(" and ");
  return [
    `${fed} ran as the data-plane process (\`src/dataplane/main.ts\`), fed one snapshot over its config feed by the bench, which read its reports throughout: ${reports} reports during their ${runs.length} measured runs (due every 250 ms); the longest gap between two reports in a run was ${n(maxGaps[Math.floor(maxGaps.length / 2)] ?? null)} ms at the median and ${n(maxGaps[maxGaps.length - 1] ?? null)} ms at worst.`,
    "",
  ];
}

export function describeCode(code: CodeState): string {
  if (code.commit === null) return "not a git checkout";
  const head = `commit ${code.commit.slice(0, 7)}`;
  return code.changedFiles.length === 0
    ? head
    : `${head} plus uncommitted changes to ${code.changedFiles.length} files under src/, bin/ or examples/ (diff sha256 ${code.diffSha256?.slice(0, 12)})`;
}

/** Fixed-rate runs left out because the generator fell behind its schedule (docs/load-generator.md). */
function invalidRuns(r: ProxyBenchResult): number {
  return r.summaries.reduce((sum, s) => sum + s.contenders.reduce((k, c) => k + c.invalidLatencyRuns, 0), 0);
}

export function renderProxyMarkdown(r: ProxyBenchResult): string {
  const lines: string[] = [
    `### Proxy run of ${r.startedAt}`,
    "",
    `Date: ${r.dateUtc}. Machine: ${r.machine.cpus} CPU (${r.machine.cpuModel}), ${r.machine.memoryGiB} GiB RAM, Linux ${r.machine.kernel}, Node ${r.machine.node}; ${r.tools.haproxy}; nginx ${r.tools.nginx}; ${r.tools.wrk}. Load average ${r.machine.loadAverage1m.toFixed(2)} at start, ${r.machine.loadAverage1mAtEnd.toFixed(2)} at end; the run took ${(r.durationMs / 1000).toFixed(0)} s. Code: ${describeCode(r.code)}.`,
    "",
    `Max throughput: \`${r.commands.wrk}\` after a ${r.options.warmupS} s warm-up with the same settings. Latency: ${r.commands.openLoop}. ${r.options.repeats} runs per contender and measurement, in alternating order; each contender's medians reported. Ratios between contenders: only paired (below). CPUs: ${r.options.placement?.note ?? "not pinned"}.${r.options.oldRoot ? ` Old code (\`homeostat-old\`): a bare \`ServiceProxy\` of the checkout at \`${r.options.oldRoot}\` (bench/proxy/callgrind/bareProxy.ts), against today's data-plane process.` : ""}`,
    "",
  ];
  for (const s of r.summaries) {
    lines.push(
      `#### Upstream: ${UPSTREAM_LABEL[s.upstream]}`,
      "",
      "Max throughput (closed loop, wrk):",
      "",
      ...throughputTable(s),
      "",
      ...pairedTable(r.pairedSummaries.filter((p) => p.upstream === s.upstream)),
      "",
      `Latency at a fixed ${rps(s.ratePerSecond)} req/s (${Math.round(r.options.loadFraction * 100)} % of ${s.rateOf ?? "homeostat"}'s median max), open loop, from each request's due time:`,
      "",
      ...latencyTable(s),
      "",
      `Targets: ${throughputTargetLine(
        s,
        r.pairedSummaries.find((p) => p.upstream === s.upstream && p.peer === "nginx"),
      )} Added p99 vs direct ≤ ${TARGETS.addedP99Ms} ms at ${Math.round(r.options.loadFraction * 100)} % of its max (median of each contender's runs): ${signedMs(s.targets.addedP99Ms)}, ${yes(s.targets.addedP99Met)}${homeostatFellBehind(s)}. ${haproxyEngineLine(s, r.pairedSummaries)}`.trimEnd(),
      "",
    );
  }
  const runs = [...r.throughput, ...r.latency];
  const notQuiet = runs.filter((run) => !run.before.quiet).length;
  const busiest = Math.max(...runs.map((run) => run.before.busyPercent));
  const others = runs.map((run) => run.othersPercent).sort((a, b) => a - b);
  lines.push(
    ...feedLine(r),
    `Other work on the machine: before each run the bench waited until all CPUs together were at most 10 % busy (read over 1 s with the bench idle); the busiest reading that let a run start was ${busiest.toFixed(0)} %${notQuiet > 0 ? `, and ${notQuiet} runs went ahead after 3 minutes without the machine calming down` : ""}. A run during which they used more than ${r.discarded.othersLimitPercent} % of one core was redone (up to 3 attempts): ${r.discarded.throughput.length + r.discarded.latency.length} runs were redone. During the kept runs, processes outside the bench used a median of ${n(others[Math.floor(others.length / 2)] ?? null)} % and at most ${n(others[others.length - 1] ?? null)} % of one core.`,
    "",
    `Generator floor: its own p99 lateness (written − due time, waiting for a connection included) was ${r.summaries
      .flatMap((s) => s.contenders.map((c) => n(c.generatorLatenessP99, 2)))
      .join(
        ", ",
      )} ms across the contenders. Fixed-rate runs not counted (the generator fell behind): ${invalidRuns(r)}. Leftover processes after teardown: ${r.leftoverPids.length}.`,
    "",
    "<details><summary>Every contender's configuration, as written</summary>",
    "",
    ...Object.entries(r.commands.configs).flatMap(([name, text]) => [
      `\`${name}\`:`,
      "",
      "```",
      text.trimEnd(),
      "```",
      "",
    ]),
    "</details>",
    "",
  );
  return `${lines.join("\n")}\n`;
}
