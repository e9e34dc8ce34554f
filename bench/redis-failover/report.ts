/**
 * The Redis failover bench's result file and its markdown (the tables docs/benchmarks.md uses).
 */

import type { MachineInfo } from "../foundation/machine.ts";
import type { CodeState } from "../proxy/codeState.ts";
import type { CellSummary, Column, Targets } from "./analysis.ts";
import type { StoreSettings } from "./contender.ts";
import type { RedisFailoverOptions } from "./options.ts";
import type { SentinelSettings } from "./sentinelContender.ts";
import type { TrialResult } from "./trial.ts";

export interface RedisFailoverResult {
  benchmark: "redis-failover";
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  dateUtc: string;
  command: string;
  machine: MachineInfo & { loadAverage1mAtEnd: number };
  code: CodeState;
  redisVersion: string;
  ioredisVersion: string;
  options: RedisFailoverOptions;
  store: StoreSettings;
  sentinel: { settings: SentinelSettings; configs: Record<string, string> } | null;
  homeostat: { fleetYaml: string } | null;
  /** Contenders that were asked for but could not be started, and why. */
  notMeasured: { contender: string; reason: string }[];
  /** The order the trials ran in. */
  trials: TrialResult[];
  summaries: CellSummary[];
  targets: Targets;
  leftoverPids: number[];
}

const LABELS: Record<string, string> = {
  sentinel: "Redis Sentinel",
  "homeostat-endpoint": "Homeostat, endpoint",
  "homeostat-sentinel": "Homeostat, Sentinel port",
};

export function labelOf(contender: string): string {
  return LABELS[contender] ?? contender;
}

function ms(value: number | null | undefined): string {
  if (value === null || value === undefined) return "–";
  if (!Number.isFinite(value)) return "never";
  return `${Math.round(value).toLocaleString("en-US")}`;
}

function count(value: number | null | undefined): string {
  return value === null || value === undefined ? "–" : String(value);
}

function column(c: Column, format: (v: number | null) => string): string {
  return `**${format(c.median)}** (${c.runs.map(format).join(", ")})`;
}

const FAULT_LABEL = { kill: "kill -9 of the primary", stop: "SIGSTOP of the primary" } as const;

