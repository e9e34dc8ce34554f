/**
 * Proxy bench knobs, from the environment.
 */

import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { listOf, positiveNumber } from "../common/envOptions.ts";
import { CONTENDERS, type ContenderName, OLD_CODE, type UpstreamKind } from "./contenders.ts";
import { cpuPlacement, type Placement } from "./cpus.ts";
import type { PairSpec } from "./paired.ts";

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
  /** Rounds of the paired comparisons (see paired.ts): one pair per peer in each round. */
  pairedRounds: number;
  /** Who Homeostat is paired with: every "× peer" ratio of the report comes from these pairs. */
  pairedPeers: ContenderName[];
  /**
   * The contenders run (`BENCH_CONTENDERS`, all by default; `homeostat-old` comes with
   * `BENCH_OLD_ROOT`). Results written before issue 14 have none: all five of then.
   */
  contenders?: ContenderName[];
  /**
   * Every paired ratio measured, `subject ÷ peer`: Homeostat ÷ each of `pairedPeers`, Homeostat +
   * HAProxy ÷ plain HAProxy (with and without the log line), and HAProxy with its log line ÷
   * without (the log line's own cost), each when both contenders run.
   */
  pairs?: PairSpec[];
  /** Another checkout whose request path runs as the `homeostat-old` contender (null: none). */
  oldRoot: string | null;
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
  const oldRoot = env.BENCH_OLD_ROOT?.trim() ? resolve(env.BENCH_OLD_ROOT.trim()) : null;
  if (oldRoot !== null && !existsSync(join(oldRoot, "src", "traffic", "proxy", "serviceProxy.ts"))) {
    throw new Error(
      `BENCH_OLD_ROOT: ${oldRoot} is not a Homeostat checkout (no src/traffic/proxy/serviceProxy.ts)`,
    );
  }
  const contenders: ContenderName[] = listOf(env, "BENCH_CONTENDERS", CONTENDERS);
  if (oldRoot !== null) contenders.push(OLD_CODE);
  const running = (c: ContenderName) => contenders.includes(c);
  if (!running("homeostat") && !running("homeostat-haproxy")) {
    throw new Error(
      "BENCH_CONTENDERS: needs homeostat or homeostat-haproxy (the latency runs' rate is half its max)",
    );
  }
  const known = [...CONTENDERS, OLD_CODE].filter((c): c is ContenderName => c !== "homeostat");
  const defaultPeers = (["node-bare", "nginx", "haproxy", OLD_CODE] as ContenderName[]).filter(running);
  const pairedPeers = env.BENCH_PAIRED_PEERS?.trim()
    ? env.BENCH_PAIRED_PEERS.split(",").map((s) => s.trim() as ContenderName)
    : defaultPeers;
  for (const peer of pairedPeers) {
    if (!known.includes(peer)) {
      throw new Error(`BENCH_PAIRED_PEERS: unknown ${JSON.stringify(peer)} (known: ${known.join(", ")})`);
    }
    if (peer === OLD_CODE && oldRoot === null)
      throw new Error(`BENCH_PAIRED_PEERS: ${OLD_CODE} needs BENCH_OLD_ROOT`);
    if (!running(peer)) throw new Error(`BENCH_PAIRED_PEERS: ${peer} is not in BENCH_CONTENDERS`);
  }
  const pairs: PairSpec[] = [
    ...(running("homeostat") ? pairedPeers.map((peer) => ({ subject: "homeostat" as const, peer })) : []),
    ...(["haproxy", "haproxy-log"] as const)
      .filter((peer) => running("homeostat-haproxy") && running(peer))
      .map((peer) => ({ subject: "homeostat-haproxy" as const, peer })),
    ...(running("haproxy-log") && running("haproxy")
      ? [{ subject: "haproxy-log" as const, peer: "haproxy" as const }]
      : []),
  ];
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
    pairedPeers,
    contenders,
    pairs,
    oldRoot,
    pairedDurationS: positiveNumber(env, "BENCH_PAIRED_SECONDS", 3),
    openLoopConnections: 256,
    upstreams: upstreams as UpstreamKind[],
    placement: cpuPlacement(env),
  };
}
