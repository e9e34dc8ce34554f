/**
 * The result file: raw trials plus their summaries, assembled once every phase has run.
 */

import type { FleetFacts } from "./fleetFacts.ts";
import type { HomeostatTrial } from "./homeostatTrials.ts";
import type { MachineInfo } from "./machine.ts";
import type { NaiveHangTrial, NaiveKillTrial } from "./naiveTrials.ts";
import type { BenchOptions } from "./options.ts";
import type { ProcessCost } from "./procSample.ts";
import { type Summary, summarize } from "./stats.ts";

export interface HomeostatSummary {
  trials: number;
  ok: number;
  detectedAfterMs: Summary | null;
  ttdMs: Summary | null;
  ttrMs: Summary | null;
  faultToReadyMs: Summary | null;
  faultToAppReadyMs: Summary | null;
  /** Where TTR goes: detection → replacement started → it answers /ready → the controller says ready. */
  phases: {
    detectToStartMs: Summary | null;
    startToAppReadyMs: Summary | null;
    appReadyToControllerReadyMs: Summary | null;
  };
  incidentKinds: Record<string, number>;
}

export interface HangBound {
  /** `interval × failureThreshold + timeout` of the liveness probe of the victims' service(s). */
  boundMs: number;
  /** Trials detected (from the SIGSTOP, bench's clock) within the bound. */
  detectedWithinBound: number;
  /**
   * TTD − bound per trial. TTD is measured from the last good probe, the bound's own reference;
   * the probe schedule is deterministic, so TTD sits at the bound plus timer and event-loop latency.
   */
  ttdOverBoundMs: Summary | null;
}

export interface BenchResult {
  benchmark: "foundation";
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  machine: MachineInfo & { loadAverage1mAtEnd: number };
  options: BenchOptions;
  fleet: FleetFacts;
  startupToAllReadyMs: number;
  idle: ProcessCost & { pid: number };
  homeostat: {
    sigkill: { summary: HomeostatSummary; trials: HomeostatTrial[] };
    sigstop: { summary: HomeostatSummary; bound: HangBound; trials: HomeostatTrial[] };
  };
  naive: {
    sigkill: {
      summary: {
        trials: number;
        ok: number;
        faultToReadyMs: Summary | null;
        exitSeenMs: Summary | null;
        respawnToReadyMs: Summary | null;
      };
      trials: NaiveKillTrial[];
    };
    sigstop: {
      summary: { trials: number; detected: number; unansweredWhileStopped: number; capMs: number };
      trials: NaiveHangTrial[];
    };
  };
  /** Homeostat ÷ naive, on p50 (and p95) of the SIGKILL kill → ready times. */
  ratios: {
    sigkillStatusReadyP50: number | null;
    sigkillStatusReadyP95: number | null;
    sigkillAppReadyP50: number | null;
    sigkillAppReadyP95: number | null;
  };
  /** Pids still alive after teardown (should be empty). */
  leftoverPids: number[];
}

function values<T>(items: readonly T[], pick: (item: T) => number | null): number[] {
  return items.flatMap((item) => {
    const v = pick(item);
    return v === null || !Number.isFinite(v) ? [] : [v];
  });
}

export function summarizeHomeostat(trials: readonly HomeostatTrial[]): HomeostatSummary {
  const ok = trials.filter((t) => t.ok);
  const kinds: Record<string, number> = {};
  for (const t of ok) kinds[t.incidentKind ?? "none"] = (kinds[t.incidentKind ?? "none"] ?? 0) + 1;
  return {
    trials: trials.length,
    ok: ok.length,
    detectedAfterMs: summarize(values(ok, (t) => t.detectedAfterMs)),
    ttdMs: summarize(values(ok, (t) => t.ttdMs)),
    ttrMs: summarize(values(ok, (t) => t.ttrMs)),
    faultToReadyMs: summarize(values(ok, (t) => t.faultToReadyMs)),
    faultToAppReadyMs: summarize(values(ok, (t) => t.faultToAppReadyMs)),
    phases: {
      detectToStartMs: summarize(
        values(ok, (t) =>
          t.replacementStartedAt === null || t.detectedAt === null
            ? null
            : t.replacementStartedAt - t.detectedAt,
        ),
      ),
      startToAppReadyMs: summarize(
        values(ok, (t) =>
          t.appReadyAt === null || t.replacementStartedAt === null
            ? null
            : t.appReadyAt - t.replacementStartedAt,
        ),
      ),
      appReadyToControllerReadyMs: summarize(
        values(ok, (t) =>
          t.detectedAt === null || t.ttrMs === null || t.appReadyAt === null
            ? null
            : t.detectedAt + t.ttrMs - t.appReadyAt,
        ),
      ),
    },
    incidentKinds: kinds,
  };
}

export function hangBound(trials: readonly HomeostatTrial[], fleet: FleetFacts): HangBound {
  const boundOf = (service: string) => fleet.services.find((s) => s.service === service)?.livenessBoundMs;
  const bounds = [...new Set(trials.map((t) => boundOf(t.service) ?? Number.NaN))];
  const ok = trials.filter((t) => t.ok);
  return {
    boundMs: bounds.length === 1 ? bounds[0]! : Math.max(...bounds),
    detectedWithinBound: ok.filter(
      (t) => t.detectedAfterMs !== null && t.detectedAfterMs <= (boundOf(t.service) ?? 0),
    ).length,
    ttdOverBoundMs: summarize(
      values(ok, (t) => (t.ttdMs === null ? null : t.ttdMs - (boundOf(t.service) ?? Number.NaN))),
    ),
  };
}

export function summarizeNaiveKill(
  trials: readonly NaiveKillTrial[],
): BenchResult["naive"]["sigkill"]["summary"] {
  const ok = trials.filter((t) => t.ok);
  return {
    trials: trials.length,
    ok: ok.length,
    faultToReadyMs: summarize(values(ok, (t) => t.faultToReadyMs)),
    exitSeenMs: summarize(values(ok, (t) => (t.exitSeenAt === null ? null : t.exitSeenAt - t.injectedAt))),
    respawnToReadyMs: summarize(
      values(ok, (t) => (t.readyAt === null || t.respawnedAt === null ? null : t.readyAt - t.respawnedAt)),
    ),
  };
}

export function summarizeNaiveHang(
  trials: readonly NaiveHangTrial[],
  capMs: number,
): BenchResult["naive"]["sigstop"]["summary"] {
  return {
    trials: trials.length,
    detected: trials.filter((t) => t.detected).length,
    unansweredWhileStopped: trials.filter((t) => t.unansweredWhileStopped).length,
    capMs,
  };
}

function ratio(a: number | undefined, b: number | undefined): number | null {
  return a === undefined || b === undefined || b === 0 ? null : a / b;
}

export function sigkillRatios(
  homeostat: HomeostatSummary,
  naive: BenchResult["naive"]["sigkill"]["summary"],
): BenchResult["ratios"] {
  return {
    sigkillStatusReadyP50: ratio(homeostat.faultToReadyMs?.p50, naive.faultToReadyMs?.p50),
    sigkillStatusReadyP95: ratio(homeostat.faultToReadyMs?.p95, naive.faultToReadyMs?.p95),
    sigkillAppReadyP50: ratio(homeostat.faultToAppReadyMs?.p50, naive.faultToReadyMs?.p50),
    sigkillAppReadyP95: ratio(homeostat.faultToAppReadyMs?.p95, naive.faultToReadyMs?.p95),
  };
}
