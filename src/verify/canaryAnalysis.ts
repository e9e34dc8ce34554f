/**
 * Canary analysis: is the new release at least as good as the one it replaces, or within the
 * service's SLO when there is nothing left to compare with?
 *
 * The rule that beats the usual tools: **no data is never a pass.** Too few requests on either
 * side is `inconclusive`, and so is a null or NaN error rate or latency — it is never read as 0.
 * A failure that the known figures already show is still a `fail`, even when another figure is
 * missing: a canary that errors is bad whatever its latency.
 */

import type { Verdict, WindowStats } from "../decide/rollout/types.ts";
import type { DeploySpec, SloSpec } from "../spec/model.ts";
import { exceeds, isKnown, millis, percent, reaches, signedPoints, times } from "./figures.ts";

/** A verdict and the sentences that explain it (the compared figures, or what was missing). */
export interface Judgement {
  verdict: Verdict;
  reasons: string[];
}

/** Findings sorted by what they mean for the verdict. */
interface Findings {
  failures: string[];
  unknowns: string[];
  passes: string[];
}

function verdictOf(findings: Findings): Judgement {
  if (findings.failures.length > 0) return { verdict: "fail", reasons: findings.failures };
  if (findings.unknowns.length > 0) return { verdict: "inconclusive", reasons: findings.unknowns };
  return { verdict: "pass", reasons: findings.passes };
}

/** "canary served 12 requests, need 50", or null when `side` has enough traffic. */
function shortfall(label: string, stats: WindowStats, minRequests: number): string | null {
  // Written so that NaN requests count as too few.
  if (stats.requests >= minRequests) return null;
  return `${label} served ${stats.requests} requests, need ${minRequests}`;
}

function describe(value: number | null, render: (known: number) => string): string {
  return isKnown(value) ? render(value) : "no data";
}

/**
 * Compares the canary's window with the baseline's (the previous release, same window).
 *
 * - `inconclusive` when either side served fewer than `analysis.minRequests` requests, or a figure
 *   needed for the comparison is missing (and the known ones show no failure);
 * - `fail` when canary error rate − baseline error rate > `maxErrorRateIncrease`, or when the
 *   canary's p99 is above baseline p99 × `maxP99Ratio` *and* at least `minP99IncreaseMs` higher
 *   (both, so that 2 ms → 4 ms is not a regression);
 * - `pass` otherwise. A figure exactly at its limit is within it.
 */
export function judgeCanary(
  canary: WindowStats,
  baseline: WindowStats,
  analysis: DeploySpec["analysis"],
): Judgement {
  const missing = [
    shortfall("canary", canary, analysis.minRequests),
    shortfall("baseline", baseline, analysis.minRequests),
  ].filter((reason): reason is string => reason !== null);
  if (missing.length > 0) return { verdict: "inconclusive", reasons: missing };

  const findings: Findings = { failures: [], unknowns: [], passes: [] };

  const canaryRate = canary.errorRate;
  const baselineRate = baseline.errorRate;
  if (isKnown(canaryRate) && isKnown(baselineRate)) {
    const increase = canaryRate - baselineRate;
    const failed = exceeds(increase, analysis.maxErrorRateIncrease);
    findings[failed ? "failures" : "passes"].push(
      `error rate ${percent(canaryRate)} vs baseline ${percent(baselineRate)} ` +
        `(${signedPoints(increase)}, ${failed ? "more than" : "at most"} ` +
        `${signedPoints(analysis.maxErrorRateIncrease)} allowed)`,
    );
  } else {
    findings.unknowns.push(
      `error rate unknown (canary ${describe(canaryRate, percent)}, ` +
        `baseline ${describe(baselineRate, percent)}): no data is never a pass`,
    );
  }

  const canaryP99 = canary.p99Ms;
  const baselineP99 = baseline.p99Ms;
  if (isKnown(canaryP99) && isKnown(baselineP99)) {
    const ratioLimit = baselineP99 * analysis.maxP99Ratio;
    const failed =
      exceeds(canaryP99, ratioLimit) && reaches(canaryP99 - baselineP99, analysis.minP99IncreaseMs);
    const limit =
      `${times(analysis.maxP99Ratio)} = ${millis(ratioLimit)} ` +
      `and at least +${millis(analysis.minP99IncreaseMs)}`;
    findings[failed ? "failures" : "passes"].push(
      `p99 ${millis(canaryP99)} vs baseline ${millis(baselineP99)} ` +
        `(${failed ? "above" : "within"} ${limit})`,
    );
  } else {
    findings.unknowns.push(
      `p99 unknown (canary ${describe(canaryP99, millis)}, ` +
        `baseline ${describe(baselineP99, millis)}): no data is never a pass`,
    );
  }

  return verdictOf(findings);
}

/**
 * Judges one release's window against the service's SLO alone: used when there is no baseline
 * traffic to compare with (the 100 % step and the soak).
 *
 * - `inconclusive` below `minRequests`, or when a figure is missing (and the known ones are within);
 * - `fail` when the error rate is above `slo.errorRate` or the p99 above `slo.p99Ms`;
 * - `pass` otherwise (a figure exactly at the SLO is within it).
 *
 * `label` names the release in the reasons ("canary served 12 requests, need 50").
 */
export function judgeAgainstSlo(
  stats: WindowStats,
  slo: SloSpec,
  minRequests: number,
  label = "canary",
): Judgement {
  const missing = shortfall(label, stats, minRequests);
  if (missing !== null) return { verdict: "inconclusive", reasons: [missing] };

  const findings: Findings = { failures: [], unknowns: [], passes: [] };

  const rate = stats.errorRate;
  if (isKnown(rate)) {
    const failed = exceeds(rate, slo.errorRate);
    findings[failed ? "failures" : "passes"].push(
      `error rate ${percent(rate)} ${failed ? ">" : "≤"} SLO ${percent(slo.errorRate)}`,
    );
  } else {
    findings.unknowns.push("error rate unknown: no data is never a pass");
  }

  const p99 = stats.p99Ms;
  if (isKnown(p99)) {
    const failed = exceeds(p99, slo.p99Ms);
    findings[failed ? "failures" : "passes"].push(
      `p99 ${millis(p99)} ${failed ? ">" : "≤"} SLO ${millis(slo.p99Ms)}`,
    );
  } else {
    findings.unknowns.push("p99 unknown: no data is never a pass");
  }

  return verdictOf(findings);
}