export function renderRedisFailoverMarkdown(r: RedisFailoverResult): string {
  const lines: string[] = [];
  const git = r.code.commit?.slice(0, 7) ?? "unknown";
  lines.push(
    `- **Date:** ${r.dateUtc}; the run took ${Math.round(r.durationMs / 1000)} s.`,
    `- **Machine:** ${r.machine.cpus} CPUs, ${r.machine.cpuModel}, ${r.machine.memoryGiB} GiB, Linux ${r.machine.kernel}, Node ${r.machine.node}; load average ${r.machine.loadAverage1m.toFixed(2)} at the start, ${r.machine.loadAverage1mAtEnd.toFixed(2)} at the end.`,
    `- **Code:** commit \`${git}\`${r.code.changedFiles.length > 0 ? ` with uncommitted changes in ${r.code.changedFiles.length} files under src/ (diff sha256 \`${r.code.diffSha256?.slice(0, 12)}\`)` : ", no uncommitted changes under src/, bin/, examples/"}.`,
    `- **Command:** \`${r.command}\`; redis-server ${r.redisVersion}, ioredis ${r.ioredisVersion}.`,
    `- **Store:** a primary and 2 replicas; detection ${r.store.detection.intervalMs} ms × ${r.store.detection.failures} + ${r.store.detection.timeoutMs} ms timeout = ${r.store.detectionBudgetMs} ms budget; \`min-replicas-to-write ${r.store.minReplicasToWrite}\`, \`min-replicas-max-lag ${r.store.minReplicasMaxLagS}\`; persistence ${r.store.persistence}.`,
  );
  if (r.homeostat !== null) {
    lines.push(
      `- **Homeostat's Sentinel port** gives out ${r.options.homeostatAnnounce === "primary" ? "the primary member's own address (`announce: primary`)" : "the stable endpoint (`announce: endpoint`, its default)"}.`,
    );
  }
  if (r.sentinel !== null) {
    const s = r.sentinel.settings;
    lines.push(
      `- **Sentinel:** ${s.sentinels} Sentinels, quorum ${s.quorum}, \`down-after-milliseconds ${s.downAfterMs}\`, \`failover-timeout ${s.failoverTimeoutMs}\`, \`parallel-syncs ${s.parallelSyncs}\`, the same redis.conf settings as Homeostat's store.`,
    );
  }
  lines.push(
    `- **Writer:** one write every ${r.options.intervalMs} ms (open loop), ${r.options.beforeFaultMs / 1000} s before the fault; kill -9: ${r.options.afterKillMs / 1000} s after it; SIGSTOP: ${r.options.stopMs / 1000} s stopped, then ${r.options.afterResumeMs / 1000} s after SIGCONT. ioredis reconnects every ${r.options.retryDelayMs} ms, no command timeout; Sentinel mode ${r.options.failoverDetector === false ? "**without**" : "with"} \`failoverDetector\`.`,
  );
  lines.push(
    r.options.nice === null
      ? "- **Priority:** unchanged (`BENCH_BOOST=0`)."
      : `- **Priority:** every process of the bench — writer, redis-servers, Sentinels, Homeostat's controller, data plane and members — and their autogroups at nice ${r.options.nice}, so that other work on the shared CPUs does not decide the figures; the same for every contender.`,
  );
  for (const nm of r.notMeasured) lines.push(`- **Not measured:** ${labelOf(nm.contender)}: ${nm.reason}`);
  lines.push("");

  for (const fault of ["kill", "stop"] as const) {
    const cells = r.summaries.filter((s) => s.fault === fault);
    if (cells.length === 0) continue;
    lines.push(
      `**${FAULT_LABEL[fault]}** — medians in bold, then each valid trial:`,
      "",
      "| contender | valid trials | writable again (ms) | longest gap without an ack (ms) | failed writes | acknowledged writes lost | acknowledged by the old primary after the failover | old primary seen as a replica, after it returned (ms) |",
      "| --- | --- | --- | --- | --- | --- | --- | --- |",
    );
    for (const c of cells) {
      lines.push(
        `| ${labelOf(c.contender)} | ${c.valid}/${c.trials} | ${column(c.writableAgainMs, ms)} | ${column(c.longestAckGapMs, ms)} | ${column(c.failed, count)} | ${column(c.ackedLost, count)} | ${column(c.ackedByOldAfterFailover, count)} | ${column(c.oldPrimaryFencedAfterResumeMs, ms)} |`,
      );
    }
    lines.push("");
  }

  lines.push("| contender | fault | target | verdict | how |", "| --- | --- | --- | --- | --- |");
  for (const c of r.summaries) {
    for (const t of c.targets) {
      lines.push(`| ${labelOf(c.contender)} | ${c.fault} | ${t.name} | **${t.verdict}** | ${t.detail} |`);
    }
  }
  lines.push(
    "",
    "Every trial, in the order they ran:",
    "",
    "| # | contender | fault | primary | promoted (ms after the fault) | writable again (ms) | gap (ms) | failed | lost | best replica missing at the fault | promoted replica missing | old primary acks after the fault / after the failover | old primary fenced after return (ms) | writer p99 lateness before the fault / whole run (ms) | valid |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  );
  r.trials.forEach((t, k) => {
    const f = t.figures;
    if (f === null) {
      lines.push(
        `| ${k + 1} | ${labelOf(t.contender)} | ${t.fault} | ${t.victimPort ?? "–"} | – | – | – | – | – | – | – | – | – | – | failed: ${t.error ?? "?"} |`,
      );
      return;
    }
    const invalid = t.validity.filter((c) => c.ok !== true).map((c) => `${c.name}: ${c.detail}`);
    lines.push(
      `| ${k + 1} | ${labelOf(t.contender)} | ${t.fault} | ${t.victimPort} | ${f.promotedPort === null ? "none" : `${f.promotedPort} at ${ms(f.promotedAfterMs)}–${ms(f.promotedSeenMs)}`} | ${ms(f.writableAgainMs)} | ${ms(f.longestAckGapMs)} | ${f.failed} | ${count(f.ackedLost)} | ${count(f.bestReplicaMissing)} | ${count(f.promotedReplicaMissing)} | ${f.ackedByOldAfterFault} / ${f.ackedByOldAfterFailover} | ${ms(f.oldPrimaryFencedAfterResumeMs)} | ${f.lateness.p99BeforeFault.toFixed(1)} / ${f.lateness.p99.toFixed(1)} | ${invalid.length === 0 ? "yes" : `no: ${invalid.join("; ")}`} |`,
    );
  });
  lines.push("");
  return `${lines.join("\n")}\n`;
}
