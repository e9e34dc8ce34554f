/**
 * Proxy bench knobs, from the environment. The defaults take about ten minutes.
 */

import { positiveNumber } from "../common/envOptions.ts";
import type { UpstreamKind } from "./contenders.ts";
import { cpuPlacement, type Placement } from "./cpus.ts";

export interface ProxyBenchOptions {
  /** Runs per contender and measurement, in alternating order; the median is reported. */
  repeats: number;
  /** Length of each measured run. */
  durationS: number;
  /** Unmeasured load just before each measured throughput run, same settings. */
  warmupS: number;
  /**
   * Unmeasured fixed-rate load before each latency run. Longer than `warmupS`: in its first
   * seconds at a new load pattern a Node contender stalls for tens of milliseconds at a time
   * (compilation, the heap growing), on one pinned CPU (see docs/benchmarks.md).
   */
  latencyWarmupS: number;
  /** wrk threads (1: the load tool gets one core of the two). */
  wrkThreads: number;
  /** wrk connections (closed loop). */
  connections: number;
  /** The fixed rate of the latency runs, as a fraction of Homeostat's median max throughput. */
  loadFraction: number;
  /** Rounds of the paired Homeostat / node-bare comparison (see paired.ts). */
  pairedRounds: number;
  /** Length of each paired run (after a 1 s warm-up). */
  pairedDurationS: number;
  /** Most connections the open-loop generator opens. */
  openLoopConnections: number;
  upstreams: UpstreamKind[];
  /** Which CPUs the contender and the rest run on (`BENCH_PIN=0`: not pinned). */
  placement: Placement;
}

export function readProxyOptions(env: NodeJS.ProcessEnv): ProxyBenchOptions {
  const upstreams = (env.BENCH_UPSTREAMS ?? "demo,static").split(",").map((s) => s.trim());
  for (const u of upstreams) {
    if (u !== "demo" && u !== "static") {
      throw new Error(`BENCH_UPSTREAMS: expected demo and/or static, got ${JSON.stringify(u)}`);
    }
  }
  const loadFraction = positiveNumber(env, "BENCH_LOAD_FRACTION", 0.5, false);
  if (loadFraction > 1) throw new Error("BENCH_LOAD_FRACTION must be at most 1");
  return {
    repeats: positiveNumber(env, "BENCH_REPEATS", 3),
    durationS: positiveNumber(env, "BENCH_DURATION_SECONDS", 10),
    warmupS: positiveNumber(env, "BENCH_WARMUP_SECONDS", 2),
    latencyWarmupS: positiveNumber(env, "BENCH_LATENCY_WARMUP_SECONDS", 5),
    wrkThreads: 1,
    connections: positiveNumber(env, "BENCH_CONNECTIONS", 50),
    loadFraction,
    pairedRounds: positiveNumber(env, "BENCH_PAIRED_ROUNDS", 6),
    pairedDurationS: positiveNumber(env, "BENCH_PAIRED_SECONDS", 3),
    openLoopConnections: 256,
    upstreams: upstreams as UpstreamKind[],
    placement: cpuPlacement(env),
  };
}
