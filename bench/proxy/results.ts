/**
 * The proxy bench's result file: every run, per upstream each contender's own medians, and the
 * targets. Every "× peer" ratio is a paired one (paired.ts): no ratio here is taken between two
 * medians of runs measured minutes apart.
 */

import type { MachineInfo } from "../foundation/machine.ts";
import { median } from "../foundation/stats.ts";
import type { CodeState } from "./codeState.ts";
import type { ContenderName, UpstreamKind } from "./contenders.ts";
import type { LatencyRun, ThroughputRun } from "./measure.ts";
import type { ProxyBenchOptions } from "./options.ts";
import { type PairedRound, type PairedSummary, pairedTargetMet, subjectOf } from "./paired.ts";
import type { ToolVersions } from "./tools.ts";

/**
 * Targets: the data-plane issue's two, and issue 14's for the `haproxy` engine (Homeostat is off
 * the request path, so Homeostat + HAProxy ÷ plain HAProxy with the same settings, paired).
 */
export const TARGETS = { throughputVsNginx: 0.5, addedP99Ms: 2, haproxyEngineVsHaproxy: 0.9 } as const;

export interface ContenderSummary {
  contender: ContenderName;
  /** Max throughput runs (req/s), in run order, and their median. */
  rpsRuns: number[];
  rps: number;
  /** Median CPU (% of one core) during the throughput runs. */
  cpuAtMax: { contender: number | null; upstream: number };
  /** The contender's CPU time per request at max throughput (µs, medians of the runs): user and kernel. */
  cpuPerRequestUs: { user: number; system: number } | null;
  /** Errors over every throughput run (non-2xx + socket errors). */
  throughputErrors: number;
  /** Fixed-rate runs: medians of each run's percentiles (ms). */
  p50Runs: number[];
  p99Runs: number[];
  p50: number;
  p99: number;
  p999: number;
  max: number;
  addedP50VsDirectMs: number | null;
  addedP99VsDirectMs: number | null;
  /** Median of the generator's own p99 lateness (ms): the floor under every figure. */
  generatorLatenessP99: number;
  /** Median achieved completion rate of the fixed-rate runs. */
  achievedRate: number;
  latencyErrors: number;
  /** Fixed-rate runs left out of every figure above: the generator fell behind (see bench/common/loadgen). */
  invalidLatencyRuns: number;
  /**
   * Those runs as they went, never summarised but never hidden: the p99 from due time and the
   * generator's p99 lateness of each. A contender that cannot keep up with the rate holds every
   * connection the generator may open, so the generator falls behind and the run is not a
   * measurement at the offered rate — but it does say the contender fell behind.
   */
  fellBehindRuns: { p99Ms: number; latenessP99Ms: number; achievedFraction: number; reason: string | null }[];
  cpuAtRate: { contender: number | null; upstream: number };
  /** Node contenders: their own event-loop delay during the fixed-rate runs (medians, ms). */
  loopDelayAtRate: { p99Ms: number; maxMs: number } | null;
}

export interface UpstreamSummary {
  upstream: UpstreamKind;
  /** The fixed rate of the latency runs: loadFraction × `rateOf`'s median max. */
  ratePerSecond: number;
  /** Whose max the rate is a fraction of (absent in results before issue 14: `homeostat`). */
  rateOf?: ContenderName;
  contenders: ContenderSummary[];
  targets: {
    /** Homeostat ÷ nginx, paired median (null: not enough valid pairs, or nginx not paired). */
    throughputVsNginx: number | null;
    /** Met only when the paired median clears the target; null: not shown. */
    throughputMet: boolean | null;
    addedP99Ms: number | null;
    addedP99Met: boolean | null;
    /** Homeostat + HAProxy ÷ plain HAProxy, paired median (null: not paired or too few pairs). */
    haproxyEngineVsHaproxy?: number | null;
    haproxyEngineMet?: boolean | null;
  };
}

export interface ProxyBenchResult {
  benchmark: "proxy";
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  dateUtc: string;
  machine: MachineInfo & { loadAverage1mAtEnd: number };
  code: CodeState;
  tools: ToolVersions;
  options: ProxyBenchOptions;
  /** Exact commands, and where the configs were written. */
  commands: { wrk: string; openLoop: string; configs: Record<string, string> };
  /** The contenders measured, in table order. */
  contenders: ContenderName[];
  /** The Homeostat traffic settings used (the spec loader's defaults, but for the limits). */
  homeostatTraffic: unknown;
  throughput: ThroughputRun[];
  latency: LatencyRun[];
  /** Homeostat and each peer in short runs back to back, the order alternating (paired.ts). */
  paired: PairedRound[];
  pairedSummaries: PairedSummary[];
  /** Runs redone because other processes used more than `othersLimitPercent` of a core meanwhile. */
  discarded: { othersLimitPercent: number; throughput: ThroughputRun[]; latency: LatencyRun[] };
  summaries: UpstreamSummary[];
  leftoverPids: number[];
}

const med = (values: number[]): number => median(values) ?? Number.NaN;

