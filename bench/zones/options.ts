/**
 * Bench knobs, from the environment. The defaults follow issue 11: each scenario at 60 % and at
 * 70 % of the fleet's capacity, HAProxy (active and passive health checks, queueing with priority
 * classes) against Homeostat on the same instances, zone-a cut off by a real network partition
 * (nftables) for 30 s after a 10 s warm-up and watched for 20 s after it heals; plus the fault-hook
 * simulation (Homeostat only, at 60 %). Three paired rounds: about 35 minutes in all.
 */

import { boundedNumber, listOf, positiveInt } from "../common/envOptions.ts";

export type ScenarioName = "three-zones" | "two-zones";
/**
 * `haproxy`: HAProxy with checks over instances the bench starts; `homeostat`: the controller with
 * automatic failover; `naive`: the same controller with `failover.automatic: false` (optional).
 */
export type Mode = "haproxy" | "homeostat" | "naive";
/**
 * `partition`: a real network partition of zone-a's instance ports (nftables; everyone who touches
 * the network sees it). `hook`: Homeostat's own fault API blackholes the zone inside its proxy (a
 * simulation: nothing but Homeostat's proxy and zone probe see it; Homeostat modes only).
 */
export type FaultName = "partition" | "hook";
export type PartitionKind = "blackhole" | "reject";

export const SCENARIOS: readonly ScenarioName[] = ["three-zones", "two-zones"];
export const MODES: readonly Mode[] = ["haproxy", "homeostat", "naive"];
export const DEFAULT_MODES: readonly Mode[] = ["haproxy", "homeostat"];
export const FAULTS: readonly FaultName[] = ["partition", "hook"];
const PARTITION_KINDS: readonly PartitionKind[] = ["blackhole", "reject"];

export interface ZonesBenchOptions {
  /** Paired rounds: in each, every contender runs once per scenario × load × fault. */
  repeats: number;
  scenarios: ScenarioName[];
  modes: Mode[];
  faults: FaultName[];
  /** Offered loads of the partition trials, as shares of the fleet's declared capacity. */
  loadFractions: number[];
  /** Offered loads of the fault-hook trials (Homeostat modes only). */
  hookLoadFractions: number[];
  /** What the partition does to a packet: dropped (blackhole, the default) or reset. */
  partitionKind: PartitionKind;
  /** Load before the zone goes down (not measured as the outage; it is the baseline). */
  warmupMs: number;
  /** How long zone-a stays cut off. */
  outageMs: number;
  /** Load kept on after the fault is removed, to watch the return. */
  tailMs: number;
  /** A request without a complete answer after this long (from its due time) is a client timeout. */
  clientTimeoutMs: number;
  /** Most the machine may be busy (% of all CPUs) before a trial starts; it waits up to a minute. */
  quietPercent: number;
}

function fractions(env: NodeJS.ProcessEnv, name: string, fallback: number[]): number[] {
  const text = env[name];
  if (text === undefined || text.trim() === "") return fallback;
  return text.split(",").map((part, k) => boundedNumber({ [name]: part }, name, fallback[k] ?? 0.6, 1.5));
}

export function readOptions(env: NodeJS.ProcessEnv): ZonesBenchOptions {
  const kind = env.BENCH_PARTITION?.trim() ? listOf(env, "BENCH_PARTITION", PARTITION_KINDS) : ["blackhole"];
  if (kind.length !== 1) throw new Error("BENCH_PARTITION takes one of: blackhole, reject");
  return {
    repeats: positiveInt(env, "BENCH_REPEATS", 3),
    scenarios: listOf(env, "BENCH_SCENARIOS", SCENARIOS),
    modes: env.BENCH_MODES?.trim() ? listOf(env, "BENCH_MODES", MODES) : [...DEFAULT_MODES],
    faults: listOf(env, "BENCH_FAULTS", FAULTS),
    // BENCH_LOAD_FRACTION (one value) is the older spelling.
    loadFractions: fractions(
      env,
      env.BENCH_LOAD_FRACTIONS?.trim() ? "BENCH_LOAD_FRACTIONS" : "BENCH_LOAD_FRACTION",
      [0.6, 0.7],
    ),
    hookLoadFractions: fractions(env, "BENCH_HOOK_LOAD_FRACTIONS", [0.6]),
    partitionKind: kind[0] as PartitionKind,
    warmupMs: positiveInt(env, "BENCH_WARMUP_SECONDS", 10) * 1000,
    outageMs: positiveInt(env, "BENCH_OUTAGE_SECONDS", 30) * 1000,
    tailMs: positiveInt(env, "BENCH_TAIL_SECONDS", 20) * 1000,
    clientTimeoutMs: 2000,
    quietPercent: positiveInt(env, "BENCH_QUIET_PERCENT", 30),
  };
}
