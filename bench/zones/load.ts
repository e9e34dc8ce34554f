/**
 * Open-loop load with a criticality mix, on the benches' one generator
 * (`bench/common/loadgen/openloop.c`): request i is due at t0 + i / rate whatever happened to the
 * earlier ones (a saturated fleet cannot slow the load down and hide its own overload), and
 * carries `x-homeostat-criticality` from a fixed, interleaved pattern of ten: 2 critical,
 * 5 default, 3 sheddable. Every answer is kept with how it ended, when it was due, and when it was
 * actually written (after any wait for one of the generator's connections): the generator's own
 * lateness, its achieved rate and whether it kept its schedule (`valid`) come with the result.
 */

import type { Criticality } from "../../src/traffic/contracts.ts";
import type { LoadgenResult } from "../common/loadgen/native.ts";
import { epochNow, ScheduledLoad } from "../common/loadgen/scheduledLoad.ts";
import type { LoadSummary, ValidityBounds } from "../common/loadgen/summary.ts";
import type { ProcessLedger } from "../foundation/processes.ts";

export const CRITICALITY_HEADER = "x-homeostat-criticality";
export const SHED_HEADER = "x-homeostat-shed";
export const INSTANCE_HEADER = "x-homeostat-instance";

/** 20 % critical, 50 % default, 30 % sheddable, spread out so every second has the same mix. */
export const MIX_PATTERN: readonly Criticality[] = [
  "critical",
  "default",
  "sheddable",
  "default",
  "sheddable",
  "default",
  "critical",
  "default",
  "sheddable",
  "default",
];

const CLASSES: readonly Criticality[] = ["critical", "default", "sheddable"];

/** How a request ended. */
export type Outcome = "ok" | "shed" | "http-5xx" | "http-other" | "timeout" | "connection-error";

/** One request. Times are ms from the load's t0 (epoch ms in `LoadResult.t0`). */
export interface LoadRecord {
  due: number;
  criticality: Criticality;
  /** When the request was written (for one never written: when it failed, as `done`). */
  sent: number;
  /** When it was written to a socket, after any wait for a connection; null: never written. */
  written: number | null;
  done: number;
  status: number;
  outcome: Outcome;
  /** `x-homeostat-shed` of a 503 the proxy gave itself. */
  shedReason: string | null;
  /** The instance that answered (`x-homeostat-instance`). */
  instance: string | null;
  error: string | null;
}

export interface LoadResult {
  /** Epoch ms of request 0's due time. */
  t0: number;
  ratePerSecond: number;
  records: LoadRecord[];
  /** Largest delay between a request's due time and its write (the generator's own lateness). */
  maxLatenessMs: number;
  /** Requests written per second (offered: `ratePerSecond`). */
  achievedRate: number;
  /** False: the generator fell behind its schedule; leave the trial out of summaries. */
  valid: boolean;
  invalidReason: string | null;
  /** The generator's whole summary (lateness and latency from the due time, failures). */
  summary: LoadSummary;
}

export { epochNow };

export class OpenLoad {
  readonly #load: ScheduledLoad;
  readonly #rate: number;
  #t0 = 0;
  #result: Promise<LoadResult> | null = null;

  constructor(options: {
    port: number;
    path: string;
    ratePerSecond: number;
    timeoutMs: number;
    /** Longest the load may run before `stop()` (the generator sizes its records to it); 15 min. */
    maxDurationMs?: number;
    /** When the generator counts as fallen behind (default: the generator's `DEFAULT_BOUNDS`). */
    bounds?: Partial<ValidityBounds>;
    /** Where the generator's pid is noted (default: the generator module's own, swept at exit). */
    ledger?: ProcessLedger;
  }) {
    this.#rate = options.ratePerSecond;
    this.#load = new ScheduledLoad({
      ...options,
      // Enough connections for every request that can be outstanding (rate × timeout, and then
      // some): the offered load must stay what it is set to even when answers are slow.
      connections: Math.ceil((options.ratePerSecond * Math.max(options.timeoutMs, 1000)) / 1000) * 2 + 64,
      headerClasses: CLASSES.map((c) => ({ [CRITICALITY_HEADER]: c })),
      pattern: MIX_PATTERN.map((c) => CLASSES.indexOf(c)),
      captureHeaders: [INSTANCE_HEADER, SHED_HEADER],
    });
  }

  /** Start sending; returns t0 (epoch ms of request 0's due time, a moment from now). */
  start(): number {
    this.#t0 = this.#load.start();
    return this.#t0;
  }

  /** Ms since t0 now. */
  elapsed(): number {
    return this.#load.elapsed();
  }

  /**
   * Stop sending, wait for the answers in flight (each ends by its timeout), and return
   * everything. Called again, it returns the same result.
   */
  async stop(): Promise<LoadResult> {
    if (!this.#load.started) throw new Error("the load was not started");
    this.#result ??= this.#load.stop().then((summary) => this.#toResult(summary));
    return this.#result;
  }

  #toResult(summary: LoadgenResult): LoadResult {
    const r = summary.records!;
    // t0 as the generator fixed it (the one `start()` asked for, to the µs).
    const shift = summary.t0EpochMs - this.#t0;
    const records: LoadRecord[] = [];
    let maxLatenessMs = 0;
    for (let k = 0; k < r.dueMs.length; k++) {
      const status = r.status[k]!;
      const shedReason = r.headers[SHED_HEADER]![k] ?? null;
      const written = r.written[k]! ? r.sentMs[k]! + shift : null;
      const due = r.dueMs[k]! + shift;
      if (written !== null) maxLatenessMs = Math.max(maxLatenessMs, written - due);
      const error = r.error[k] ?? null;
      records.push({
        due,
        criticality: CLASSES[r.headerClass[k]!]!,
        sent: r.sentMs[k]! + shift,
        written,
        done: r.doneMs[k]! + shift,
        status,
        outcome: outcomeOf(status, shedReason, error),
        shedReason,
        instance: r.headers[INSTANCE_HEADER]![k] ?? null,
        error,
      });
    }
    const { records: _records, ...rest } = summary;
    return {
      t0: this.#t0,
      ratePerSecond: this.#rate,
      records,
      maxLatenessMs: Math.max(maxLatenessMs, summary.lateness?.max ?? 0),
      achievedRate: summary.achievedRate,
      valid: summary.valid,
      invalidReason: summary.invalidReason,
      summary: rest,
    };
  }
}

/** How a request ended, from its status, the proxy's shed header and the generator's error. */
export function outcomeOf(status: number, shedReason: string | null, error: string | null): Outcome {
  if (status === 0) return error === "timeout" ? "timeout" : "connection-error";
  if (status === 200) return "ok";
  if (status === 503 && shedReason !== null) return "shed";
  return status >= 500 ? "http-5xx" : "http-other";
}
