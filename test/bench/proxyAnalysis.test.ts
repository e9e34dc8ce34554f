/**
 * The proxy bench's paired ratios (bench/proxy/paired.ts) and how the report judges them: every
 * "Homeostat × peer" figure is the median of per-pair ratios, printed with its spread and count;
 * a target is met only when that median clears it; too few valid pairs and it is not shown.
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ContenderName } from "../../bench/proxy/contenders.ts";
import type { LatencyRun, ThroughputRun } from "../../bench/proxy/measure.ts";
import {
  firstOfPair,
  MIN_VALID_PAIRS,
  type PairedRound,
  pairedTargetMet,
  pairInvalid,
  pairOf,
  peerOrder,
  ratioSpread,
  summarizePairs,
} from "../../bench/proxy/paired.ts";
import { pairedRatio, throughputTargetLine } from "../../bench/proxy/report.ts";
import { summarizeUpstream, TARGETS } from "../../bench/proxy/results.ts";

/** A throughput run of `rps` req/s at `cpu` % of a core, undisturbed and without errors. */
function run(
  contender: ContenderName,
  rps: number,
  options: { cpu?: number | null; errors?: number; others?: number; upstream?: "demo" | "static" } = {},
): ThroughputRun {
  return {
    upstream: options.upstream ?? "static",
    contender,
    repeat: 0,
    position: 0,
    before: { busyPercent: 0, waitedMs: 0, quiet: true },
    othersPercent: options.others ?? 0,
    loopDelay: null,
    feed: null,
    wrk: {
      requestsPerSecond: rps,
      requests: rps * 3,
      non2xx: options.errors ?? 0,
      socketErrors: 0,
      p50Ms: null,
      p99Ms: null,
      command: "wrk",
    },
    cpu: { contender: options.cpu === undefined ? 100 : options.cpu, contenderSystem: 20, upstream: 50 },
  } as ThroughputRun;
}

/** A pair of Homeostat at `h` req/s and `peer` at `p` req/s in `round`. */
function pair(
  peer: ContenderName,
  round: number,
  h: number,
  p: number,
  upstream: "demo" | "static" = "static",
) {
  return pairOf(
    { upstream, peer, round, first: "homeostat" },
    run("homeostat", h, { upstream }),
    run(peer, p, { upstream }),
    10,
  );
}

