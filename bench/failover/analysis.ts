/**
 * What one failover trial did to the clients, read from the load generator's per-request records.
 * Times are ms from the kill (negative: before it). A request "touched" the killed instance when
 * it failed, or when the proxy had to retry it (Homeostat's `x-homeostat-attempts` > 1 once its
 * hedge is taken off, HAProxy's `x-haproxy-retries` ≠ 0): with nothing else failing during a
 * trial, that retry is the dead instance's doing. A hedge (Homeostat's second attempt at a slow
 * request, `x-homeostat-hedged`) is not a retry: it is counted apart, and does not make a request
 * "touched" (it did before, and hedges seconds after the kill passed for late hits of it).
 */

import type { RequestRecords } from "../common/loadgen/summary.ts";
import { percentile } from "../foundation/stats.ts";
import { MIN_VALID_PAIRS, type RatioSpread, ratioSpread } from "../proxy/paired.ts";

export const INSTANCE_HEADER = "x-instance";
export const HOMEOSTAT_ATTEMPTS = "x-homeostat-attempts";
export const HAPROXY_RETRIES = "x-haproxy-retries";
/** Present when Homeostat hedged the request: one of its attempts was a hedge, not a retry. */
export const HOMEOSTAT_HEDGED = "x-homeostat-hedged";
/** Why Homeostat answered 503 itself (admission: `queue-full`, `queue-timeout`…; `no-upstream`). */
export const HOMEOSTAT_SHED = "x-homeostat-shed";

export interface TrialFigures {
  requests: number;
  /** Not answered 200 (an error status, or no answer at all). */
  failed: number;
  /** Failures by status (with Homeostat's shed reason), or by error code when there was no answer. */
  failures: Record<string, number>;
  /**
   * Of `failed`, those due more than 100 ms before the kill: they cannot be the kill's doing
   * (a request takes about 6 ms), so they show trouble that was there anyway.
   */
  failedLongBeforeKill: number;
  /** Answered 200, after the proxy retried at least once (a hedge is not a retry). */
  retried: number;
  /** Homeostat only: requests the proxy hedged (a second attempt at a slow request). */
  hedged: number;
  /**
   * When the last request that failed or was retried was sent (handed to the proxy), from the
   * kill; null: none. The send time, not the due time, is what the proxy routed on.
   */
  lastTouchedMs: number | null;
  /** Due time of the last failed request, from the kill; null: none. */
  lastFailedMs: number | null;
  /** Requests the victim answered before the kill (it did take traffic). */
  victimServedBeforeKill: number;
  /** End of the first answer from the victim's name among requests due after the kill (a replacement). */
  replacementServesMs: number | null;
  /** Latency (ms from due time) of the requests due in the second before the kill. */
  baselineP99Ms: number | null;
  /** …and of those due in the second after it. */
  afterKillP99Ms: number | null;
  afterKillMaxMs: number | null;
  /** The slowest request due after the kill. */
  worstAfterKillMs: number | null;
  achievedRate: number;
  /**
   * The generator's worst delay between a request's due time and its send: large when its
   * connections were all busy (the offered load then fell below the set rate).
   */
  maxLatenessMs: number;
}

function p99(values: number[]): number | null {
  return values.length === 0
    ? null
    : percentile(
        [...values].sort((a, b) => a - b),
        99,
      );
}

