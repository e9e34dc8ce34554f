/**
 * Open-loop load with a criticality mix, on the benches' one generator
 * (`bench/common/loadgen/openloop.c`): request i is due at t0 + i / rate whatever happened to the
 * earlier ones (a saturated fleet cannot slow the load down and hide its own overload), and
 * carries `x-homeostat-criticality` from a fixed, interleaved pattern of ten: 2 critical,
 * 5 default, 3 sheddable. Every answer is kept with how it ended, when it was due, and when it was
 * actually written (after any wait for one of the generator's connections): the generator's own
 * lateness, its achieved rate and whether it kept its schedule (`valid`) come with the result.
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Criticality } from "../../src/traffic/contracts.ts";
import { buildLoadgen, type LoadgenResult, type LoadgenRun, startLoadgen } from "../common/loadgen/native.ts";
import type { LoadSummary, ValidityBounds } from "../common/loadgen/summary.ts";
import { ProcessLedger } from "../foundation/processes.ts";

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

export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

/** How far ahead of `start()` request 0 is due: time for the generator process to start. */
const START_LEAD_MS = 100;

let scratch: { dir: string; binary: string } | null = null;
const ownLedger = new ProcessLedger();

/** One scratch directory (with the built generator) per process, removed when it exits. */
function generator(): { dir: string; binary: string } {
  if (scratch === null) {
    const dir = mkdtempSync(join(tmpdir(), "homeostat-zones-loadgen-"));
    process.once("exit", () => {
      ownLedger.sweep();
      rmSync(dir, { recursive: true, force: true });
    });
    scratch = { dir, binary: buildLoadgen(dir) };
  }
  return scratch;
}

export class OpenLoad {
  readonly #port: number;
  readonly #path: string;
  readonly #rate: number;
  readonly #timeoutMs: number;
  readonly #maxDurationMs: number;
  readonly #bounds: Partial<ValidityBounds> | undefined;
  readonly #ledger: ProcessLedger;
  #t0 = 0;
  #run: LoadgenRun | null = null;
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
    /** Where the generator's pid is noted (default: this module's own, swept at exit). */
    ledger?: ProcessLedger;
  }) {
    this.#port = options.port;
    this.#path = options.path;
    this.#rate = options.ratePerSecond;
    this.#timeoutMs = options.timeoutMs;
    this.#maxDurationMs = options.maxDurationMs ?? 15 * 60_000;
    this.#bounds = options.bounds;
    this.#ledger = options.ledger ?? ownLedger;
  }

  /** Start sending; returns t0 (epoch ms of request 0's due time, a moment from now). */
  start(): number {
    if (this.#run !== null) throw new Error("the load is already running");
    const { dir, binary } = generator();
    this.#t0 = epochNow() + START_LEAD_MS;
    this.#run = startLoadgen(
      binary,
      {
        port: this.#port,
        path: this.#path,
        ratePerSecond: this.#rate,
        warmupMs: 0,
        durationMs: this.#maxDurationMs,
        // Enough connections for every request that can be outstanding (rate × timeout, and then
        // some): the offered load must stay what it is set to even when answers are slow.
        connections: Math.ceil((this.#rate * Math.max(this.#timeoutMs, 1000)) / 1000) * 2 + 64,
        timeoutMs: this.#timeoutMs,
        headerClasses: CLASSES.map((c) => ({ [CRITICALITY_HEADER]: c })),
        pattern: MIX_PATTERN.map((c) => CLASSES.indexOf(c)),
        captureHeaders: [INSTANCE_HEADER, SHED_HEADER],
        startAtEpochMs: this.#t0,
        records: true,
        bounds: this.#bounds,
      },
      dir,
      this.#ledger,
    );
    return this.#t0;
  }

  /** Ms since t0 now. */
  elapsed(): number {
    return epochNow() - this.#t0;
  }

  /**
   * Stop sending, wait for the answers in flight (each ends by its timeout), and return
   * everything. Called again, it returns the same result.
   */
  async stop(): Promise<LoadResult> {
    if (this.#run === null) throw new Error("the load was not started");
    if (this.#result === null) {
      const run = this.#run;
      run.stop();
      this.#result = run.result.then((summary) => this.#toResult(summary));
    }
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
