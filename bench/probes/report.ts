/**
 * The bench's result as markdown, the way docs/benchmarks.md shows it.
 */

import type { MachineInfo } from "../foundation/machine.ts";
import type { CodeState } from "../proxy/codeState.ts";
import type { TrialResult } from "./trial.ts";

/** Issue 15's bound on the controller's CPU per probe. */
export const TARGET_MS_PER_PROBE = 0.1;

export interface ProbesBenchResult {
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  command: string;
  label: string | null;
  repo: string;
  code: CodeState;
  machine: MachineInfo;
  options: Record<string, unknown>;
  trials: TrialResult[];
  /** Every trial at the 1 s interval met the bound, with a steady fleet (no restarts). */
  met: boolean | null;
}

const f = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : "–");

export function renderMarkdown(result: ProbesBenchResult): string {
  const m = result.machine;
  const lines = [
    `### bench:probes ${result.startedAt.slice(0, 10)}${result.label ? ` — ${result.label}` : ""}`,
    "",
    `Command: \`${result.command}\`; code ${result.code.commit?.slice(0, 12) ?? "(not a git checkout)"}${result.code.changedFiles.length > 0 ? ` + uncommitted changes in ${result.code.changedFiles.join(", ")}` : ""} (${result.repo}); ` +
      `machine ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}.`,
    "",
    "| interval | instances | probes/s | controller CPU | **CPU ms / probe** | controller RSS (end / max) | data plane CPU, RSS | instances' CPU (excluded) | machine busy, others | load 1m | restarts |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const t of result.trials) {
    const c = t.controller;
    lines.push(
      `| ${t.intervalMs} ms | ${t.instances} | ${f(t.probes.perSecond)} (of ${f(t.probes.expectedPerSecond)}) | ${f(c.percentOfCore, 2)} % of a core | **${f(c.cpuMsPerProbe, 3)}** | ${f(c.rssMiB.end, 0)} / ${f(c.rssMiB.max, 0)} MiB | ` +
        `${t.dataPlane ? `${f(t.dataPlane.percentOfCore, 2)} %, ${f(t.dataPlane.rssMiB, 0)} MiB` : "–"} | ${f(t.instancesCpu.percentOfCore, 1)} % | ` +
        `${f(t.machine.busyPercent, 0)} % of ${t.machine.cpus} CPUs, ${f(t.machine.othersCores, 2)} cores | ${f(t.machine.loadAverage1m.start, 2)} → ${f(t.machine.loadAverage1m.end, 2)} | ${t.restartsInWindow}${t.notReadyAtEnd > 0 ? `, ${t.notReadyAtEnd} not ready` : ""} |`,
    );
  }
  lines.push("");
  for (const t of result.trials) {
    const b = t.controller.rssBreakdownMiB;
    const mu = t.controller.memoryUsage;
    if (b !== null || mu !== null) {
      const heap =
        mu === null
          ? ""
          : `; V8 heap ${f((mu.heapUsed ?? 0) / 2 ** 20, 0)} of ${f((mu.heapTotal ?? 0) / 2 ** 20, 0)} MiB used (new space ${f((mu["space:new_space"] ?? 0) / 2 ** 20, 0)}, old ${f((mu["space:old_space"] ?? 0) / 2 ** 20, 0)}, code ${f(((mu["space:code_space"] ?? 0) + (mu["space:trusted_space"] ?? 0)) / 2 ** 20, 0)}, large objects ${f((mu["space:large_object_space"] ?? 0) / 2 ** 20, 0)} MiB), external ${f((mu.external ?? 0) / 2 ** 20, 0)} MiB (array buffers ${f((mu.arrayBuffers ?? 0) / 2 ** 20, 0)} MiB)`;
      lines.push(
        `- ${t.intervalMs} ms: controller CPU ${f(t.controller.userMs, 0)} ms user + ${f(t.controller.systemMs, 0)} ms system; ${f(t.passes.perSecond, 1)} reconcile passes/s of ${f(t.passes.wallMsEach, 2)} ms (wall) each; RSS at the end ${b ? `${f(b.anonymous, 0)} MiB anonymous + ${f(b.file, 0)} MiB file-backed + ${f(b.shmem, 0)} MiB shared` : "?"}${heap}; ${t.probes.counted} probes in ${f(t.windowMs / 1000, 1)} s, ${t.probes.failed} failed.`,
      );
    }
    if (t.profile !== null) {
      lines.push(
        `- profile (${f(t.profile.sampledMs - t.profile.idleMs, 0)} ms busy of ${f(t.profile.sampledMs, 0)} ms sampled${t.profileFile ? `, ${t.profileFile}` : ""}), top by self time:`,
      );
      for (const line of t.profile.self.slice(0, 15)) {
        lines.push(`  - ${f(line.share * 100, 1)} % ${line.fn}`);
      }
      lines.push("  top by inclusive time:");
      for (const line of t.profile.inclusive.slice(0, 25)) {
        lines.push(`  - ${f(line.share * 100, 1)} % ${line.fn}`);
      }
    }
  }
  if (result.met !== null) {
    lines.push(
      "",
      `Target (issue 15): ≤ ${TARGET_MS_PER_PROBE} ms of controller CPU per probe at 1 s intervals with ≥ 60 instances: **${result.met ? "met" : "missed"}**${result.trials.some((t) => t.controller.memoryUsage !== null) ? " (profiled runs include the profiler's own cost)" : ""}.`,
    );
  }
  return `${lines.join("\n")}\n`;
}