export function analyzeTrial(
  records: RequestRecords,
  killMs: number,
  victim: string,
  retriedHeader: string,
): TrialFigures {
  const instance = records.headers[INSTANCE_HEADER] ?? [];
  const retriesOf = records.headers[retriedHeader] ?? [];
  const shedOf = records.headers[HOMEOSTAT_SHED] ?? [];
  const hedgedOf = records.headers[HOMEOSTAT_HEDGED] ?? [];
  const failures: Record<string, number> = {};
  let failed = 0;
  let failedLongBeforeKill = 0;
  let retried = 0;
  let hedged = 0;
  let lastTouched: number | null = null;
  let maxLateness = 0;
  let lastFailed: number | null = null;
  let victimServedBeforeKill = 0;
  let replacementServes: number | null = null;
  const baseline: number[] = [];
  const afterKill: number[] = [];
  let worstAfterKill: number | null = null;
  let lastDone = 0;
  for (let i = 0; i < records.dueMs.length; i++) {
    const due = records.dueMs[i]! - killMs;
    const sent = records.sentMs[i]! - killMs;
    maxLateness = Math.max(maxLateness, sent - due);
    const done = records.doneMs[i]! - killMs;
    const latency = done - due;
    lastDone = Math.max(lastDone, records.doneMs[i]!);
    const status = records.status[i]!;
    const hedgedHere = hedgedOf[i] !== undefined && hedgedOf[i] !== null;
    if (hedgedHere) hedged++;
    const retriedHere = isRetried(retriedHeader, retriesOf[i] ?? null, hedgedHere);
    if (status !== 200) {
      failed++;
      const shed = shedOf[i];
      const key = status === 0 ? (records.error[i] ?? "error") : shed ? `${status} ${shed}` : String(status);
      failures[key] = (failures[key] ?? 0) + 1;
      lastFailed = Math.max(lastFailed ?? due, due);
      if (due < -100) failedLongBeforeKill++;
    } else if (retriedHere) {
      retried++;
    }
    if (status !== 200 || retriedHere) lastTouched = Math.max(lastTouched ?? sent, sent);
    if (instance[i] === victim) {
      if (done < 0) victimServedBeforeKill++;
      if (due > 0 && status === 200 && (replacementServes === null || done < replacementServes)) {
        replacementServes = done;
      }
    }
    if (due >= -1000 && due < 0) baseline.push(latency);
    if (due >= 0 && due < 1000) afterKill.push(latency);
    if (due >= 0) worstAfterKill = Math.max(worstAfterKill ?? latency, latency);
  }
  const first = records.dueMs[0] ?? 0;
  return {
    requests: records.dueMs.length,
    failed,
    failures,
    failedLongBeforeKill,
    retried,
    hedged,
    lastTouchedMs: lastTouched,
    maxLatenessMs: maxLateness,
    lastFailedMs: lastFailed,
    victimServedBeforeKill,
    replacementServesMs: replacementServes,
    baselineP99Ms: p99(baseline),
    afterKillP99Ms: p99(afterKill),
    afterKillMaxMs: afterKill.length === 0 ? null : Math.max(...afterKill),
    worstAfterKillMs: worstAfterKill,
    achievedRate: records.dueMs.length / (Math.max(lastDone - first, 1) / 1000),
  };
}

function isRetried(header: string, value: string | null, hedged: boolean): boolean {
  if (value === null) return false;
  // One hedge at most per request (hedging.maxPerRequest, 1 in these fleets): the rest are retries.
  if (header === HOMEOSTAT_ATTEMPTS) return Number(value) - (hedged ? 1 : 0) > 1;
  // HAProxy's %rc: "0", "2", or "+1" when the retry was redispatched to another server.
  return value !== "0";
}

/** One of the bench's own checks on a trial: did it measure what it is meant to? */
export interface TrialCheck {
  name:
    | "ran"
    | "victim-took-traffic"
    | "no-failure-before-kill"
    | "clean-warm-up"
    | "generator-on-time"
    | "generator-kept-rate"
    | "quiet-machine"
    | "kill-seen";
  ok: boolean;
  detail: string;
}

export interface TrialCheckInput {
  /** The trial ran to its end (no error in set-up or teardown). */
  ran: boolean;
  error?: string | null;
  figures: TrialFigures;
  /** Requests that failed in the unmeasured warm-up (null: not recorded). */
  warmupFailed: number | null;
  /** The machine was quiet before the trial (null: not read). */
  quietBefore: boolean | null;
  /** Kill → detected (Homeostat's incident) or marked DOWN (HAProxy), ms; null: never seen. */
  killSeenMs: number | null;
  /** Most the generator may lag behind its schedule. */
  maxLatenessMs: number;
  /** The generator's own verdict on the measured stretch (null: not given). */
  generator?: { valid: boolean; invalidReason: string | null } | null;
}

/**
 * The bench's own checks on one trial. A trial passes when every one holds: it ran, the victim
 * did take traffic before the kill, nothing failed long before the kill or in the warm-up (that
 * would be trouble the kill did not cause), the generator kept its schedule, the machine was
 * quiet, and the proxy (or the controller) did notice the kill.
 */
