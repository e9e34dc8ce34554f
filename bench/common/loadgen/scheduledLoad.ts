/**
 * The generator as a load that runs until told to stop, on a schedule fixed in epoch time: what
 * the zones and rollback benches put under a controller while things happen to it (a fault, a
 * deploy) and then read request by request. One built binary and one scratch directory per
 * process, removed (with any generator still running) when the process exits.
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ProcessLedger } from "../../foundation/processes.ts";
import {
  buildLoadgen,
  type LoadgenOptions,
  type LoadgenResult,
  type LoadgenRun,
  startLoadgen,
} from "./native.ts";

/** Epoch ms with sub-ms resolution, on the same clock as the generator's `t0EpochMs`. */
export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

/** How far ahead of `start()` request 0 is due: time for the generator process to start. */
const START_LEAD_MS = 100;
/** Longest a load may run before `stop()` when the caller does not say (records are sized to it). */
const DEFAULT_MAX_DURATION_MS = 15 * 60_000;

let scratch: { dir: string; binary: string } | null = null;
const ownLedger = new ProcessLedger();

function generator(): { dir: string; binary: string } {
  if (scratch === null) {
    const dir = mkdtempSync(join(tmpdir(), "homeostat-loadgen-"));
    process.once("exit", () => {
      ownLedger.sweep();
      rmSync(dir, { recursive: true, force: true });
    });
    scratch = { dir, binary: buildLoadgen(dir) };
  }
  return scratch;
}

/** What a scheduled load takes: the generator's options but for those it fixes itself. */
export type ScheduledLoadOptions = Omit<
  LoadgenOptions,
  "warmupMs" | "durationMs" | "startAtEpochMs" | "records"
> & {
  /** Longest the load may run before `stop()`; 15 min. */
  maxDurationMs?: number;
  /** Where the generator's pid is noted (default: this module's own, swept at exit). */
  ledger?: ProcessLedger;
};

/** Every request is measured (no generator warm-up) and kept as a record. */
export class ScheduledLoad {
  readonly #options: ScheduledLoadOptions;
  #t0 = 0;
  #run: LoadgenRun | null = null;
  #result: Promise<LoadgenResult> | null = null;

  constructor(options: ScheduledLoadOptions) {
    this.#options = options;
  }

  get started(): boolean {
    return this.#run !== null;
  }

  /** Start sending; returns t0 (epoch ms of request 0's due time, a moment from now). */
  start(): number {
    if (this.#run !== null) throw new Error("the load is already running");
    const { dir, binary } = generator();
    const { maxDurationMs, ledger, ...rest } = this.#options;
    this.#t0 = epochNow() + START_LEAD_MS;
    this.#run = startLoadgen(
      binary,
      {
        ...rest,
        warmupMs: 0,
        durationMs: maxDurationMs ?? DEFAULT_MAX_DURATION_MS,
        startAtEpochMs: this.#t0,
        records: true,
      },
      dir,
      ledger ?? ownLedger,
    );
    return this.#t0;
  }

  /** Ms since t0 now. */
  elapsed(): number {
    return epochNow() - this.#t0;
  }

  /**
   * Stop sending, wait for the requests out (each ends by its timeout), and return everything.
   * Called again, it returns the same result.
   * @throws when the load was never started, or the generator failed
   */
  async stop(): Promise<LoadgenResult> {
    if (this.#run === null) throw new Error("the load was not started");
    if (this.#result === null) {
      this.#run.stop();
      this.#result = this.#run.result;
    }
    return this.#result;
  }
}
