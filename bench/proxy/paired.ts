/**
 * Every "Homeostat × peer" figure of the proxy bench comes from here: short runs taken in pairs,
 * a subject (Homeostat, or Homeostat + HAProxy, or HAProxy with its log line) and one peer back to
 * back, the order alternating. The VM's speed drifts from one
 * minute to the next (up to 1.7× between a contender's 10 s runs), which a ratio of two medians
 * taken minutes apart inherits; a ratio taken within one pair, seconds apart, mostly cancels it.
 * The ratio reported is the median of the pairs' ratios, with their spread and count; with fewer
 * valid pairs than `MIN_VALID_PAIRS` it is not shown at all.
 */

import { percentile } from "../foundation/stats.ts";
import type { ContenderName, Running, UpstreamKind } from "./contenders.ts";
import type { RunKey, ThroughputRun } from "./measure.ts";
import type { ProxyBenchOptions } from "./options.ts";

/** Fewer valid pairs than this: the ratio is "not shown". */
export const MIN_VALID_PAIRS = 3;

/** Who is divided by whom: `subject ÷ peer`. */
export interface PairSpec {
  subject: ContenderName;
  peer: ContenderName;
}

export interface PairedRound {
  upstream: UpstreamKind;
  /** The contender divided (`homeostat` in results written before issue 14, where it is absent). */
  subject?: ContenderName;
  /** The contender the subject is compared with. */
  peer: ContenderName;
  /** 0-based round. */
  round: number;
  first: ContenderName;
  /** The subject's run (the name is from when Homeostat was the only subject). */
  homeostat: ThroughputRun;
  peerRun: ThroughputRun;
  /** The subject's req/s ÷ the peer's (null when the peer served nothing). */
  rpsRatio: number | null;
  /** The subject's CPU µs per request ÷ the peer's (null when a CPU reading is missing). */
  cpuPerRequestRatio: number | null;
  /** Why the pair does not count (null: it counts). */
  invalid: string | null;
}

/** A ratio over the valid pairs: nearest-rank median, quartiles and range, and every value. */
export interface RatioSpread {
  n: number;
  median: number;
  q1: number;
  q3: number;
  min: number;
  max: number;
  /** Each valid pair's ratio, in round order. */
  values: number[];
}

export interface PairedSummary {
  upstream: UpstreamKind;
  /** The contender divided (absent: `homeostat`). */
  subject?: ContenderName;
  peer: ContenderName;
  /** Pairs run, and of them those that count. */
  rounds: number;
  validRounds: number;
  /** Seconds of each measured run (after a 1 s warm-up). */
  durationS: number;
  /** Null: fewer than `MIN_VALID_PAIRS` valid pairs, "not shown". */
  rpsRatio: RatioSpread | null;
  cpuPerRequestRatio: RatioSpread | null;
  /** Why pairs were left out, with counts. */
  invalidReasons: Record<string, number>;
}

/** CPU µs per request of a run (user + kernel), or null. */
export function cpuPerRequestUs(run: Pick<ThroughputRun, "cpu" | "wrk">): number | null {
  const percent = run.cpu.contender;
  return percent === null || !(run.wrk.requestsPerSecond > 0)
    ? null
    : (percent * 1e4) / run.wrk.requestsPerSecond;
}

/**
 * Who goes first in pair (`round`, `peerIndex`): alternating from round to round for each peer,
 * and from peer to peer within a round, so Homeostat is first in half the pairs.
 */
export function firstOfPair(round: number, peerIndex: number): "homeostat" | "peer" {
  return (round + peerIndex) % 2 === 0 ? "homeostat" : "peer";
}

/** The peers' order in `round`: rotated by one each round, so no peer always comes first. */
export function peerOrder<T>(peers: readonly T[], round: number): T[] {
  const k = peers.length === 0 ? 0 : round % peers.length;
  return [...peers.slice(k), ...peers.slice(0, k)];
}

/**
 * Why a pair cannot be used (null: it can): a run that answered errors, served nothing, or was
 * disturbed by other work on the machine even after the retries.
 */
export function pairInvalid(
  homeostat: Pick<ThroughputRun, "wrk" | "othersPercent">,
  peer: Pick<ThroughputRun, "wrk" | "othersPercent">,
  othersLimitPercent: number,
): string | null {
  for (const run of [homeostat, peer]) {
    if (!(run.wrk.requestsPerSecond > 0)) return "no requests served";
    if (run.wrk.non2xx + run.wrk.socketErrors > 0) return "errors in a run";
  }
  if (Math.max(homeostat.othersPercent, peer.othersPercent) > othersLimitPercent) {
    return "disturbed by other work";
  }
  return null;
}

/** The spread of `values`, or null when there are fewer than `minValid`. */
export function ratioSpread(values: readonly number[], minValid = MIN_VALID_PAIRS): RatioSpread | null {
  if (values.length === 0 || values.length < minValid) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return {
    n: sorted.length,
    median: percentile(sorted, 50),
    q1: percentile(sorted, 25),
    q3: percentile(sorted, 75),
    min: sorted[0]!,
    max: sorted[sorted.length - 1]!,
    values: [...values],
  };
}