export function trialChecks(input: TrialCheckInput): TrialCheck[] {
  if (!input.ran) {
    return [{ name: "ran", ok: false, detail: (input.error ?? "did not run").split("\n", 1)[0]! }];
  }
  const f = input.figures;
  return [
    { name: "ran", ok: true, detail: "ran to the end" },
    {
      name: "victim-took-traffic",
      ok: f.victimServedBeforeKill > 0,
      detail: `${f.victimServedBeforeKill} answers from the victim before the kill`,
    },
    {
      name: "no-failure-before-kill",
      ok: f.failedLongBeforeKill === 0,
      detail: `${f.failedLongBeforeKill} failed more than 100 ms before the kill`,
    },
    {
      name: "clean-warm-up",
      ok: input.warmupFailed === 0,
      detail:
        input.warmupFailed === null ? "warm-up not recorded" : `${input.warmupFailed} failed in the warm-up`,
    },
    {
      name: "generator-on-time",
      ok: f.maxLatenessMs <= input.maxLatenessMs,
      detail: `worst send delay ${Math.round(f.maxLatenessMs)} ms (limit ${input.maxLatenessMs} ms)`,
    },
    ...(input.generator == null
      ? []
      : [
          {
            name: "generator-kept-rate" as const,
            ok: input.generator.valid,
            detail: input.generator.valid
              ? "the generator kept its schedule"
              : `the generator: ${input.generator.invalidReason ?? "fell behind"}`,
          },
        ]),
    {
      name: "quiet-machine",
      ok: input.quietBefore !== false,
      detail: input.quietBefore === false ? "went ahead on a busy machine" : "quiet before the trial",
    },
    {
      name: "kill-seen",
      ok: input.killSeenMs !== null,
      detail:
        input.killSeenMs === null
          ? "the kill was never reported"
          : `reported after ${Math.round(input.killSeenMs)} ms`,
    },
  ];
}

/** True when every check holds. */
export function checksPass(checks: readonly TrialCheck[]): boolean {
  return checks.length > 0 && checks.every((c) => c.ok);
}

/** One trial's value for a paired comparison: the round it ran in, whether it passed its checks. */
export interface RoundValue {
  repeat: number;
  checksOk: boolean;
  value: number | null;
}

export interface RoundPairs {
  /** Rounds in which both scenarios ran. */
  rounds: number;
  /** Of them, those that count: both trials passed their checks, both values known, divisor > 0. */
  valid: number;
  /** a ÷ b over the valid rounds (null: fewer than the minimum, "not shown"). */
  ratio: RatioSpread | null;
}

/** a ÷ b paired by round (trials of one round ran minutes apart at most, in rotated order). */
export function pairByRound(
  a: readonly RoundValue[],
  b: readonly RoundValue[],
  minValid = MIN_VALID_PAIRS,
): RoundPairs {
  let rounds = 0;
  const ratios: number[] = [];
  for (const x of a) {
    const y = b.find((t) => t.repeat === x.repeat);
    if (y === undefined) continue;
    rounds++;
    if (!x.checksOk || !y.checksOk || x.value === null || y.value === null || !(y.value > 0)) continue;
    ratios.push(x.value / y.value);
  }
  return { rounds, valid: ratios.length, ratio: ratioSpread(ratios, minValid) };
}

/** What the headline needs of a scenario. */
export interface HeadlineInput {
  label: string;
  /** Failed requests of each trial that ran. */
  failed: number[];
  /** Trials that ran, and of them those that passed every check. */
  trialsRun: number;
  trialsOk: number;
}

/**
 * The run's headline, from the data: how many requests Homeostat and HAProxy at its best failed.
 * "Both 0 failed" when neither failed any; no winner is named where there is none.
 */
export function failoverHeadline(
  homeostat: HeadlineInput | undefined,
  best: HeadlineInput | undefined,
): string {
  if (homeostat === undefined || homeostat.trialsRun === 0) return "No headline: no Homeostat trial ran.";
  if (best === undefined || best.trialsRun === 0) return "No headline: HAProxy at its best did not run.";
  const total = (s: HeadlineInput) => s.failed.reduce((sum, v) => sum + v, 0);
  const each = (s: HeadlineInput) => `${total(s)} (per trial ${s.failed.join(" / ")})`;
  const h = total(homeostat);
  const b = total(best);
  const checked = (s: HeadlineInput) => `${s.trialsOk} of ${s.trialsRun} trials passed every check`;
  let line: string;
  if (h === 0 && b === 0) {
    line = `Both 0 failed: neither ${homeostat.label} nor ${best.label} failed a request (${homeostat.trialsRun} and ${best.trialsRun} trials).`;
  } else if (h === 0) {
    line = `${homeostat.label} failed 0 requests in ${homeostat.trialsRun} trials; ${best.label} failed ${each(best)}.`;
  } else if (b === 0) {
    line = `${homeostat.label} failed ${each(homeostat)}; ${best.label} failed 0 in ${best.trialsRun} trials.`;
  } else {
    line = `Both failed requests: ${homeostat.label} ${each(homeostat)}, ${best.label} ${each(best)}.`;
  }
  return `${line} ${homeostat.label}: ${checked(homeostat)}; ${best.label}: ${checked(best)}.`;
}
