/**
 * Data-plane bench knobs, from the environment. The defaults take about eight minutes.
 */

import { flag, listOf, positiveInt, positiveNumber } from "../common/envOptions.ts";

export const SCENARIOS = ["hung", "controller-kill", "dataplane-fault"] as const;
export type Scenario = (typeof SCENARIOS)[number];

export const HUNG_CONTENDERS = ["homeostat", "nginx", "haproxy"] as const;
export type HungContender = (typeof HUNG_CONTENDERS)[number];

export const DATA_PLANE_MODES = ["process", "in-process"] as const;

/** Faults of the data-plane process itself: a planned restart (handover), or `kill -9`. */
export const DATA_PLANE_FAULTS = ["planned-restart", "sigkill"] as const;
export type DataPlaneFault = (typeof DATA_PLANE_FAULTS)[number];
export type DataPlaneMode = (typeof DATA_PLANE_MODES)[number];

export interface DataPlaneOptions {
  scenarios: Scenario[];
  /** Trials per contender (hung) and per mode (controller kill). */
  trials: number;
  /** Open-loop rate, req/s. */
  rate: number;
  /** The generator's fixed connection count. */
  connections: number;
  /** A request with no complete answer this long after its due time fails as a client timeout. */
  clientTimeoutMs: number;
  /** What every request asks (an idempotent GET to the demo app). */
  path: string;
  /** Load before the measured stretch, not counted (cold connections, JIT). */
  warmupMs: number;
  /** Steady measured load before the fault. */
  beforeFaultMs: number;
  /** Hung: how long the instance stays SIGSTOPped. */
  hangMs: number;
  /** Hung: measured load after the SIGCONT. */
  afterHangMs: number;
  /** Controller kill: measured load after the SIGKILL. */
  afterKillMs: number;
  hungContenders: HungContender[];
  modes: DataPlaneMode[];
  /** nginx `proxy_read_timeout` / `proxy_send_timeout` and HAProxy `timeout server`. */
  proxyTimeoutMs: number;
  /** Run the controller-kill scenario even when `homeostat up --help` shows no `--data-plane`. */
  forceDataPlaneFlag: boolean;
}

export function readDataPlaneOptions(env: NodeJS.ProcessEnv): DataPlaneOptions {
  return {
    scenarios: listOf(env, "BENCH_SCENARIOS", SCENARIOS),
    trials: positiveInt(env, "BENCH_TRIALS", 3),
    rate: positiveNumber(env, "BENCH_RATE", 1_000),
    connections: positiveInt(env, "BENCH_CONNECTIONS", 50),
    clientTimeoutMs: positiveInt(env, "BENCH_CLIENT_TIMEOUT_MS", 5_000),
    path: env.BENCH_PATH?.trim() || "/work?ms=5",
    warmupMs: positiveNumber(env, "BENCH_WARMUP_SECONDS", 2, false) * 1000,
    beforeFaultMs: positiveNumber(env, "BENCH_BEFORE_FAULT_SECONDS", 3, false) * 1000,
    hangMs: positiveNumber(env, "BENCH_HANG_SECONDS", 8, false) * 1000,
    afterHangMs: positiveNumber(env, "BENCH_AFTER_HANG_SECONDS", 5, false) * 1000,
    afterKillMs: positiveNumber(env, "BENCH_AFTER_KILL_SECONDS", 12, false) * 1000,
    hungContenders: listOf(env, "BENCH_CONTENDERS", HUNG_CONTENDERS),
    modes: listOf(env, "BENCH_MODES", DATA_PLANE_MODES),
    proxyTimeoutMs: positiveInt(env, "BENCH_PROXY_TIMEOUT_MS", 250),
    forceDataPlaneFlag: flag(env, "BENCH_FORCE_DATA_PLANE_FLAG", false),
  };
}