/**
 * @param contenders the run's contenders, in table order
 * @param paired the paired summaries of this upstream: the throughput target is judged on
 *   Homeostat ÷ nginx from there, and only there
 */
export function summarizeUpstream(
  upstream: UpstreamKind,
  ratePerSecond: number,
  throughput: readonly ThroughputRun[],
  latency: readonly LatencyRun[],
  contenders: readonly ContenderName[],
  paired: readonly PairedSummary[] = [],
): UpstreamSummary {
  const base = contenders.map((contender) => {
    const t = throughput.filter((r) => r.upstream === upstream && r.contender === contender);
    const allLatency = latency.filter((r) => r.upstream === upstream && r.contender === contender);
    // A run whose generator fell behind its schedule is no measurement: left out, and counted.
    const l = allLatency.filter((r) => r.result.valid);
    const contenderCpu = (runs: { cpu: { contender: number | null } }[]) =>
      runs.every((r) => r.cpu.contender === null) ? null : med(runs.map((r) => r.cpu.contender ?? 0));
    return {
      contender,
      rpsRuns: t.map((r) => r.wrk.requestsPerSecond),
      rps: med(t.map((r) => r.wrk.requestsPerSecond)),
      cpuAtMax: { contender: contenderCpu(t), upstream: med(t.map((r) => r.cpu.upstream)) },
      cpuPerRequestUs: t.every((r) => r.cpu.contender === null)
        ? null
        : {
            user: med(
              t.map(
                (r) =>
                  (((r.cpu.contender ?? 0) - (r.cpu.contenderSystem ?? 0)) * 1e4) / r.wrk.requestsPerSecond,
              ),
            ),
            system: med(t.map((r) => ((r.cpu.contenderSystem ?? 0) * 1e4) / r.wrk.requestsPerSecond)),
          },
      throughputErrors: t.reduce((sum, r) => sum + r.wrk.non2xx + r.wrk.socketErrors, 0),
      p50Runs: l.map((r) => r.result.latency?.p50 ?? Number.NaN),
      p99Runs: l.map((r) => r.result.latency?.p99 ?? Number.NaN),
      p50: med(l.map((r) => r.result.latency?.p50 ?? Number.NaN)),
      p99: med(l.map((r) => r.result.latency?.p99 ?? Number.NaN)),
      p999: med(l.map((r) => r.result.latency?.p999 ?? Number.NaN)),
      max: med(l.map((r) => r.result.latency?.max ?? Number.NaN)),
      generatorLatenessP99: med(l.map((r) => r.result.lateness?.p99 ?? Number.NaN)),
      achievedRate: med(l.map((r) => r.result.achievedRate)),
      latencyErrors: l.reduce((sum, r) => sum + r.result.errors + r.result.non2xx, 0),
      invalidLatencyRuns: allLatency.length - l.length,
      fellBehindRuns: allLatency
        .filter((r) => !r.result.valid)
        .map((r) => ({
          p99Ms: r.result.latency?.p99 ?? Number.NaN,
          latenessP99Ms: r.result.lateness?.p99 ?? Number.NaN,
          achievedFraction: r.result.achievedFraction,
          reason: r.result.invalidReason,
        })),
      cpuAtRate: { contender: contenderCpu(l), upstream: med(l.map((r) => r.cpu.upstream)) },
      loopDelayAtRate: l.every((r) => r.loopDelay === null)
        ? null
        : {
            p99Ms: med(l.map((r) => r.loopDelay?.p99Ms ?? Number.NaN)),
            maxMs: med(l.map((r) => r.loopDelay?.maxMs ?? Number.NaN)),
          },
    };
  });
  const direct = base.find((c) => c.contender === "direct");
  const summaries: ContenderSummary[] = base.map((c) => ({
    ...c,
    addedP50VsDirectMs: direct === undefined ? null : c.p50 - direct.p50,
    addedP99VsDirectMs: direct === undefined ? null : c.p99 - direct.p99,
  }));
  const homeostat = summaries.find((c) => c.contender === "homeostat");
  const pairedOf = (subject: ContenderName, peer: ContenderName) =>
    paired.find((p) => p.upstream === upstream && subjectOf(p) === subject && p.peer === peer)?.rpsRatio ??
    null;
  const vsNginx = pairedOf("homeostat", "nginx");
  const engineVsHaproxy = pairedOf("homeostat-haproxy", "haproxy");
  const addedP99Ms = homeostat?.addedP99VsDirectMs ?? null;
  return {
    upstream,
    ratePerSecond,
    contenders: summaries,
    targets: {
      throughputVsNginx: vsNginx?.median ?? null,
      throughputMet: pairedTargetMet(vsNginx, TARGETS.throughputVsNginx),
      addedP99Ms,
      addedP99Met: addedP99Ms === null ? null : addedP99Ms <= TARGETS.addedP99Ms,
      haproxyEngineVsHaproxy: engineVsHaproxy?.median ?? null,
      haproxyEngineMet: pairedTargetMet(engineVsHaproxy, TARGETS.haproxyEngineVsHaproxy),
    },
  };
}
