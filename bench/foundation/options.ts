/**
 * Bench knobs, from the environment. The defaults keep a full run under about five minutes.
 */

import { positiveInt } from "../common/envOptions.ts";

export interface BenchOptions {
  /** Trials per scenario (SIGKILL, SIGSTOP), for Homeostat and for the naive supervisor. */
  trials: number;
  /** Length of the idle window over which the controller's CPU and RSS are sampled. */
  idleWindowMs: number;
  /** How long a SIGSTOPped naive instance is given to be noticed before the trial says "never". */
  hangCapMs: number;
  /** The naive supervisor's delay between an exit and the restart (systemd RestartSec). */
  naiveRestartDelayMs: number;
  /** Instances the naive supervisor runs. */
  naiveReplicas: number;
}

export function readOptions(env: NodeJS.ProcessEnv): BenchOptions {
  return {
    trials: positiveInt(env, "BENCH_TRIALS", 20),
    idleWindowMs: positiveInt(env, "BENCH_IDLE_SECONDS", 30) * 1000,
    hangCapMs: positiveInt(env, "BENCH_HANG_CAP_MS", 15_000),
    naiveRestartDelayMs: 100,
    naiveReplicas: 3,
  };
}
