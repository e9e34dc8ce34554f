/**
 * One trial of either scenario: steady open-loop load through a front port, a fault at a fixed
 * point of the schedule (a SIGSTOP of one instance for a while, or a SIGKILL of the controller),
 * the load carrying on to its end, and the records read back.
 */

import type { ProcessLedger } from "../foundation/processes.ts";
import type { OpenLoopResult } from "../proxy/openLoop.ts";
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
  warmup: OpenLoopResult["warmup"];
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
  };
}
