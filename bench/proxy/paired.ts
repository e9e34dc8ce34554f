/**
 * Homeostat against node-bare in short runs taken in turn: what Homeostat's own work costs on top
 * of Node's HTTP stack. The VM's speed drifts from one minute to the next (up to 1.6× between a
 * contender's three 10 s runs), which a ratio of medians taken minutes apart inherits; a ratio
 * taken within one round, seconds apart and in alternating order, mostly cancels it.
 */

import type { ProcessLedger } from "../foundation/processes.ts";
import { median } from "../foundation/stats.ts";
import type { ContenderName, Running, UpstreamKind } from "./contenders.ts";
import { type ThroughputRun, throughputRun } from "./measure.ts";
import type { ProxyBenchOptions } from "./options.ts";

export interface PairedRound {
  upstream: UpstreamKind;
  round: number;
  first: ContenderName;
  homeostat: ThroughputRun;
  nodeBare: ThroughputRun;
  /** Homeostat's req/s ÷ node-bare's. */
  rpsRatio: number;
  /** Homeostat's CPU µs per request ÷ node-bare's (null when a CPU reading is missing). */
  cpuPerRequestRatio: number | null;
}

export interface PairedSummary {
  upstream: UpstreamKind;
  rounds: number;
  /** Seconds of each measured run (after a warm-up of `warmupS`). */
  durationS: number;
  rpsRatio: { median: number; min: number; max: number };
  cpuPerRequestRatio: number | null;
}

/** CPU µs per request of a run (user + kernel). */
function cpuPerRequestUs(run: ThroughputRun): number | null {
  const percent = run.cpu.contender;
  return percent === null || !(run.wrk.requestsPerSecond > 0)
    ? null
    : (percent * 1e4) / run.wrk.requestsPerSecond;
}

/**
 * `rounds` rounds of one short wrk run on each of Homeostat and node-bare, the order alternating.
 * @param measure one run (the bench's `throughputRun`, retried by the caller's disturbance check)
 */
export async function pairedRounds(
  upstream: UpstreamKind,
  homeostat: Running,
  nodeBare: Running,
  upstreamProcess: Running,
  options: ProxyBenchOptions,
  ledger: ProcessLedger,
  measure: (run: () => Promise<ThroughputRun>, label: string) => Promise<ThroughputRun> = (run) => run(),
): Promise<PairedRound[]> {
  const short: ProxyBenchOptions = { ...options, durationS: options.pairedDurationS, warmupS: 1 };
  const rounds: PairedRound[] = [];
  for (let round = 0; round < options.pairedRounds; round++) {
    const order: ContenderName[] = round % 2 === 0 ? ["homeostat", "node-bare"] : ["node-bare", "homeostat"];
    const runs = new Map<ContenderName, ThroughputRun>();
    for (const [position, name] of order.entries()) {
      const running = name === "homeostat" ? homeostat : nodeBare;
      const key = { upstream, contender: name, repeat: round, position };
      runs.set(
        name,
        await measure(
          () => throughputRun(key, running, upstreamProcess, short, ledger),
          `paired #${round + 1} ${name}`,
        ),
      );
    }
    const h = runs.get("homeostat")!;
    const b = runs.get("node-bare")!;
    const hCpu = cpuPerRequestUs(h);
    const bCpu = cpuPerRequestUs(b);
    rounds.push({
      upstream,
      round,
      first: order[0]!,
      homeostat: h,
      nodeBare: b,
      rpsRatio: h.wrk.requestsPerSecond / b.wrk.requestsPerSecond,
      cpuPerRequestRatio: hCpu === null || bCpu === null || bCpu === 0 ? null : hCpu / bCpu,
    });
  }
  return rounds;
}

export function summarizePaired(
  upstream: UpstreamKind,
  rounds: readonly PairedRound[],
  durationS: number,
): PairedSummary | null {
  const mine = rounds.filter((r) => r.upstream === upstream);
  if (mine.length === 0) return null;
  const ratios = mine.map((r) => r.rpsRatio);
  const cpu = mine.flatMap((r) => (r.cpuPerRequestRatio === null ? [] : [r.cpuPerRequestRatio]));
  return {
    upstream,
    rounds: mine.length,
    durationS,
    rpsRatio: { median: median(ratios) ?? Number.NaN, min: Math.min(...ratios), max: Math.max(...ratios) },
    cpuPerRequestRatio: cpu.length === 0 ? null : (median(cpu) ?? null),
  };
}
