/**
 * One failover trial: steady open-loop load through a front port, SIGKILL of one instance partway,
 * then the load carries on long enough for the slowest contender to stop routing to it.
 */

import type { ProcessLedger } from "../foundation/processes.ts";
import { startLoadgen } from "../proxy/loadgenProcess.ts";
import type { OpenLoopResult } from "../proxy/openLoop.ts";
import {
  analyzeTrial,
  HAPROXY_RETRIES,
  HOMEOSTAT_ATTEMPTS,
  HOMEOSTAT_SHED,
  INSTANCE_HEADER,
  type TrialFigures,
} from "./analysis.ts";
import { epochNow } from "./haproxyFleet.ts";
import type { FailoverOptions } from "./options.ts";

export type ScenarioName = "homeostat" | "haproxy-default" | "haproxy-tuned" | "haproxy-redispatch";

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
  /** The unmeasured warm-up before the trial: requests and how they ended. */
  warmup: OpenLoopResult["warmup"] | null;
  /** HAProxy: when it reported the victim DOWN, ms from the kill. */
  markedDownMs: number | null;
  ok: boolean;
  error?: string;
}

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
}): Promise<{ killedAt: number; figures: TrialFigures; warmup: OpenLoopResult["warmup"] }> {
  const { bench } = options;
  const run = startLoadgen(
    {
      origin: `http://127.0.0.1:${options.port}`,
      path: bench.path,
      ratePerSecond: options.ratePerSecond,
      warmupMs: bench.warmupMs,
      durationMs: bench.beforeKillMs + bench.afterKillMs,
      connections: 512,
      timeoutMs: 15_000,
      records: true,
      keepHeaders: [INSTANCE_HEADER, HOMEOSTAT_ATTEMPTS, HAPROXY_RETRIES, HOMEOSTAT_SHED],
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
  const header = options.scenario === "homeostat" ? HOMEOSTAT_ATTEMPTS : HAPROXY_RETRIES;
  const figures = analyzeTrial(result.records!, killedAt - result.t0EpochMs, options.victim, header);
  return { killedAt, figures, warmup: result.warmup };
}
