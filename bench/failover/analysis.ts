/**
 * What one failover trial did to the clients, read from the load generator's per-request records.
 * Times are ms from the kill (negative: before it). A request "touched" the killed instance when
 * it failed, or when the proxy had to retry it (Homeostat's `x-homeostat-attempts` > 1, HAProxy's
 * `x-haproxy-retries` ≠ 0): with nothing else failing during a trial, that retry is the dead
 * instance's doing.
 */

import { percentile } from "../foundation/stats.ts";
import type { RequestRecords } from "../common/loadgen/summary.ts";

export const INSTANCE_HEADER = "x-instance";
export const HOMEOSTAT_ATTEMPTS = "x-homeostat-attempts";
export const HAPROXY_RETRIES = "x-haproxy-retries";
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
  /** Answered 200, after the proxy retried at least once. */
  retried: number;
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
  const failures: Record<string, number> = {};
  let failed = 0;
  let failedLongBeforeKill = 0;
  let retried = 0;
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
    const retriedHere = isRetried(retriedHeader, retriesOf[i] ?? null);
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

function isRetried(header: string, value: string | null): boolean {
  if (value === null) return false;
  if (header === HOMEOSTAT_ATTEMPTS) return Number(value) > 1;
  // HAProxy's %rc: "0", "2", or "+1" when the retry was redispatched to another server.
  return value !== "0";
}
