/**
 * The result file's shape, and the summaries over the trials of each scenario × mode.
 */

import type { Criticality } from "../../src/traffic/contracts.ts";
import type { MachineInfo } from "../foundation/machine.ts";
import { type Summary, summarize } from "../foundation/stats.ts";
import type { CodeState } from "../proxy/codeState.ts";
import { CRITICALITIES, type OutcomeCounts } from "./analysis.ts";
import type { Mode, ScenarioName, ZonesBenchOptions } from "./options.ts";
import type { Trial } from "./trial.ts";

/** Failed requests of one criticality from the fault to the end, summed over the trials. */
export type FailureTotals = Pick<
  OutcomeCounts,
  "sent" | "failed" | "shed" | "http5xx" | "timeout" | "connectionError" | "other" | "failedShare"
>;

export interface ScenarioSummary {
  scenario: ScenarioName;
  mode: Mode;
  trials: number;
  ok: number;
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
  /** Trials passing each of issue 5's checks. */
  checks: {
    ceilingHeldWithinOneStep: number;
    sheddableShedBeforeDefault: number;
    criticalErrorRateBelow0_1Percent: number;
  };
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
  /** The fleet file of each scenario × mode (the same but for `failover.automatic`). */
  fleets: Record<string, string>;
  summaries: ScenarioSummary[];
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

export function summarizeScenario(scenario: ScenarioName, mode: Mode, all: Trial[]): ScenarioSummary {
  const trials = all.filter((t) => t.scenario === scenario && t.mode === mode);
  const measured = trials.filter((t) => t.ok && t.figures !== null);
  const f = (pick: (figures: NonNullable<Trial["figures"]>) => number | null) =>
    summarize(values(measured, (t) => pick(t.figures!)));
  const failures = Object.fromEntries(
    CRITICALITIES.map((c) => [c, total(measured.map((t) => t.figures!.sinceFault[c]))]),
  ) as Record<Criticality, FailureTotals>;
  const passing = (check: keyof ScenarioSummary["checks"]) =>
    measured.filter((t) => t.figures!.checks[check]).length;
  return {
    scenario,
    mode,
    trials: trials.length,
    ok: measured.length,
    ratePerSecond: trials[0]?.ratePerSecond ?? null,
    failoverActed: measured.filter((t) => t.figures!.failoverActed).length,
    failures,
    baselineUtilization: f((x) => x.baselineUtilization),
    outageOkP99Ms: f((x) => {
      const p99s = CRITICALITIES.flatMap((c) => x.requests.outage[c].okP99Ms ?? []);
      return p99s.length === 0 ? null : Math.max(...p99s);
    }),
    peakSurvivorUtilization: f((x) => x.peakSurvivorUtilization),
    peakSurvivorOffered: f((x) => x.peakSurvivorOffered),
    settledSurvivorUtilization: f((x) => x.settledSurvivorUtilization),
    longestAboveCeilingMs: f((x) => x.longestAboveCeilingMs),
    survivorSecondsAboveCeiling: f((x) => x.survivorSecondsAboveCeiling),
    failedZoneLastAttemptMs: f((x) => x.failedZoneLastAttemptMs),
    failedZoneLastServedMs: f((x) => x.failedZoneLastServedMs),
    firstEjectionMs: f((x) => x.firstEjectionMs),
    capacityReadyMs: f((x) => x.capacityReadyEventMs ?? x.addedInstanceReadyMs),
    checks: {
      ceilingHeldWithinOneStep: passing("ceilingHeldWithinOneStep"),
      sheddableShedBeforeDefault: passing("sheddableShedBeforeDefault"),
      criticalErrorRateBelow0_1Percent: passing("criticalErrorRateBelow0_1Percent"),
    },
  };
}
