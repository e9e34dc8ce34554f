/**
 * The result file's shape and the summaries over the trials.
 */

import type { MachineInfo } from "../foundation/machine.ts";
import { type Summary, summarize } from "../foundation/stats.ts";
import type { CanaryTrial } from "./canaryTrial.ts";
import type { MigrationScenario } from "./migrationScenario.ts";
import type { RollbackBenchOptions } from "./options.ts";
import type { ScenarioFacts } from "./scenario.ts";

export interface CanarySummary {
  trials: number;
  /** Trials that ran to the end and passed their checks (valid or not). */
  ok: number;
  /** Of those, the ones whose load generator fell behind: left out of every figure below. */
  invalid: number;
  /** Why, one line per invalid trial. */
  invalidReasons: string[];
  /** The ok and valid trials: what every figure below is made of. */
  valid: number;
  /** The generator over the valid trials: achieved ÷ offered rate, lateness p99 (ms). */
  achievedFraction: Summary | null;
  latenessP99Ms: Summary | null;
  /** Latency from the due time (failures included), p99 of each valid trial, ms. */
  latencyP99Ms: Summary | null;
  /** Requests sent before the deploy started (the stable release alone), and failures, over the valid trials. */
  warmupRequestsTotal: number;
  warmupFailedTotal: number;
  /** (a) ms after the failing verdict. */
  verdictToWeightsEvent: Summary | null;
  decidedToWeightsEvent: Summary | null;
  verdictToLastCanarySend: Summary | null;
  verdictToLastCanaryAnswer: Summary | null;
  /** (b) */
  failedDeployToVerdict: Summary | null;
  failedShareDeployToVerdict: Summary | null;
  failedCanaryToVerdict: Summary | null;
  failedShareCanaryToVerdict: Summary | null;
  canaryShareOfTraffic: Summary | null;
  canaryErrorRate: Summary | null;
  expectedShare: number;
  failedAfterVerdictTotal: number;
  failedOnStableTotal: number;
  unansweredTotal: number;
  canaryAnswersAfterVerdictTotal: number;
  /** Canary answers to requests sent before the first step's weights (the canary starting), and failures among them. */
  canaryAnswersBeforeFirstStepTotal: number;
  failedBeforeFirstStepTotal: number;
  /** (c) ms */
  starting: Summary | null;
  judging: Summary | null;
  deployToVerdict: Summary | null;
  exposure: Summary | null;
  deployToCanaryStopped: Summary | null;
}

export interface RollbackBenchResult {
  benchmark: "rollback";
  command: string;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  machine: MachineInfo & { loadAverage1mAtEnd: number };
  options: RollbackBenchOptions;
  fleet: { source: string; copy: string };
  scenario: ScenarioFacts;
  canary: { summary: CanarySummary; trials: CanaryTrial[] };
  /** Every attempt of the migration scenario, in order (null: not run). */
  migration: { attempts: MigrationScenario[] } | null;
  /** Where the rollback plan JSON was saved. */
  planFile: string | null;
  leftoverPids: number[];
}

function over(
  trials: CanaryTrial[],
  pick: (t: NonNullable<CanaryTrial["figures"]>) => number | null,
): Summary | null {
  const values: number[] = [];
  for (const t of trials) {
    if (!t.figures) continue;
    const v = pick(t.figures);
    if (v !== null && Number.isFinite(v)) values.push(v);
  }
  return summarize(values);
}

function total(trials: CanaryTrial[], pick: (t: NonNullable<CanaryTrial["figures"]>) => number): number {
  return trials.reduce((sum, t) => sum + (t.figures ? pick(t.figures) : 0), 0);
}

/**
 * A trial every summary may use: it ran and passed its checks, and its generator kept its schedule.
 * A trial without a generator verdict (`load` missing) is not usable: its load is unknown.
 */
export function usable(t: CanaryTrial): boolean {
  return t.ok && t.figures !== undefined && t.load?.valid === true;
}

export function summarizeCanary(trials: CanaryTrial[], facts: ScenarioFacts): CanarySummary {
  const passed = trials.filter((t) => t.ok && t.figures !== undefined);
  const ok = passed.filter(usable);
  const invalid = passed.filter((t) => !usable(t));
  const overLoad = (pick: (h: NonNullable<CanaryTrial["load"]>) => number | null): Summary | null =>
    summarize(ok.map((t) => pick(t.load!)).filter((v): v is number => v !== null && Number.isFinite(v)));
  return {
    trials: trials.length,
    ok: passed.length,
    invalid: invalid.length,
    invalidReasons: invalid.map(
      (t) => `trial ${t.trial}: ${t.load?.invalidReason ?? "no load generator result"}`,
    ),
    valid: ok.length,
    achievedFraction: overLoad((h) => h.achievedFraction),
    latenessP99Ms: overLoad((h) => h.latenessP99Ms),
    latencyP99Ms: overLoad((h) => h.latencyP99Ms),
    warmupRequestsTotal: total(ok, (f) => f.warmup.requests),
    warmupFailedTotal: total(ok, (f) => f.warmup.failed),
    verdictToWeightsEvent: over(ok, (f) => f.rollback.weightsEventMs),
    decidedToWeightsEvent: over(ok, (f) => f.rollback.decidedToWeightsMs),
    verdictToLastCanarySend: over(ok, (f) => f.rollback.lastCanarySendMs),
    verdictToLastCanaryAnswer: over(ok, (f) => f.rollback.lastCanaryAnswerMs),
    failedDeployToVerdict: over(ok, (f) => f.errors.deployToVerdict.failed),
    failedShareDeployToVerdict: over(ok, (f) => f.errors.deployToVerdict.failedShare),
    failedCanaryToVerdict: over(ok, (f) => f.errors.canaryToVerdict.failed),
    failedShareCanaryToVerdict: over(ok, (f) => f.errors.canaryToVerdict.failedShare),
    canaryShareOfTraffic: over(ok, (f) => f.errors.canaryToVerdict.canaryShare),
    canaryErrorRate: over(ok, (f) => f.errors.canaryToVerdict.canaryErrorRate),
    expectedShare: ((facts.steps[0] ?? 100) / 100) * facts.canaryErrorRate,
    failedAfterVerdictTotal: total(ok, (f) => f.errors.afterVerdict.failed),
    failedOnStableTotal: total(ok, (f) => f.errors.failedOnStable),
    unansweredTotal: total(ok, (f) => f.errors.unanswered),
    canaryAnswersAfterVerdictTotal: total(ok, (f) => f.rollback.canaryAnswersSentAfterVerdict),
    canaryAnswersBeforeFirstStepTotal: total(ok, (f) => f.beforeFirstStep.canaryAnswers),
    failedBeforeFirstStepTotal: total(ok, (f) => f.beforeFirstStep.failed),
    starting: over(ok, (f) => f.durations.starting),
    judging: over(ok, (f) => f.durations.judging),
    deployToVerdict: over(ok, (f) => f.durations.deployToVerdict),
    exposure: over(ok, (f) => f.durations.exposure),
    deployToCanaryStopped: over(ok, (f) => f.durations.deployToCanaryStopped),
  };
}
