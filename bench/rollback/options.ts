/**
 * Bench knobs, from the environment. The defaults keep a full run around four minutes.
 */

import { flag, positiveInt } from "../common/envOptions.ts";

export interface RollbackBenchOptions {
  /** Failing-canary trials (`deploy checkout v2-errors`), each on a fresh controller. */
  trials: number;
  /** Steady open-loop load on the service's front port, requests per second. */
  ratePerSecond: number;
  /** Load before the deploy, so the stable release has a baseline in the data plane's stats. */
  warmupMs: number;
  /** Load kept on after the new release's instances are gone, to show nothing reaches them. */
  tailMs: number;
  /** Whether to run the migration scenario (`deploy checkout v3-migrates`, then `plan rollback`). */
  migrationScenario: boolean;
  /**
   * Fresh tries of the migration scenario when one does not prove v3-migrates (a step failed on
   * noise and the refused rollback held the deploy); every attempt is recorded.
   */
  migrationAttempts: number;
}

export function readOptions(env: NodeJS.ProcessEnv): RollbackBenchOptions {
  return {
    trials: positiveInt(env, "BENCH_TRIALS", 5),
    ratePerSecond: positiveInt(env, "BENCH_RATE", 100),
    warmupMs: positiveInt(env, "BENCH_WARMUP_SECONDS", 5) * 1000,
    tailMs: 3000,
    migrationScenario: flag(env, "BENCH_MIGRATION", true),
    migrationAttempts: positiveInt(env, "BENCH_MIGRATION_ATTEMPTS", 2),
  };
}
