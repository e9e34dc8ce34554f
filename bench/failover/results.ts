/**
 * The failover bench's result file: every trial, and per scenario the per-run figures and medians.
 */

import type { MachineInfo } from "../foundation/machine.ts";
import { median } from "../foundation/stats.ts";
import type { CodeState } from "../proxy/codeState.ts";
import type { ToolVersions } from "../proxy/tools.ts";
import type { WrkResult } from "../proxy/wrk.ts";
import type { ProbeTuning } from "./haproxyConfig.ts";
import type { FailoverOptions } from "./options.ts";
import { isHomeostat, type ScenarioName, type TrialBase } from "./trial.ts";

/** A per-run column and its median (null entries: not observed in that run). */
export interface Column {
  runs: (number | null)[];
  median: number | null;
}

export interface ScenarioSummary {
  scenario: ScenarioName;
  trials: number;
  ok: number;
  requests: Column;
  failed: Column;
  failedLongBeforeKill: Column;
  retried: Column;
  lastTouchedMs: Column;
  lastFailedMs: Column;
  markedDownMs: Column;
  detectedMs: Column;
  replacementReadyMs: Column;
  replacementServesMs: Column;
  baselineP99Ms: Column;
  afterKillP99Ms: Column;
  worstAfterKillMs: Column;
  /** The generator's worst send delay per trial (large: it could not keep the rate). */
  maxLatenessMs: Column;
  failures: Record<string, number>;
  /** Requests that failed during the unmeasured warm-ups (all trials). */
  warmupFailed: Column;
}

export interface FailoverResult {
  benchmark: "failover";
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  dateUtc: string;
  machine: MachineInfo & { loadAverage1mAtEnd: number };
  code: CodeState;
  tools: ToolVersions;
  options: FailoverOptions;
  /** Capacity through each front port (wrk), and the rate used. */
  calibration: { homeostat: WrkResult; haproxyDefault: WrkResult; ratePerSecond: number };
  homeostatReadiness: ProbeTuning;
  /** The fleet file of each Homeostat scenario. */
  fleetYaml: Record<string, string>;
  haproxyConfigs: Record<string, string>;
  trials: TrialBase[];
  summaries: ScenarioSummary[];
  targets: { zeroFailedThroughHomeostat: boolean };
  leftoverPids: number[];
}

function column(values: (number | null)[]): Column {
  return { runs: values, median: median(values.filter((v): v is number => v !== null)) };
}

export function summarizeScenario(scenario: ScenarioName, all: readonly TrialBase[]): ScenarioSummary {
  const trials = all.filter((t) => t.scenario === scenario);
  const ok = trials.filter((t) => t.ok);
  const failures: Record<string, number> = {};
  for (const t of ok) {
    for (const [key, count] of Object.entries(t.figures.failures))
      failures[key] = (failures[key] ?? 0) + count;
  }
  return {
    scenario,
    trials: trials.length,
    ok: ok.length,
    requests: column(ok.map((t) => t.figures.requests)),
    failed: column(ok.map((t) => t.figures.failed)),
    failedLongBeforeKill: column(ok.map((t) => t.figures.failedLongBeforeKill)),
    retried: column(ok.map((t) => t.figures.retried)),
    lastTouchedMs: column(ok.map((t) => t.figures.lastTouchedMs)),
    lastFailedMs: column(ok.map((t) => t.figures.lastFailedMs)),
    markedDownMs: column(ok.map((t) => t.markedDownMs)),
    detectedMs: column(ok.map((t) => t.controller?.detectedMs ?? null)),
    replacementReadyMs: column(ok.map((t) => t.controller?.replacementReadyMs ?? null)),
    replacementServesMs: column(
      ok.map((t) => (isHomeostat(scenario) ? t.figures.replacementServesMs : null)),
    ),
    baselineP99Ms: column(ok.map((t) => t.figures.baselineP99Ms)),
    afterKillP99Ms: column(ok.map((t) => t.figures.afterKillP99Ms)),
    worstAfterKillMs: column(ok.map((t) => t.figures.worstAfterKillMs)),
    maxLatenessMs: column(ok.map((t) => t.figures.maxLatenessMs)),
    failures,
    warmupFailed: column(ok.map((t) => (t.warmup === null ? null : t.warmup.non2xx + t.warmup.errors))),
  };
}