describe("proxy bench: paired ratios", () => {
  it("takes the nearest-rank median, quartiles and range of the pairs' ratios, keeping every value", () => {
    const s = ratioSpread([0.4, 0.57, 0.51]);
    assert.ok(s !== null);
    assert.equal(s.n, 3);
    assert.equal(s.median, 0.51);
    assert.equal(s.min, 0.4);
    assert.equal(s.max, 0.57);
    assert.equal(s.q1, 0.4);
    assert.equal(s.q3, 0.57);
    assert.deepEqual(s.values, [0.4, 0.57, 0.51]);

    const six = ratioSpread([0.7, 0.72, 0.73, 0.63, 0.75, 0.78]);
    assert.equal(six?.median, 0.72);
    assert.equal(six?.q1, 0.7);
    assert.equal(six?.q3, 0.75);
  });

  it("shows no ratio with fewer valid pairs than the minimum", () => {
    assert.equal(MIN_VALID_PAIRS, 3);
    assert.equal(ratioSpread([0.5, 0.6]), null);
    assert.equal(ratioSpread([]), null);
    assert.equal(ratioSpread([0.5], 1)?.median, 0.5);
  });

  it("divides Homeostat by the peer in each pair, req/s and CPU per request alike", () => {
    const p = pairOf(
      { upstream: "static", peer: "nginx", round: 0, first: "nginx" },
      run("homeostat", 10_000, { cpu: 100 }),
      run("nginx", 20_000, { cpu: 50 }),
      10,
    );
    assert.equal(p.rpsRatio, 0.5);
    // 100 µs vs 25 µs of CPU per request.
    assert.equal(p.cpuPerRequestRatio, 4);
    assert.equal(p.invalid, null);
    const noCpu = pairOf(
      { upstream: "static", peer: "direct", round: 0, first: "homeostat" },
      run("homeostat", 10_000),
      run("direct", 40_000, { cpu: null }),
      10,
    );
    assert.equal(noCpu.cpuPerRequestRatio, null);
    assert.equal(noCpu.rpsRatio, 0.25);
  });

  it("leaves out a pair with errors, with nothing served, or disturbed by other work", () => {
    const ok = run("homeostat", 10_000);
    assert.equal(pairInvalid(ok, run("nginx", 20_000), 10), null);
    assert.equal(pairInvalid(ok, run("nginx", 20_000, { errors: 3 }), 10), "errors in a run");
    assert.equal(pairInvalid(run("homeostat", 0), run("nginx", 20_000), 10), "no requests served");
    assert.equal(pairInvalid(ok, run("nginx", 20_000, { others: 11 }), 10), "disturbed by other work");
    assert.equal(pairInvalid(ok, run("nginx", 20_000, { others: 10 }), 10), null);
  });

  it("summarizes one peer of one upstream, counting what was left out and why", () => {
    const pairs: PairedRound[] = [
      pair("nginx", 0, 4_000, 10_000),
      pair("nginx", 1, 5_700, 10_000),
      pair("nginx", 2, 5_100, 10_000),
      { ...pair("nginx", 3, 9_000, 10_000), invalid: "errors in a run" },
      pair("node-bare", 0, 7_000, 10_000),
      pair("nginx", 0, 1_000, 10_000, "demo"),
    ];
    const s = summarizePairs("static", "nginx", pairs, 3);
    assert.equal(s.rounds, 4);
    assert.equal(s.validRounds, 3);
    assert.deepEqual(s.invalidReasons, { "errors in a run": 1 });
    assert.equal(s.rpsRatio?.median, 0.51);
    assert.deepEqual(s.rpsRatio?.values, [0.4, 0.57, 0.51]);
    assert.equal(s.cpuPerRequestRatio?.n, 3);

    const bare = summarizePairs("static", "node-bare", pairs, 3);
    assert.equal(bare.rounds, 1);
    assert.equal(bare.rpsRatio, null, "one pair is not enough to show a ratio");
  });

  it("meets a target only when the paired median clears it", () => {
    assert.equal(pairedTargetMet(ratioSpread([0.4, 0.57, 0.51]), 0.5), true);
    assert.equal(
      pairedTargetMet(ratioSpread([0.4, 0.49, 0.57]), 0.5),
      false,
      "0.57 in the range is not enough",
    );
    assert.equal(pairedTargetMet(ratioSpread([0.5, 0.5, 0.5]), 0.5), true);
    assert.equal(pairedTargetMet(null, 0.5), null);
  });

  it("alternates who goes first: for each peer from round to round, and between peers in a round", () => {
    for (let peer = 0; peer < 3; peer++) {
      const firsts = [0, 1, 2, 3].map((round) => firstOfPair(round, peer));
      assert.deepEqual(firsts.slice(0, 2), [firsts[2], firsts[3]]);
      assert.notEqual(firsts[0], firsts[1]);
    }
    assert.notEqual(firstOfPair(0, 0), firstOfPair(0, 1));
    assert.deepEqual(peerOrder(["a", "b", "c"], 0), ["a", "b", "c"]);
    assert.deepEqual(peerOrder(["a", "b", "c"], 1), ["b", "c", "a"]);
    assert.deepEqual(peerOrder(["a", "b", "c"], 4), ["b", "c", "a"]);
    assert.deepEqual(peerOrder([], 2), []);
  });
});

