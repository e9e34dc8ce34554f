/**
 * Bench knobs, from the environment. The defaults follow issue 5: load at 60 % of the fleet's
 * capacity, a ~10 s warm-up, zone-a blackholed for ~30 s, ~20 s more after it comes back, three
 * trials of each scenario in each mode (about 20 minutes in all).
 */

import { boundedNumber, listOf, positiveInt } from "../common/envOptions.ts";

export type ScenarioName = "three-zones" | "two-zones";
export type Mode = "naive" | "homeostat";

export const SCENARIOS: readonly ScenarioName[] = ["three-zones", "two-zones"];
export const MODES: readonly Mode[] = ["naive", "homeostat"];

export interface ZonesBenchOptions {
  /** Trials of every scenario × mode, each on a fresh controller. */
  repeats: number;
  scenarios: ScenarioName[];
  modes: Mode[];
  /** Offered load as a share of the fleet's declared capacity (all instances, all zones). */
  loadFraction: number;
  /** Load before the zone goes down (not measured as the outage; it is the baseline). */
  warmupMs: number;
  /** How long zone-a stays blackholed. */
  outageMs: number;
  /** Load kept on after the fault is removed, to watch the return. */
  tailMs: number;
  /** A request without a complete answer after this long is a client timeout. */
  clientTimeoutMs: number;
  /** Most the machine may be busy (% of all CPUs) before a trial starts; it waits up to a minute. */
  quietPercent: number;
}

export function readOptions(env: NodeJS.ProcessEnv): ZonesBenchOptions {
  return {
    repeats: positiveInt(env, "BENCH_REPEATS", 3),
    scenarios: listOf(env, "BENCH_SCENARIOS", SCENARIOS),
    modes: listOf(env, "BENCH_MODES", MODES),
    loadFraction: boundedNumber(env, "BENCH_LOAD_FRACTION", 0.6, 1.5),
    warmupMs: positiveInt(env, "BENCH_WARMUP_SECONDS", 10) * 1000,
    outageMs: positiveInt(env, "BENCH_OUTAGE_SECONDS", 30) * 1000,
    tailMs: positiveInt(env, "BENCH_TAIL_SECONDS", 20) * 1000,
    clientTimeoutMs: 2000,
    quietPercent: positiveInt(env, "BENCH_QUIET_PERCENT", 30),
  };
}
