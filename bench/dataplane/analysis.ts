/**
 * What one data-plane trial did to the clients, read from the open-loop generator's per-request
 * records. Every latency is charged from the request's due time (when the schedule wanted it
 * sent), so time spent waiting for one of the generator's connections counts; the generator's
 * own delay (send minus due) is reported apart, as its lag. Times are ms from the generator's t0.
 */

import { percentile } from "../foundation/stats.ts";

/** The columns of the records this file reads (the generator's `RequestRecords`). */
export interface RunRecords {
  dueMs: ArrayLike<number>;
  /** When the request was written to a socket (for one never sent: when it failed). */
  sentMs: ArrayLike<number>;
  doneMs: ArrayLike<number>;
  /** 0: no HTTP answer (see `error`). */
  status: ArrayLike<number>;
  error: ArrayLike<string | null>;
}

export interface Spread {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

/** A stretch of the schedule, ms from t0: requests due in [fromMs, toMs). */
export interface Window {
  fromMs: number;
  toMs: number;
}

export interface RunFigures {
  /** Requests due in the measured stretch. */
  requests: number;
  /** Answered 2xx. */
  served: number;
  /** served / requests, in %. */
  servedPercent: number;
  /** Not answered 2xx: another status, or no answer (client timeout, connection error). */
  failed: number;
  /** Failures by kind: the status ("503"), or the generator's error ("timeout", "connect-error"). */
  failures: Record<string, number>;
  /** From the due time to the end of the answer (or of the failure), every request. */
  latency: Spread | null;
  /** The same for the requests due inside `window` (the fault), when one is given. */
  latencyInWindow: Spread | null;
  /** The generator's lag: send minus due. */
  lateness: Spread | null;
  /** Requests sent per second, from the first due time to the last send. */
  achievedRate: number;
  /** Due times of the first and the last failed request, ms from the window's start (null: none). */
  firstFailedMs: number | null;
  lastFailedMs: number | null;
}

/** How a request ended: "ok" for a 2xx, else its failure kind. */
export function outcome(status: number, error: string | null): "ok" | string {
  if (status >= 200 && status < 300) return "ok";
  if (status === 0) return error ?? "no-answer";
  return String(status);
}

/** Nearest-rank p50 / p99 / max of `values` (unsorted), or null when there are none. */
export function spread(values: readonly number[]): Spread | null {
  if (values.length === 0) return null;
  const sorted = Float64Array.from(values).sort() as unknown as number[];
  return {
    n: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1]!,
  };
}

/**
 * The figures of one run.
 * @param window the fault, ms from t0: latency of the requests due in it, and failure times
 *   relative to its start (without one, relative to t0)
 */
export function analyzeRun(records: RunRecords, window: Window | null = null): RunFigures {
  const n = records.dueMs.length;
  const latency: number[] = [];
  const inWindow: number[] = [];
  const lateness: number[] = [];
  const failures: Record<string, number> = {};
  let served = 0;
  let firstFailed: number | null = null;
  let lastFailed: number | null = null;
  let lastSent = Number.NEGATIVE_INFINITY;
  const origin = window?.fromMs ?? 0;
  for (let i = 0; i < n; i++) {
    const due = records.dueMs[i]!;
    const sent = records.sentMs[i]!;
    const waited = records.doneMs[i]! - due;
    latency.push(waited);
    lateness.push(sent - due);
    lastSent = Math.max(lastSent, sent);
    if (window !== null && due >= window.fromMs && due < window.toMs) inWindow.push(waited);
    const kind = outcome(records.status[i]!, records.error[i] ?? null);
    if (kind === "ok") {
      served++;
      continue;
    }
    failures[kind] = (failures[kind] ?? 0) + 1;
    firstFailed = firstFailed === null ? due - origin : Math.min(firstFailed, due - origin);
    lastFailed = lastFailed === null ? due - origin : Math.max(lastFailed, due - origin);
  }
  const first = n === 0 ? 0 : records.dueMs[0]!;
  return {
    requests: n,
    served,
    servedPercent: n === 0 ? 0 : (served / n) * 100,
    failed: n - served,
    failures,
    latency: spread(latency),
    latencyInWindow: window === null ? null : spread(inWindow),
    lateness: spread(lateness),
    achievedRate: n === 0 ? 0 : n / (Math.max(lastSent - first, 1) / 1000),
    firstFailedMs: firstFailed,
    lastFailedMs: lastFailed,
  };
}

/** The targets for the hung-instance scenario. */
export const HUNG_TARGETS = { servedPercent: 99.5, p99Ms: 300, failed: 0 } as const;

export interface TargetVerdict {
  servedPercent: boolean;
  p99: boolean;
  zeroFailed: boolean;
  all: boolean;
}

/** Each target, met or missed, by one run's figures (no latency at all counts as missed). */
export function hungVerdict(figures: RunFigures): TargetVerdict {
  const servedPercent = figures.requests > 0 && figures.servedPercent >= HUNG_TARGETS.servedPercent;
  const p99 = figures.latency !== null && figures.latency.p99 <= HUNG_TARGETS.p99Ms;
  const zeroFailed = figures.requests > 0 && figures.failed === HUNG_TARGETS.failed;
  return { servedPercent, p99, zeroFailed, all: servedPercent && p99 && zeroFailed };
}
