/**
 * The failover bench's result file: every trial with the bench's own checks on it, per scenario
 * the per-trial figures and medians, the headline and the paired comparisons, derived from them.
 */

import type { MachineInfo } from "../foundation/machine.ts";
import { median } from "../foundation/stats.ts";
import type { CodeState } from "../proxy/codeState.ts";
import type { ToolVersions } from "../proxy/tools.ts";
import type { WrkResult } from "../proxy/wrk.ts";
import {
  checksPass,
  failoverHeadline,
  pairByRound,
  type RoundPairs,
  type RoundValue,
  type TrialCheck,
} from "./analysis.ts";
import { HAPROXY_SETUP, type HaproxyScenario, type ProbeTuning } from "./haproxyConfig.ts";
import type { HungResult } from "./hung.ts";
import type { FailoverOptions } from "./options.ts";
import type { HomeostatScenario, ScenarioName, TrialBase } from "./trial.ts";

/**
 * Every scenario of the bench. (trial.ts's `ScenarioName` predates `haproxy-passive`; until it is
 * `HomeostatScenario | HaproxyScenario`, `asTrialScenario` bridges the two.)
 */
export type FailoverScenario = HomeostatScenario | HaproxyScenario;

export function asTrialScenario(scenario: FailoverScenario): ScenarioName {
  return scenario as ScenarioName;
}

export function isHomeostatScenario(scenario: FailoverScenario): scenario is HomeostatScenario {
  return (
    scenario === "homeostat" || scenario === "homeostat-static-limit" || scenario === "homeostat-haproxy"
  );
}

/** A trial with the bench's own checks on it. */
export interface FailoverTrial extends Omit<TrialBase, "scenario"> {
  scenario: FailoverScenario;
  /** HAProxy: its reason for the DOWN ("Health analyze": passive checks; "Layer4 …": active). */
  markedDownReason: string | null;
  checks: TrialCheck[];
  /** Every check held. */
  checksOk: boolean;
}

/** HAProxy's best configuration in a run: with passive checks if it ran, else the next best. */
export const HAPROXY_BEST_ORDER: HaproxyScenario[] = [
  "haproxy-passive",
  "haproxy-redispatch",
  "haproxy-tuned",
];

/** A per-run column and its median (null entries: not observed in that run). */
export interface Column {
  runs: (number | null)[];
  median: number | null;
}

