/**
 * The result file's shape, the summaries over the trials of each scenario × fault × load × mode
 * (valid trials only: a trial whose load generator fell behind is counted and left out), and the
 * paired comparisons with HAProxy (per round, contender ÷ HAProxy; the median of those ratios).
 */

import type { Criticality } from "../../src/traffic/contracts.ts";
import type { MachineInfo } from "../foundation/machine.ts";
import { type Summary, summarize } from "../foundation/stats.ts";
import type { CodeState } from "../proxy/codeState.ts";
import {
  allChecksPass,
  CHECK_NAMES,
  CRITICALITIES,
  type OutcomeCounts,
  outageP99,
  type PairedRatio,
  pairedRatio,
  pairTrials,
  RATIO_METRICS,
  usable,
} from "./analysis.ts";
import type { FaultName, Mode, ScenarioName, ZonesBenchOptions } from "./options.ts";
import type { Trial } from "./trial.ts";

/** Failed requests of one criticality from the fault to the end, summed over the trials. */
export type FailureTotals = Pick<
  OutcomeCounts,
  "sent" | "failed" | "shed" | "http5xx" | "timeout" | "connectionError" | "other" | "failedShare"
>;

export interface ScenarioSummary {
  scenario: ScenarioName;
  fault: FaultName;
  loadFraction: number;
  mode: Mode;
  trials: number;
  /** Trials that ran to the end and were analysed. */
  ok: number;
  /** Of those, the ones whose load generator fell behind: left out of every figure below. */
  invalid: number;
  /** The valid ones: what every figure below is made of. */
  valid: number;
  /** Valid trials that passed all three checks. */
  trialsOk: number;
  /** Requests due in the warm-up that failed, summed over the valid trials, and sent. */
  warmupFailed: number;
  warmupSent: number;
  /** Achieved ÷ offered rate of the generator, over the valid trials. */
  achievedFraction: Summary | null;
  ratePerSecond: number | null;
  /** Trials in which the controller emitted any failover event. */
  failoverActed: number;
  failures: Record<Criticality, FailureTotals>;
  baselineUtilization: Summary | null;
  /** p99 latency of the successful requests during the outage, the worst criticality of each trial, ms. */
  outageOkP99Ms: Summary | null;
  peakSurvivorUtilization: Summary | null;
  peakSurvivorOffered: Summary | null;
  settledSurvivorUtilization: Summary | null;
  longestAboveCeilingMs: Summary | null;
  survivorSecondsAboveCeiling: Summary | null;
  failedZoneLastAttemptMs: Summary | null;
  failedZoneLastServedMs: Summary | null;
  firstEjectionMs: Summary | null;
  capacityReadyMs: Summary | null;
  /** Valid trials passing each check. */
  checks: {
    ceilingHeldWithinOneStep: number;
    sheddableShedBeforeDefault: number;
    criticalErrorRateBelow0_1Percent: number;
  };
}

/** One contender against HAProxy on one scenario × load (partition fault), paired by round. */
export interface PairedComparison {
  scenario: ScenarioName;
  fault: FaultName;
  loadFraction: number;
  mode: Mode;
  baseline: Mode;
  pairs: number;
  /** Metric key (RATIO_METRICS) → contender ÷ baseline per pair. */
  ratios: Record<string, PairedRatio>;
}

export interface ZonesBenchResult {
  benchmark: "zones";
  command: string;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  dateUtc: string;
  machine: MachineInfo & { loadAverage1mAtEnd: number };
  code: CodeState;
  options: ZonesBenchOptions;
  /** Each contender's full configuration: Homeostat's fleet files, HAProxy's config files. */
  configurations: Record<string, string>;
  /** Trials whose generator fell behind (left out of the summaries), and trials that failed to run. */
  invalidTrials: number;
  failedTrials: number;
  summaries: ScenarioSummary[];
  comparisons: PairedComparison[];
  trials: Trial[];
  leftoverPids: number[];
}

function total(counts: OutcomeCounts[]): FailureTotals {
  const sum = (field: keyof Omit<FailureTotals, "failedShare">) =>
    counts.reduce((n, c) => n + (c[field] as number), 0);
  const sent = sum("sent");
  const failed = sum("failed");
  return {
    sent,
    failed,
    shed: sum("shed"),
    http5xx: sum("http5xx"),
    timeout: sum("timeout"),
    connectionError: sum("connectionError"),
    other: sum("other"),
    failedShare: sent === 0 ? null : failed / sent,
  };
}

