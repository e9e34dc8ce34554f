/**
 * What one run of the benches' open-loop generator (`openloop.c`) did, as figures that tell on
 * the generator too: the rate it was asked for and the rate it achieved, how late it wrote each
 * request (from the due time to the bytes going on a socket, any wait for a connection included),
 * latency from the due time, and whether the run is valid at all (a generator that fell behind
 * offered less load than the trial says, and hid part of the latency in its own queue).
 *
 * Pure: no process, no clock. `native.ts` runs the generator and decodes its file into a
 * `LoadgenRaw`.
 */

import { percentile } from "../../foundation/stats.ts";

/**
 * When a run counts as the generator having fallen behind: it is then `valid: false` and reports
 * leave it out of their summaries (and count it).
 */
export interface ValidityBounds {
  /** Most the p99 of lateness (written − due) may be, ms. */
  maxLatenessP99Ms: number;
  /**
   * Least share of the requests due that the generator must have written (or had refused by the
   * target: a refused connect is the target's doing, not a generator that fell behind).
   */
  minAchievedFraction: number;
}

/**
 * 5 ms: an order above this generator's own p99 lateness on a quiet machine (tens of µs) and a
 * few times the 1–2 ms the noisiest runs showed; a run past it had its requests wait for a
 * connection, or a generator starved of CPU. 0.98: at most 2 % of the due requests not written.
 */
export const DEFAULT_BOUNDS: ValidityBounds = { maxLatenessP99Ms: 5, minAchievedFraction: 0.98 };