describe("proxy bench: targets and report lines from the pairs", () => {
  const nginx = (ratios: number[]) =>
    summarizePairs(
      "static",
      "nginx",
      ratios.map((r, k) => pair("nginx", k, r * 10_000, 10_000)),
      3,
    );

  it("judges the throughput target on the paired median, never on the contenders' own medians", () => {
    // nginx's own median (60,000) is 6× Homeostat's: unpaired, 0.17×; paired, 0.51×.
    const throughput = [run("homeostat", 10_000), run("nginx", 60_000)];
    const met = summarizeUpstream(
      "static",
      0,
      throughput,
      [],
      ["homeostat", "nginx"],
      [nginx([0.4, 0.57, 0.51])],
    );
    assert.equal(met.targets.throughputVsNginx, 0.51);
    assert.equal(met.targets.throughputMet, true);
    assert.equal("rpsVsNginx" in met.contenders[0]!, false, "no unpaired ratio in the summary");

    const missed = summarizeUpstream(
      "static",
      0,
      throughput,
      [],
      ["homeostat", "nginx"],
      [nginx([0.4, 0.49, 0.57])],
    );
    assert.equal(missed.targets.throughputMet, false);

    const notShown = summarizeUpstream(
      "static",
      0,
      throughput,
      [],
      ["homeostat", "nginx"],
      [nginx([0.6, 0.7])],
    );
    assert.equal(notShown.targets.throughputVsNginx, null);
    assert.equal(notShown.targets.throughputMet, null);

    const unpaired = summarizeUpstream("static", 0, throughput, [], ["homeostat", "nginx"], []);
    assert.equal(unpaired.targets.throughputMet, null);
  });

  it("always prints the spread with the median, and says 'not shown' without enough pairs", () => {
    assert.equal(
      pairedRatio(ratioSpread([0.4, 0.57, 0.51]), 3, 3),
      "0.51× (IQR 0.40–0.57, range 0.40–0.57, 3 pairs)",
    );
    assert.equal(
      pairedRatio(null, 2, 6),
      `not shown (2 of 6 pairs valid; at least ${MIN_VALID_PAIRS} needed)`,
    );

    const shown = nginx([0.4, 0.57, 0.51]);
    const summary = summarizeUpstream("static", 0, [], [], ["homeostat", "nginx"], [shown]);
    const line = throughputTargetLine(summary, shown);
    assert.match(line, new RegExp(`≥ ${TARGETS.throughputVsNginx}× nginx`));
    assert.match(line, /0\.51× \(IQR 0\.40–0\.57, range 0\.40–0\.57, 3 pairs\), \*\*met\*\*/);

    const few = nginx([0.6, 0.7]);
    const fewLine = throughputTargetLine(summarizeUpstream("static", 0, [], [], ["homeostat"], [few]), few);
    assert.match(fewLine, /not shown \(2 of 2 pairs valid/);
    assert.match(fewLine, /\*\*not judged\*\*/);
    assert.doesNotMatch(fewLine, /met\*\*/);
  });
});

/** A fixed-rate run with the given p99 (from due time), judged valid or not by its generator. */
function latencyRun(contender: ContenderName, p99: number, valid: boolean): LatencyRun {
  const spread = { p50: p99 / 10, p90: p99 / 2, p99, p999: p99, max: p99, mean: p99 / 10 };
  return {
    upstream: "static",
    contender,
    repeat: 0,
    position: 0,
    before: { busyPercent: 0, waitedMs: 0, quiet: true },
    othersPercent: 0,
    loopDelay: null,
    feed: null,
    ratePerSecond: 1_000,
    result: {
      achievedRate: valid ? 1_000 : 800,
      achievedFraction: valid ? 1 : 0.8,
      errors: 0,
      non2xx: 0,
      latency: spread,
      lateness: { ...spread, p99: valid ? 0.2 : p99 - 20 },
      valid,
      invalidReason: valid ? null : "p99 lateness over 5 ms",
    },
    cpu: { contender: 50, contenderSystem: 10, upstream: 20 },
  } as unknown as LatencyRun;
}

describe("proxy bench: fixed-rate runs whose generator fell behind", () => {
  it("are left out of the p99 but listed with their own p99 and lateness, never hidden", () => {
    const latency = [
      latencyRun("direct", 0.3, true),
      latencyRun("homeostat", 5, true),
      latencyRun("homeostat", 600, false),
    ];
    const s = summarizeUpstream("static", 1_000, [], latency, ["direct", "homeostat"]);
    const h = s.contenders.find((c) => c.contender === "homeostat")!;
    assert.deepEqual(h.p99Runs, [5]);
    assert.equal(h.invalidLatencyRuns, 1);
    assert.deepEqual(
      h.fellBehindRuns.map((r) => [r.p99Ms, r.latenessP99Ms]),
      [[600, 580]],
    );
    assert.equal(s.contenders.find((c) => c.contender === "direct")!.fellBehindRuns.length, 0);
  });
});
