/**
 * Steady open-loop load on the benches' one generator (`bench/common/loadgen/openloop.c`):
 * request i is due at t0 + i / rate whatever happened to the earlier ones, so a slow or failing
 * release cannot slow the load down and hide itself. Each request is kept with its due time, the
 * time its bytes actually went on a socket (after any wait for one of the generator's
 * connections), when it ended, its status, and two response headers: the data plane's
 * `x-homeostat-instance` (the endpoint that answered) and the demo app's own `x-instance` (the
 * name the answering process was started with, passed through by the data plane).
 *
 * The generator keeps no body, so which release answered is not read from the answer: it is
 * derived afterwards from the instance and the controller's `instance.started` events
 * (`attribution.ts`), and the app's own name is checked against the data plane's header.
 *
 * The generator's own health comes with the result: offered vs achieved rate, lateness (written −
 * due) and whether it kept its schedule (`valid`); an invalid run is counted and left out of the
 * summaries.
 *
 * Times are epoch ms with sub-ms precision, on the same wall clock as the controller's event times
 * (`Date.now()` in another process on this machine).
 */

import type { LoadgenResult } from "../common/loadgen/native.ts";
import { epochNow, ScheduledLoad } from "../common/loadgen/scheduledLoad.ts";
import type { LoadSummary, RequestRecords, ValidityBounds } from "../common/loadgen/summary.ts";
import type { ProcessLedger } from "../foundation/processes.ts";

/** The data plane's header: the instance (endpoint) that answered. */
export const INSTANCE_HEADER = "x-homeostat-instance";
/** The demo app's header (examples/app/server.ts): its own `--name`, i.e. the instance it runs as. */
export const APP_INSTANCE_HEADER = "x-instance";

/** One request. Times are epoch ms; `status` 0 means no HTTP answer (see `error`). */
export interface LoadRecord {
  /** When it was due (t0 + i / rate). */
  due: number;
  /** When it was written to a socket; for one never written, when it failed (as `done`). */
  sent: number;
  /** When it was written to a socket, after any wait for a connection; null: never written. */
  written: number | null;
  done: number;
  status: number;
  /** `x-homeostat-instance`: the endpoint the data plane says answered. */
  instance: string | null;
  /** `x-instance`: the name the answering app says it runs as (null: no app answered). */
  appInstance: string | null;
  /**
   * The release the answering instance ran, derived from the controller's `instance.started`
   * events (`withReleases` in attribution.ts); null until then, or when it cannot be told.
   */
  version: string | null;
  error: string | null;
}

/** Whether the generator kept its schedule: invalid trials are counted and left out of summaries. */
export interface LoadHealth {
  offeredRatePerSecond: number;
  achievedRatePerSecond: number;
  /** achieved ÷ offered. */
  achievedFraction: number;
  /** Requests due, and written to a socket. */
  due: number;
  written: number;
  /** Written − due, ms (null: nothing due). */
  latenessP99Ms: number | null;
  latenessMaxMs: number | null;
  /** Done − due, every request (failures included), ms. */
  latencyP99Ms: number | null;
  valid: boolean;
  invalidReason: string | null;
}

export interface LoadResult {
  /** Epoch ms of request 0's due time. */
  t0: number;
  ratePerSecond: number;
  records: LoadRecord[];
  health: LoadHealth;
  /** The generator's whole summary (lateness and latency from the due time, failures). */
  summary: LoadSummary;
}

export interface LoadOptions {
  port: number;
  path: string;
  ratePerSecond: number;
  /** A request without a complete answer this long after its due time ends as `timeout`. */
  timeoutMs: number;
  /** Longest the load may run before `stop()` (the generator sizes its records to it); 15 min. */
  maxDurationMs?: number;
  /** When the generator counts as fallen behind (default: the generator's `DEFAULT_BOUNDS`). */
  bounds?: Partial<ValidityBounds>;
  /** Where the generator's pid is noted (default: this module's own, swept at exit). */
  ledger?: ProcessLedger;
}

export { epochNow };

/**
 * Connections the generator may open: one for every request that can be outstanding (a request
 * ends at the latest `timeoutMs` after it is due, so at most rate × timeout are), and a margin, so
 * a slow release makes answers late, never the load.
 */
export function connectionsFor(ratePerSecond: number, timeoutMs: number): number {
  return Math.ceil((ratePerSecond * Math.max(timeoutMs, 1000)) / 1000) + 64;
}

/**
 * The generator's per-request columns (ms from its t0) as records in epoch ms. `t0` is request 0's
 * due time in epoch ms.
 */
export function recordsFrom(columns: RequestRecords, t0: number): LoadRecord[] {
  const instances = columns.headers[INSTANCE_HEADER];
  const apps = columns.headers[APP_INSTANCE_HEADER];
  const records: LoadRecord[] = [];
  for (let k = 0; k < columns.dueMs.length; k++) {
    const written = columns.written[k]! ? columns.sentMs[k]! + t0 : null;
    records.push({
      due: columns.dueMs[k]! + t0,
      sent: columns.sentMs[k]! + t0,
      written,
      done: columns.doneMs[k]! + t0,
      status: columns.status[k]!,
      instance: instances?.[k] ?? null,
      appInstance: apps?.[k] ?? null,
      version: null,
      error: columns.error[k] ?? null,
    });
  }
  return records;
}

/** The generator's health from its summary. */
export function healthOf(summary: LoadSummary): LoadHealth {
  return {
    offeredRatePerSecond: summary.offeredRate,
    achievedRatePerSecond: summary.achievedRate,
    achievedFraction: summary.achievedFraction,
    due: summary.due,
    written: summary.written,
    latenessP99Ms: summary.lateness?.p99 ?? null,
    latenessMaxMs: summary.lateness?.max ?? null,
    latencyP99Ms: summary.latency?.p99 ?? null,
    valid: summary.valid,
    invalidReason: summary.valid ? null : (summary.invalidReason ?? "the generator fell behind"),
  };
}

export class OpenLoad {
  readonly #options: LoadOptions;
  readonly #load: ScheduledLoad;
  #result: Promise<LoadResult> | null = null;

  constructor(options: LoadOptions) {
    this.#options = options;
    this.#load = new ScheduledLoad({
      ...options,
      connections: connectionsFor(options.ratePerSecond, options.timeoutMs),
      captureHeaders: [INSTANCE_HEADER, APP_INSTANCE_HEADER],
    });
  }

  /** Whether `start()` was called. */
  get started(): boolean {
    return this.#load.started;
  }

  /**
   * Start sending; returns t0 (epoch ms of request 0's due time, a moment from now). Every request
   * is measured (no generator warm-up): the bench's own warm-up is part of the analysed run.
   */
  start(): number {
    return this.#load.start();
  }

  /**
   * Stop sending, wait for the requests out (each ends by its timeout), and return everything.
   * Called again, it returns the same result.
   * @throws when the load was never started, or the generator failed
   */
  async stop(): Promise<LoadResult> {
    if (!this.#load.started) throw new Error("the load was not started");
    this.#result ??= this.#load.stop().then((result) => this.#toResult(result));
    return this.#result;
  }

  #toResult(result: LoadgenResult): LoadResult {
    const { records: columns, ...summary } = result;
    // The generator's t0 is the one `start()` asked for, to the µs; its columns are ms from it.
    return {
      t0: result.t0EpochMs,
      ratePerSecond: this.#options.ratePerSecond,
      records: recordsFrom(columns!, result.t0EpochMs),
      health: healthOf(summary),
      summary,
    };
  }
}