/** The subject of a pair or summary (`homeostat` when not written). */
export function subjectOf(p: { subject?: ContenderName }): ContenderName {
  return p.subject ?? "homeostat";
}

/** One pair's ratios and validity, from its two runs (`homeostat` is the subject's run). */
export function pairOf(
  key: {
    upstream: UpstreamKind;
    subject?: ContenderName;
    peer: ContenderName;
    round: number;
    first: ContenderName;
  },
  homeostat: ThroughputRun,
  peerRun: ThroughputRun,
  othersLimitPercent: number,
): PairedRound {
  const hCpu = cpuPerRequestUs(homeostat);
  const pCpu = cpuPerRequestUs(peerRun);
  const peerRps = peerRun.wrk.requestsPerSecond;
  return {
    ...key,
    subject: subjectOf(key),
    homeostat,
    peerRun,
    rpsRatio: peerRps > 0 ? homeostat.wrk.requestsPerSecond / peerRps : null,
    cpuPerRequestRatio: hCpu === null || pCpu === null || pCpu === 0 ? null : hCpu / pCpu,
    invalid: pairInvalid(homeostat, peerRun, othersLimitPercent),
  };
}

/** One measured run of `running` with `settings` (the bench's `throughputRun`, retried when disturbed). */
export type MeasureRun = (
  key: RunKey,
  running: Running,
  settings: ProxyBenchOptions,
  label: string,
) => Promise<ThroughputRun>;

/**
 * `options.pairedRounds` rounds; in each, for every pair of `specs` (order rotated per round), one
 * short wrk run on the subject and one on the peer, back to back, who goes first alternating.
 */
export async function pairedRounds(
  upstream: UpstreamKind,
  running: ReadonlyMap<ContenderName, Running>,
  specs: readonly PairSpec[],
  options: ProxyBenchOptions,
  othersLimitPercent: number,
  measure: MeasureRun,
  onPair: (pair: PairedRound) => void = () => {},
): Promise<PairedRound[]> {
  const short: ProxyBenchOptions = { ...options, durationS: options.pairedDurationS, warmupS: 1 };
  const pairs: PairedRound[] = [];
  for (let round = 0; round < options.pairedRounds; round++) {
    for (const [index, { subject, peer }] of peerOrder(specs, round).entries()) {
      const subjectFirst = firstOfPair(round, index) === "homeostat";
      const order: ContenderName[] = subjectFirst ? [subject, peer] : [peer, subject];
      const runs = new Map<ContenderName, ThroughputRun>();
      for (const [position, name] of order.entries()) {
        const contender = running.get(name);
        if (contender === undefined) throw new Error(`paired ${subject} ÷ ${peer}: ${name} is not running`);
        const key = { upstream, contender: name, repeat: round, position };
        runs.set(
          name,
          await measure(key, contender, short, `paired #${round + 1} ${name} (${subject} ÷ ${peer})`),
        );
      }
      const pair = pairOf(
        { upstream, subject, peer, round, first: order[0]! },
        runs.get(subject)!,
        runs.get(peer)!,
        othersLimitPercent,
      );
      pairs.push(pair);
      onPair(pair);
    }
  }
  return pairs;
}

/** `subject` (Homeostat by default) ÷ `peer` over the valid pairs of `upstream`. */
export function summarizePairs(
  upstream: UpstreamKind,
  peer: ContenderName,
  pairs: readonly PairedRound[],
  durationS: number,
  minValid = MIN_VALID_PAIRS,
  subject: ContenderName = "homeostat",
): PairedSummary {
  const mine = pairs.filter((p) => p.upstream === upstream && p.peer === peer && subjectOf(p) === subject);
  const invalidReasons: Record<string, number> = {};
  const valid: PairedRound[] = [];
  for (const p of mine) {
    const reason = p.invalid ?? (p.rpsRatio === null ? "no requests served" : null);
    if (reason === null) valid.push(p);
    else invalidReasons[reason] = (invalidReasons[reason] ?? 0) + 1;
  }
  const cpu = valid.flatMap((p) => (p.cpuPerRequestRatio === null ? [] : [p.cpuPerRequestRatio]));
  return {
    upstream,
    subject,
    peer,
    rounds: mine.length,
    validRounds: valid.length,
    durationS,
    rpsRatio: ratioSpread(
      valid.map((p) => p.rpsRatio!),
      minValid,
    ),
    cpuPerRequestRatio: ratioSpread(cpu, minValid),
    invalidReasons,
  };
}

/** A target on a paired ratio: met only when the paired median clears it; null when not shown. */
export function pairedTargetMet(spread: RatioSpread | null, atLeast: number): boolean | null {
  return spread === null ? null : spread.median >= atLeast;
}