export interface ScenarioSummary {
  scenario: FailoverScenario;
  trials: number;
  /** Trials that ran to the end (the figures below are theirs). */
  ok: number;
  /** Trials that passed every check of the bench. */
  checksOk: number;
  requests: Column;
  failed: Column;
  failedLongBeforeKill: Column;
  retried: Column;
  /** Homeostat only: hedged requests (not retries). */
  hedged: Column;
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

/** Homeostat ÷ HAProxy at its best, paired by round. */
export interface PairedComparison {
  what: string;
  a: FailoverScenario;
  b: FailoverScenario;
  pairs: RoundPairs;
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
  trials: FailoverTrial[];
  summaries: ScenarioSummary[];
  /** HAProxy's best configuration that ran (the headline's comparison), or null. */
  haproxyBest: HaproxyScenario | null;
  /** From the data: what failed, through Homeostat and through HAProxy at its best. */
  headline: string;
  /** Homeostat ÷ HAProxy at its best, paired by round (the only × figures of the report). */
  paired: PairedComparison[];
  targets: {
    zeroFailedThroughHomeostat: boolean;
    /** Issue 14: kill -9 of one of three, 0 failed through Homeostat + HAProxy (null: not run). */
    zeroFailedThroughHomeostatHaproxy?: boolean | null;
  };
  /** Issue 14's hung-instance trials (hung.ts), when they ran. */
  hung?: HungResult | null;
  leftoverPids: number[];
}

function column(values: (number | null)[]): Column {
  return { runs: values, median: median(values.filter((v): v is number => v !== null)) };
}

export function summarizeScenario(
  scenario: FailoverScenario,
  all: readonly FailoverTrial[],
): ScenarioSummary {
  const trials = all.filter((t) => t.scenario === scenario);
  const ok = trials.filter((t) => t.ok);
  const homeostat = isHomeostatScenario(scenario);
  const failures: Record<string, number> = {};
  for (const t of ok) {
    for (const [key, count] of Object.entries(t.figures.failures))
      failures[key] = (failures[key] ?? 0) + count;
  }
  return {
    scenario,
    trials: trials.length,
    ok: ok.length,
    checksOk: trials.filter((t) => t.checksOk).length,
    requests: column(ok.map((t) => t.figures.requests)),
    failed: column(ok.map((t) => t.figures.failed)),
    failedLongBeforeKill: column(ok.map((t) => t.figures.failedLongBeforeKill)),
    retried: column(ok.map((t) => t.figures.retried)),
    hedged: column(ok.map((t) => t.figures.hedged)),
    lastTouchedMs: column(ok.map((t) => t.figures.lastTouchedMs)),
    lastFailedMs: column(ok.map((t) => t.figures.lastFailedMs)),
    markedDownMs: column(ok.map((t) => t.markedDownMs)),
    detectedMs: column(ok.map((t) => t.controller?.detectedMs ?? null)),
    replacementReadyMs: column(ok.map((t) => t.controller?.replacementReadyMs ?? null)),
    replacementServesMs: column(ok.map((t) => (homeostat ? t.figures.replacementServesMs : null))),
    baselineP99Ms: column(ok.map((t) => t.figures.baselineP99Ms)),
    afterKillP99Ms: column(ok.map((t) => t.figures.afterKillP99Ms)),
    worstAfterKillMs: column(ok.map((t) => t.figures.worstAfterKillMs)),
    maxLatenessMs: column(ok.map((t) => t.figures.maxLatenessMs)),
    failures,
    warmupFailed: column(ok.map((t) => (t.warmup === null ? null : t.warmup.non2xx + t.warmup.errors))),
  };
}

/** The label of a scenario in the report and the headline. */
export function scenarioLabel(scenario: FailoverScenario): string {
  if (scenario === "homeostat") return "Homeostat";
  if (scenario === "homeostat-static-limit") return "Homeostat, fixed limit";
  if (scenario === "homeostat-haproxy") return "Homeostat + HAProxy";
  return HAPROXY_SETUP[scenario].label;
}

/** The best HAProxy configuration among those that ran. */
export function haproxyBestOf(scenarios: readonly FailoverScenario[]): HaproxyScenario | null {
  return HAPROXY_BEST_ORDER.find((s) => scenarios.includes(s)) ?? null;
}

/** The headline, from the trials: Homeostat (default settings) against HAProxy at its best. */
export function headlineOf(trials: readonly FailoverTrial[], best: HaproxyScenario | null): string {
  const input = (scenario: FailoverScenario) => {
    const mine = trials.filter((t) => t.scenario === scenario);
    const ran = mine.filter((t) => t.ok);
    return {
      label: scenarioLabel(scenario),
      failed: ran.map((t) => t.figures.failed),
      trialsRun: ran.length,
      trialsOk: mine.filter((t) => t.checksOk).length,
    };
  };
  // Homeostat's default scenario when it ran, else Homeostat + HAProxy (issue 14's runs).
  const own: FailoverScenario = trials.some((t) => t.scenario === "homeostat")
    ? "homeostat"
    : "homeostat-haproxy";
  return failoverHeadline(input(own), best === null ? undefined : input(best));
}

/** Homeostat ÷ HAProxy at its best, paired by round: retried requests and the last one touched. */
export function pairedComparisons(
  trials: readonly FailoverTrial[],
  best: HaproxyScenario | null,
): PairedComparison[] {
  if (best === null || !trials.some((t) => t.scenario === "homeostat")) return [];
  const values = (scenario: FailoverScenario, pick: (t: FailoverTrial) => number | null): RoundValue[] =>
    trials
      .filter((t) => t.scenario === scenario && t.ok)
      .map((t) => ({ repeat: t.repeat, checksOk: t.checksOk, value: pick(t) }));
  const compare = (what: string, pick: (t: FailoverTrial) => number | null): PairedComparison => ({
    what,
    a: "homeostat",
    b: best,
    pairs: pairByRound(values("homeostat", pick), values(best, pick)),
  });
  return [
    compare("retried requests", (t) => t.figures.retried),
    compare("last request that hit the killed instance (ms after the kill)", (t) => t.figures.lastTouchedMs),
  ];
}

/** Attach the bench's own checks to a trial (see analysis.ts `trialChecks`). */
export function withChecks(trial: FailoverTrial, checks: TrialCheck[]): FailoverTrial {
  return Object.assign(trial, { checks, checksOk: checksPass(checks) });
}