function values(trials: Trial[], pick: (t: Trial) => number | null | undefined): number[] {
  return trials.flatMap((t) => {
    const v = pick(t);
    return v === null || v === undefined ? [] : [v];
  });
}

export function summarizeScenario(
  key: { scenario: ScenarioName; fault: FaultName; loadFraction: number; mode: Mode },
  all: Trial[],
): ScenarioSummary {
  const trials = all.filter(
    (t) =>
      t.scenario === key.scenario &&
      t.fault === key.fault &&
      t.loadFraction === key.loadFraction &&
      t.mode === key.mode,
  );
  const analysed = trials.filter((t) => t.ok && t.figures !== null);
  const measured = trials.filter(usable);
  const f = (pick: (figures: NonNullable<Trial["figures"]>) => number | null) =>
    summarize(values(measured, (t) => pick(t.figures!)));
  const failures = Object.fromEntries(
    CRITICALITIES.map((c) => [c, total(measured.map((t) => t.figures.sinceFault[c]))]),
  ) as Record<Criticality, FailureTotals>;
  const passing = (check: keyof ScenarioSummary["checks"]) =>
    measured.filter((t) => t.figures.checks[check]).length;
  return {
    ...key,
    trials: trials.length,
    ok: analysed.length,
    invalid: analysed.length - measured.length,
    valid: measured.length,
    trialsOk: measured.filter((t) => allChecksPass(t.figures.checks)).length,
    warmupFailed: measured.reduce((n, t) => n + t.figures.warmupFailed, 0),
    warmupSent: measured.reduce((n, t) => n + t.figures.warmupSent, 0),
    achievedFraction: summarize(
      values(measured, (t) =>
        t.generator?.achievedRatePerSecond == null
          ? null
          : t.generator.achievedRatePerSecond / t.ratePerSecond,
      ),
    ),
    ratePerSecond: trials[0]?.ratePerSecond ?? null,
    failoverActed: measured.filter((t) => t.figures.failoverActed).length,
    failures,
    baselineUtilization: f((x) => x.baselineUtilization),
    outageOkP99Ms: f(outageP99),
    peakSurvivorUtilization: f((x) => x.peakSurvivorUtilization),
    peakSurvivorOffered: f((x) => x.peakSurvivorOffered),
    settledSurvivorUtilization: f((x) => x.settledSurvivorUtilization),
    longestAboveCeilingMs: f((x) => x.longestAboveCeilingMs),
    survivorSecondsAboveCeiling: f((x) => x.survivorSecondsAboveCeiling),
    failedZoneLastAttemptMs: f((x) => x.failedZoneLastAttemptMs),
    failedZoneLastServedMs: f((x) => x.failedZoneLastServedMs),
    firstEjectionMs: f((x) => x.firstEjectionMs),
    capacityReadyMs: f((x) => x.capacityReadyEventMs ?? x.addedInstanceReadyMs),
    checks: Object.fromEntries(CHECK_NAMES.map((c) => [c, passing(c)])) as ScenarioSummary["checks"],
  };
}

/** Every contender but the baseline against it, per scenario × load, on the faults the baseline ran. */
export function compareWithBaseline(
  trials: Trial[],
  keys: { scenario: ScenarioName; fault: FaultName; loadFraction: number }[],
  modes: Mode[],
  baseline: Mode = "haproxy",
): PairedComparison[] {
  const out: PairedComparison[] = [];
  for (const key of keys) {
    for (const mode of modes) {
      if (mode === baseline) continue;
      const pairs = pairTrials(trials, key, mode, baseline);
      if (!trials.some((t) => t.mode === baseline && t.scenario === key.scenario && t.fault === key.fault))
        continue;
      out.push({
        ...key,
        mode,
        baseline,
        pairs: pairs.length,
        ratios: Object.fromEntries(RATIO_METRICS.map((m) => [m.key, pairedRatio(pairs, m.pick)])),
      });
    }
  }
  return out;
}
