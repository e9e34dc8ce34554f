/**
 * One failover trial: steady open-loop load through a front port, SIGKILL of one instance partway,
 * then the load carries on long enough for the slowest contender to stop routing to it.
 */

import { buildLoadgen, startLoadgen } from "../common/loadgen/native.ts";
import type { LoadSummary } from "../common/loadgen/summary.ts";
import type { ProcessLedger } from "../foundation/processes.ts";
import { type QuietReading, waitQuiet } from "../proxy/quiet.ts";
import {
  analyzeTrial,
  HAPROXY_RETRIES,
  HOMEOSTAT_ATTEMPTS,
  HOMEOSTAT_HEDGED,
  HOMEOSTAT_SHED,
  INSTANCE_HEADER,
  type TrialFigures,
} from "./analysis.ts";
import { epochNow } from "./haproxyFleet.ts";
import type { FailoverOptions } from "./options.ts";

/** Below the open-file limit (20000 here) with room for the rest. */
export const GENERATOR_CONNECTIONS = 8_000;

/** Most the machine may be busy (% of all CPUs, bench idle) before a trial starts. */
export const QUIET_PERCENT = 20;

/** `homeostat-haproxy`: the same controller, the service's traffic on the `haproxy` engine. */
export type HomeostatScenario = "homeostat" | "homeostat-static-limit" | "homeostat-haproxy";
export type ScenarioName = HomeostatScenario | "haproxy-default" | "haproxy-tuned" | "haproxy-redispatch";

export function isHomeostat(scenario: ScenarioName): scenario is HomeostatScenario {
  return (
    scenario === "homeostat" || scenario === "homeostat-static-limit" || scenario === "homeostat-haproxy"
  );
}

/**
 * The answer header that says a request was retried: Homeostat's embedded proxy sets
 * `x-homeostat-attempts`; the HAProxy scenarios of this bench set `x-haproxy-retries`; the managed
 * HAProxy of the `haproxy` engine sets neither (its retries are in its log line, which the data
 * plane reads), so its "retried" count is not seen here and reported as such.
 */
export function retriedHeaderOf(scenario: ScenarioName): string {
  return isHomeostat(scenario) && scenario !== "homeostat-haproxy" ? HOMEOSTAT_ATTEMPTS : HAPROXY_RETRIES;
}

export interface TrialBase {
  scenario: ScenarioName;
  /** 0-based. */
  repeat: number;
  victim: string;
  ratePerSecond: number;
  /** Epoch ms of the SIGKILL. */
  killedAt: number;
  figures: TrialFigures;
  /** Homeostat: the controller's incident (detection, replacement ready), ms from the kill. */
  controller: {
    detectedMs: number | null;
    replacementReadyMs: number | null;
    incidentKind: string | null;
  } | null;
  /** How busy the machine was just before the trial, with the bench idle. */
  before: QuietReading | null;
  /** The unmeasured warm-up before the trial: requests and how they ended. */
  warmup: LoadSummary["warmup"] | null;
  /**
   * The generator's own account of the measured stretch: offered vs achieved rate, lateness
   * (written − due, waiting for a connection included), and whether it kept its schedule.
   */
  generator?: GeneratorSummary | null;
  /** HAProxy: when it reported the victim DOWN, ms from the kill. */
  markedDownMs: number | null;
  ok: boolean;
  error?: string;
}

/** What a trial keeps of the generator's summary. */
export type GeneratorSummary = Pick<
  LoadSummary,
  | "offeredRate"
  | "achievedRate"
  | "achievedFraction"
  | "written"
  | "lateness"
  | "valid"
  | "invalidReason"
  | "bounds"
>;

export async function loadAndKill(options: {
  scenario: ScenarioName;
  port: number;
  victim: string;
  ratePerSecond: number;
  bench: FailoverOptions;
  scratch: string;
  ledger: ProcessLedger;
  /** Send SIGKILL; returns its epoch ms. */
  kill: () => number;
}): Promise<{
  killedAt: number;
  figures: TrialFigures;
  warmup: LoadSummary["warmup"];
  before: QuietReading;
  generator: GeneratorSummary;
}> {
  const { bench } = options;
  // The bench's own idle fleets (two controllers probing, three HAProxies checking) take a few %.
  const before = await waitQuiet(QUIET_PERCENT);
  const run = startLoadgen(
    buildLoadgen(options.scratch),
    {
      port: options.port,
      path: bench.path,
      ratePerSecond: options.ratePerSecond,
      warmupMs: bench.warmupMs,
      durationMs: bench.beforeKillMs + bench.afterKillMs,
      // Enough that requests HAProxy holds for seconds (retries to a dead server) never exhaust
      // the generator's connections: the offered load must stay what it is set to.
      connections: GENERATOR_CONNECTIONS,
      timeoutMs: 15_000,
      records: true,
      captureHeaders: [
        INSTANCE_HEADER,
        HOMEOSTAT_ATTEMPTS,
        HOMEOSTAT_HEDGED,
        HAPROXY_RETRIES,
        HOMEOSTAT_SHED,
      ],
    },
    options.scratch,
    options.ledger,
  );
  const t0 = await run.started;
  // A point in the schedule, not a synchronisation: the load runs on its own meanwhile.
  await new Promise((resolve) =>
    setTimeout(resolve, Math.max(0, t0 + bench.warmupMs + bench.beforeKillMs - epochNow())),
  );
  const killedAt = options.kill();
  const result = await run.result;
  const header = retriedHeaderOf(options.scenario);
  const figures = analyzeTrial(result.records!, killedAt - result.t0EpochMs, options.victim, header);
  const { offeredRate, achievedRate, achievedFraction, written, lateness, valid, invalidReason, bounds } =
    result;
  const generator = {
    offeredRate,
    achievedRate,
    achievedFraction,
    written,
    lateness,
    valid,
    invalidReason,
    bounds,
  };
  return { killedAt, figures, warmup: result.warmup, before, generator };
}
