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
  ok: number;
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

export function summarizeCanary(trials: CanaryTrial[], facts: ScenarioFacts): CanarySummary {
  const ok = trials.filter((t) => t.ok && t.figures !== undefined);
  return {
    trials: trials.length,
    ok: ok.length,
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
