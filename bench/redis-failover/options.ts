/**
 * Redis failover bench knobs, from the environment (docs/benchmarks.md lists them).
 */

import { flag, listOf, positiveInt, positiveNumber } from "../common/envOptions.ts";
import type { Fault } from "./analysis.ts";

export const ALL_CONTENDERS = ["sentinel", "homeostat-endpoint", "homeostat-sentinel"] as const;
export type ContenderName = (typeof ALL_CONTENDERS)[number];
export const ALL_FAULTS: readonly Fault[] = ["kill", "stop"];

export interface RedisFailoverOptions {
  /** Trials per contender and fault. */
  trials: number;
  contenders: ContenderName[];
  faults: Fault[];
  /** The writer's period (ms). */
  intervalMs: number;
  /** Writes before the fault. */
  beforeFaultMs: number;
  /** kill -9: writes after the fault. */
  afterKillMs: number;
  /** SIGSTOP: how long the primary stays stopped. */
  stopMs: number;
  /** SIGSTOP: writes after SIGCONT (the old primary is back: is anything acknowledged by it?). */
  afterResumeMs: number;
  /** The client's delay before each reconnection attempt. */
  retryDelayMs: number;
  /**
   * Sentinel-mode clients with ioredis's `failoverDetector` (default). Off, a client stays on a
   * hung primary until its connection closes: a way to see the old primary acknowledge writes.
   */
  failoverDetector: boolean;
  /**
   * `min-replicas-to-write` for both contenders, when not Homeostat's default (null). 0 takes the
   * fence off the old primary: with the detector off, the bench's check of its own method.
   */
  minReplicasToWrite: number | null;
  /**
   * What Homeostat's Sentinel port gives out: the endpoint (its default) or the primary member's
   * own address (`BENCH_HOMEOSTAT_ANNOUNCE=primary`).
   */
  homeostatAnnounce: "endpoint" | "primary";
  /** Sentinel's `failover-timeout`. */
  sentinelFailoverTimeoutMs: number;
  /**
   * A trial whose writer's p99 lateness before the fault passes this is invalid: a write sent late
   * can only be acknowledged late, so this bounds the error lateness adds to "writable again"
   * (50 ms: 1/24 of the 1,200 ms target).
   */
  maxLatenessMs: number;
  /** Wait before each trial until the machine is at most this busy (% of all CPUs)… */
  quietPercent: number;
  /** …for at most this long. */
  quietTimeoutMs: number;
  /** How long the writer waits for writes in flight at its end. */
  settleMs: number;
  /**
   * The `nice` value given to every process of the bench, contenders alike (priority.ts), or null
   * (`BENCH_BOOST=0`): not changed.
   */
  nice: number | null;
}

function nonNegativeInt(text: string, name: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0)
    throw new Error(`${name} must be a whole number ≥ 0, got ${JSON.stringify(text)}`);
  return value;
}

export function readRedisFailoverOptions(env: NodeJS.ProcessEnv): RedisFailoverOptions {
  return {
    trials: positiveInt(env, "BENCH_TRIALS", 3),
    contenders: listOf(env, "BENCH_CONTENDERS", ALL_CONTENDERS),
    faults: listOf(env, "BENCH_FAULTS", ALL_FAULTS),
    intervalMs: positiveNumber(env, "BENCH_WRITE_INTERVAL_MS", 2, false),
    beforeFaultMs: positiveInt(env, "BENCH_BEFORE_FAULT_MS", 4_000),
    afterKillMs: positiveInt(env, "BENCH_AFTER_KILL_MS", 8_000),
    stopMs: positiveInt(env, "BENCH_STOP_MS", 10_000),
    afterResumeMs: positiveInt(env, "BENCH_AFTER_RESUME_MS", 8_000),
    retryDelayMs: positiveInt(env, "BENCH_CLIENT_RETRY_MS", 20),
    failoverDetector: flag(env, "BENCH_FAILOVER_DETECTOR", true),
    homeostatAnnounce: listOf(env, "BENCH_HOMEOSTAT_ANNOUNCE", ["endpoint", "primary"] as const)[0]!,
    minReplicasToWrite:
      env.BENCH_MIN_REPLICAS === undefined || env.BENCH_MIN_REPLICAS.trim() === ""
        ? null
        : nonNegativeInt(env.BENCH_MIN_REPLICAS, "BENCH_MIN_REPLICAS"),
    sentinelFailoverTimeoutMs: positiveInt(env, "BENCH_SENTINEL_FAILOVER_TIMEOUT_MS", 3_000),
    maxLatenessMs: positiveNumber(env, "BENCH_MAX_LATENESS_MS", 50, false),
    quietPercent: positiveNumber(env, "BENCH_QUIET_PERCENT", 60, false),
    quietTimeoutMs: positiveInt(env, "BENCH_QUIET_TIMEOUT_MS", 30_000),
    settleMs: 5_000,
    nice: flag(env, "BENCH_BOOST", true) ? -10 : null,
  };
}
