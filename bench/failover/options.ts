/**
 * Failover bench knobs, from the environment. The defaults take about five minutes.
 */

import { flag, listOf, positiveNumber } from "../common/envOptions.ts";
import { type HungSettings, readHungSettings } from "./hung.ts";

/** Every scenario the bench knows, in its default order. */
export const ALL_SCENARIOS = [
  "homeostat",
  "homeostat-static-limit",
  "homeostat-haproxy",
  "haproxy-default",
  "haproxy-tuned",
  "haproxy-redispatch",
  "haproxy-passive",
] as const;
export type AnyScenario = (typeof ALL_SCENARIOS)[number];

export interface FailoverOptions {
  /** Trials per scenario (each kills one of the three instances, in turn). */
  repeats: number;
  /**
   * Load before the measured stretch, not counted in the trial: the generator starts at full
   * rate on cold connections, which is a burst no real client fleet makes.
   */
  warmupMs: number;
  /** Steady load before the kill. */
  beforeKillMs: number;
  /** Load after the kill: long enough for HAProxy's default checks (about 6 s) and its retries. */
  afterKillMs: number;
  /** Fixed rate as a fraction of the capacity measured through Homeostat (unless `rate` is set). */
  loadFraction: number;
  /** A fixed rate instead of the calibrated one (req/s). */
  rate: number | null;
  /** What each request asks of the demo app. */
  path: string;
  /** The capacity calibration: wrk settings and length. */
  calibration: { threads: number; connections: number; durationS: number; warmupS: number };
  /** Include HAProxy with tuned checks + `retries 3` + `option redispatch` (probe-only detection). */
  redispatch: boolean;
  /**
   * Include HAProxy with tuned checks + passive checks (`observe layer7 error-limit N on-error
   * mark-down`) + redispatch: its best configuration for a killed server.
   */
  passive: boolean;
  /** The passive checks' `error-limit`: consecutive errors on live traffic that mark a server DOWN. */
  passiveErrorLimit: number;
  /** A trial whose generator sent a request later than this after its due time fails its checks. */
  maxGeneratorLatenessMs: number;
  /**
   * The kill trials' scenarios (`BENCH_SCENARIOS`, all by default; `BENCH_REDISPATCH=0` and
   * `BENCH_PASSIVE=0` still leave those two out). Absent in results before issue 14: all.
   */
  scenarios?: AnyScenario[];
  /**
   * Issue 14's hung-instance trials (hung.ts: Homeostat + HAProxy and HAProxy tuned, one instance
   * SIGSTOPped), when both run (`BENCH_HUNG=0`: not run); null: not run.
   */
  hung?: HungSettings | null;
}

export function readFailoverOptions(env: NodeJS.ProcessEnv): FailoverOptions {
  const rate =
    env.BENCH_RATE === undefined || env.BENCH_RATE === "" ? null : positiveNumber(env, "BENCH_RATE", 1);
  return {
    repeats: positiveNumber(env, "BENCH_REPEATS", 3),
    warmupMs: 2_000,
    beforeKillMs: 3_000,
    afterKillMs: positiveNumber(env, "BENCH_AFTER_KILL_SECONDS", 12) * 1000,
    loadFraction: positiveNumber(env, "BENCH_LOAD_FRACTION", 0.5, false),
    rate,
    path: "/work?ms=5",
    calibration: { threads: 1, connections: 50, durationS: 5, warmupS: 2 },
    redispatch: env.BENCH_REDISPATCH !== "0",
    passive: env.BENCH_PASSIVE !== "0",
    passiveErrorLimit: positiveNumber(env, "BENCH_ERROR_LIMIT", 1),
    maxGeneratorLatenessMs: positiveNumber(env, "BENCH_MAX_LATENESS_MS", 100),
    scenarios: listOf(env, "BENCH_SCENARIOS", ALL_SCENARIOS),
    hung: flag(env, "BENCH_HUNG", true) ? readHungSettings(env) : null,
  };
}
