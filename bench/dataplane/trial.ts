/**
 * One trial of either scenario: steady open-loop load through a front port, a fault at a fixed
 * point of the schedule (a SIGSTOP of one instance for a while, or a SIGKILL of the controller),
 * the load carrying on to its end, and the records read back.
 */

import type { LoadgenRaw, LoadSummary } from "../common/loadgen/summary.ts";
import { stretchOf, summarizeLoad } from "../common/loadgen/summary.ts";
import type { ProcessLedger } from "../foundation/processes.ts";
import { type QuietReading, waitQuiet } from "../proxy/quiet.ts";
import { analyzeRun, type RunFigures, type Window } from "./analysis.ts";
import { startRecordedLoad } from "./load.ts";
import type { DataPlaneOptions } from "./options.ts";
import { epochNow } from "./upstreams.ts";

/** Most the machine may be busy (% of all CPUs, bench idle) before a trial starts. */
export const QUIET_PERCENT = 20;

export interface LoadedTrial {
  /** How busy the machine was just before the trial, with the bench idle. */
  before: QuietReading;
  /** Epoch ms of request 0's due time (the measured stretch starts a warm-up later). */
  t0EpochMs: number;
  /** The fault, ms from t0. */
  fault: Window;
  /** What the fault returned (its own times and facts). */
  figures: RunFigures;
  warmup: LoadSummary["warmup"];
  generator: GeneratorCheck;
}

/**
 * Did the generator keep its schedule? Judged on the measured requests due before the fault:
 * during a fault a contender that holds the generator's fixed connections makes later requests
 * wait for one, by design (that wait is charged to the contender, from the due time), so the
 * generator's own lag is read where the target is healthy. The whole run's lateness is there too.
 */
export interface GeneratorCheck {
  valid: boolean;
  invalidReason: string | null;
  offeredRate: number;
  /** Requests written per second before the fault. */
  achievedRate: number;
  /** Written − due (waiting for a connection included), before the fault, ms. */
  latenessP99Ms: number | null;
  latenessMaxMs: number | null;
  /** The same over the whole measured run (the fault's waits included). */
  wholeRunLatenessP99Ms: number | null;
}

/** The generator's check on `raw` (see `GeneratorCheck`); `faultFromMs` ms from t0. */
export function generatorCheck(raw: LoadgenRaw, whole: LoadSummary, faultFromMs: number): GeneratorCheck {
  const before = summarizeLoad(raw, whole.bounds, stretchOf(raw, raw.warmup * raw.intervalMs, faultFromMs));
  return {
    valid: before.valid,
    invalidReason: before.invalidReason,
    offeredRate: before.offeredRate,
    achievedRate: before.achievedRate,
    latenessP99Ms: before.lateness?.p99 ?? null,
    latenessMaxMs: before.lateness?.max ?? null,
    wholeRunLatenessP99Ms: whole.lateness?.p99 ?? null,
  };
}

/**
 * Put the load on `port`, run `fault` at warm-up + `beforeFaultMs` into the schedule, wait for the
 * load to end. `fault` resolves with its start and end (epoch ms); the figures' window is that.
 */
export async function loadWithFault(options: {
  port: number;
  bench: DataPlaneOptions;
  /** Measured load after the fault started. */
  afterFaultStartMs: number;
  binary: string;
  scratch: string;
  ledger: ProcessLedger;
  fault: () => Promise<{ fromEpochMs: number; toEpochMs: number }>;
}): Promise<LoadedTrial> {
  const { bench } = options;
  const before = await waitQuiet(QUIET_PERCENT);
  const run = startRecordedLoad(
    options.binary,
    {
      port: options.port,
      path: bench.path,
      rate: bench.rate,
      warmupMs: bench.warmupMs,
      durationMs: bench.beforeFaultMs + options.afterFaultStartMs,
      connections: bench.connections,
      timeoutMs: bench.clientTimeoutMs,
    },
    options.scratch,
    options.ledger,
  );
  const t0 = await run.started;
  // A point in the schedule, not a synchronisation: the load runs on its own meanwhile.
  await new Promise((resolve) =>
    setTimeout(resolve, Math.max(0, t0 + bench.warmupMs + bench.beforeFaultMs - epochNow())),
  );
  let fault: { fromEpochMs: number; toEpochMs: number };
  try {
    fault = await options.fault();
  } finally {
    // Whatever the fault did, the generator ends on its own schedule: wait for it, so that no
    // trial's load overlaps the next one.
    await run.result.catch(() => undefined);
  }
  const result = await run.result;
  const window = { fromMs: fault.fromEpochMs - t0, toMs: fault.toEpochMs - t0 };
  return {
    before,
    t0EpochMs: t0,
    fault: window,
    figures: analyzeRun(result.records!, window),
    warmup: result.warmup,
    generator: generatorCheck(await run.raw, result, window.fromMs),
  };
}