/** Nearest-rank percentiles, ms. */
export interface LatencySummary {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/** What `openloop.c` writes in its error column, by code. */
export const ERROR_NAMES = ["", "connect-error", "closed", "timeout", "parse-error"] as const;

/** Errors that leave a request unwritten through the target's doing (it refused or reset). */
const REFUSED = new Set(["connect-error", "closed", "parse-error"]);

/** One run as the generator recorded it, every request (warm-up included). */
export interface LoadgenRaw {
  /** Epoch ms (sub-ms precision) of request 0's due time. */
  t0EpochMs: number;
  intervalMs: number;
  /** Requests before this index are the warm-up. */
  warmup: number;
  /** When the request was written to a socket, ms from t0; -1: never written. */
  written: ArrayLike<number>;
  /** When it ended (answer complete, or failed), ms from t0. */
  done: ArrayLike<number>;
  /** 0: no HTTP answer (see `errors`). */
  status: ArrayLike<number>;
  errors: ArrayLike<string | null>;
  /** The header class it was sent with (index into the options' `headerClasses`). */
  headerClass: ArrayLike<number>;
  /** Captured response headers (lower-case name → value per request; null: absent). */
  headers: Record<string, ArrayLike<string | null>>;
}

/** Per measured request, column by column (index = request). Times are ms after t0. */
export interface RequestRecords {
  dueMs: number[];
  /** When it was written to a socket; for one never written, when it failed (see `written`). */
  sentMs: number[];
  written: boolean[];
  doneMs: number[];
  /** 0: no HTTP answer (see `error`). */
  status: number[];
  error: (string | null)[];
  headerClass: number[];
  headers: Record<string, (string | null)[]>;
}

export interface LoadSummary {
  /** Epoch ms of request 0's due time; the measured stretch starts a warm-up later. */
  t0EpochMs: number;
  intervalMs: number;
  /** The rate asked for, req/s. */
  offeredRate: number;
  /**
   * Measured requests written per second: written ÷ the measured stretch (its planned length, or
   * up to the last write when that came later).
   */
  achievedRate: number;
  /** achievedRate ÷ offeredRate. */
  achievedFraction: number;
  /** Requests due in the measured stretch. */
  due: number;
  /** …written to a socket. */
  written: number;
  /** …never written because the target refused or reset the connection (not the generator's lag). */
  refused: number;
  /** …answered with a 2xx. */
  ok: number;
  /** …answered with another status. */
  non2xx: number;
  /** …with no answer (connection error, timeout). */
  errors: number;
  statusCounts: Record<string, number>;
  errorCounts: Record<string, number>;
  /** The warm-up's requests: not in any other figure, but a failure there is still a failure. */
  warmup: { due: number; ok: number; non2xx: number; errors: number };
  /** From the due time to the end of the answer (or of the failure), every measured request. */
  latency: LatencySummary | null;
  /** From the write to the end of the answer, written requests (no wait in the generator). */
  service: LatencySummary | null;
  /**
   * Written − due: the generator's own delay, waiting for a connection included. A request that
   * timed out before it could be written counts with its give-up time − due (a lower bound).
   */
  lateness: LatencySummary | null;
  /** False: the generator fell behind (see `invalidReason`); leave the run out of summaries. */
  valid: boolean;
  invalidReason: string | null;
  bounds: ValidityBounds;
}

function summarize(values: ArrayLike<number>): LatencySummary | null {
  if (values.length === 0) return null;
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  const list = sorted as unknown as number[];
  return {
    n: sorted.length,
    p50: percentile(list, 50),
    p90: percentile(list, 90),
    p99: percentile(list, 99),
    p999: percentile(list, 99.9),
    max: sorted[sorted.length - 1]!,
    mean: sum / sorted.length,
  };
}

/** The requests one summary covers: indexes [from, to) of the raw columns. */
export interface Stretch {
  from: number;
  to: number;
}

/** Requests due in [fromMs, toMs) of the schedule (ms from t0), as a stretch of `raw`. */
export function stretchOf(raw: LoadgenRaw, fromMs: number, toMs: number): Stretch {
  const total = raw.done.length;
  const clamp = (i: number) => Math.min(total, Math.max(0, i));
  return { from: clamp(Math.ceil(fromMs / raw.intervalMs)), to: clamp(Math.ceil(toMs / raw.intervalMs)) };
}

/**
 * The figures of one run. `stretch` (default: the measured stretch, warm-up left out) says which
 * requests they cover; validity is judged on the same requests.
 */
export function summarizeLoad(
  raw: LoadgenRaw,
  bounds: Partial<ValidityBounds> = {},
  stretch: Stretch = { from: raw.warmup, to: raw.done.length },
): LoadSummary {
  const limits = { ...DEFAULT_BOUNDS, ...bounds };
  const { intervalMs, written: writtenAt, done, status: statusOf } = raw;
  const { from, to } = stretch;
  const latency: number[] = [];
  const service: number[] = [];
  const lateness: number[] = [];
  const statusCounts: Record<string, number> = {};
  const errorCounts: Record<string, number> = {};
  let ok = 0;
  let non2xx = 0;
  let errors = 0;
  let written = 0;
  let refused = 0;
  let lastWritten = -Infinity;
  for (let i = from; i < to; i++) {
    const dueAt = i * intervalMs;
    const at = writtenAt[i]!;
    const error = raw.errors[i] ?? null;
    latency.push(done[i]! - dueAt);
    if (at >= 0) {
      written++;
      lateness.push(at - dueAt);
      service.push(done[i]! - at);
      lastWritten = Math.max(lastWritten, at);
    } else if (error !== null && REFUSED.has(error)) {
      refused++;
    } else {
      lateness.push(done[i]! - dueAt);
    }
    const status = statusOf[i]!;
    if (status === 0) {
      errors++;
      const code = error ?? "unknown";
      errorCounts[code] = (errorCounts[code] ?? 0) + 1;
    } else {
      if (status >= 200 && status < 300) ok++;
      else non2xx++;
      statusCounts[status] = (statusCounts[status] ?? 0) + 1;
    }
  }
  const due = Math.max(0, to - from);
  const offeredRate = 1000 / intervalMs;
  const startMs = from * intervalMs;
  const spanMs = Math.max(due * intervalMs, lastWritten - startMs, 1);
  const achievedRate = written / (spanMs / 1000);
  const warmupCounts = { due: raw.warmup, ok: 0, non2xx: 0, errors: 0 };
  for (let i = 0; i < raw.warmup; i++) {
    const status = statusOf[i]!;
    if (status === 0) warmupCounts.errors++;
    else if (status >= 200 && status < 300) warmupCounts.ok++;
    else warmupCounts.non2xx++;
  }
  const latenessSummary = summarize(lateness);
  let invalidReason: string | null = null;
  if (latenessSummary !== null && latenessSummary.p99 > limits.maxLatenessP99Ms) {
    invalidReason = `generator lateness p99 ${latenessSummary.p99.toFixed(2)} ms > ${limits.maxLatenessP99Ms} ms (requests waited to be written)`;
  } else if (due > 0 && (written + refused) / due < limits.minAchievedFraction) {
    invalidReason = `generator wrote ${written} of ${due} due requests (${refused} refused by the target): below ${limits.minAchievedFraction * 100} %`;
  }
  return {
    t0EpochMs: raw.t0EpochMs,
    intervalMs,
    offeredRate,
    achievedRate,
    achievedFraction: achievedRate / offeredRate,
    due,
    written,
    refused,
    ok,
    non2xx,
    errors,
    statusCounts,
    errorCounts,
    warmup: warmupCounts,
    latency: summarize(latency),
    service: summarize(service),
    lateness: latenessSummary,
    valid: invalidReason === null,
    invalidReason,
    bounds: limits,
  };
}

/** The measured requests of `raw`, column by column. */
export function recordsOf(raw: LoadgenRaw): RequestRecords {
  const from = raw.warmup;
  const to = raw.done.length;
  const slice = <T>(column: ArrayLike<T>): T[] => Array.prototype.slice.call(column, from, to) as T[];
  const written = slice(raw.written).map((at) => at >= 0);
  const done = slice(raw.done);
  return {
    dueMs: Array.from({ length: to - from }, (_, k) => (k + from) * raw.intervalMs),
    sentMs: slice(raw.written).map((at, k) => (at >= 0 ? at : done[k]!)),
    written,
    doneMs: done,
    status: slice(raw.status),
    error: slice(raw.errors),
    headerClass: slice(raw.headerClass),
    headers: Object.fromEntries(Object.entries(raw.headers).map(([h, column]) => [h, slice(column)])),
  };
}

/** Runs that count and how many did not: `valid` ones kept, the rest counted with their reasons. */
export function validOnly<T>(
  runs: readonly T[],
  summaryOf: (run: T) => Pick<LoadSummary, "valid" | "invalidReason"> | null,
): { kept: T[]; invalid: number; reasons: string[] } {
  const kept: T[] = [];
  const reasons: string[] = [];
  for (const run of runs) {
    const s = summaryOf(run);
    if (s === null || s.valid) kept.push(run);
    else reasons.push(s.invalidReason ?? "invalid");
  }
  return { kept, invalid: reasons.length, reasons };
}
