import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { WindowStats } from "../../src/decide/rollout/types.ts";
import type { DeploySpec, SloSpec } from "../../src/spec/model.ts";
import { judgeAgainstSlo, judgeCanary } from "../../src/verify/canaryAnalysis.ts";

const ANALYSIS: DeploySpec["analysis"] = {
  minRequests: 50,
  maxErrorRateIncrease: 0.05,
  maxP99Ratio: 1.5,
  minP99IncreaseMs: 20,
};

const SLO: SloSpec = { errorRate: 0.01, p99Ms: 300 };

function stats(overrides: Partial<WindowStats> = {}): WindowStats {
  return { requests: 1_000, errors: 10, errorRate: 0.01, p50Ms: 40, p99Ms: 100, rps: 33, ...overrides };
}

describe("judgeCanary", () => {
  const cases: {
    name: string;
    canary: Partial<WindowStats>;
    baseline?: Partial<WindowStats>;
    verdict: "pass" | "fail" | "inconclusive";
    reasons?: string[];
    mentions?: string[];
  }[] = [
    {
      name: "zero requests on both sides is inconclusive, naming both counts",
      canary: { requests: 0, errors: 0, errorRate: null, p50Ms: null, p99Ms: null, rps: 0 },
      baseline: { requests: 0, errors: 0, errorRate: null, p50Ms: null, p99Ms: null, rps: 0 },
      verdict: "inconclusive",
      reasons: ["canary served 0 requests, need 50", "baseline served 0 requests, need 50"],
    },
    {
      name: "a canary below minRequests is inconclusive even with perfect figures",
      canary: { requests: 12, errors: 0, errorRate: 0, p99Ms: 10 },
      verdict: "inconclusive",
      reasons: ["canary served 12 requests, need 50"],
    },
    {
      name: "a baseline below minRequests is inconclusive",
      canary: {},
      baseline: { requests: 49 },
      verdict: "inconclusive",
      reasons: ["baseline served 49 requests, need 50"],
    },
    {
      name: "NaN requests count as too few",
      canary: { requests: Number.NaN },
      verdict: "inconclusive",
      reasons: ["canary served NaN requests, need 50"],
    },
    {
      name: "exactly minRequests on both sides is enough data",
      canary: { requests: 50 },
      baseline: { requests: 50 },
      verdict: "pass",
    },
    {
      name: "a null canary error rate is no data, never 0",
      canary: { errorRate: null },
      verdict: "inconclusive",
      mentions: ["error rate unknown", "canary no data", "baseline 1 %"],
    },
    {
      name: "a NaN baseline error rate is no data",
      baseline: { errorRate: Number.NaN },
      canary: {},
      verdict: "inconclusive",
      mentions: ["error rate unknown", "baseline no data"],
    },
    {
      name: "a null canary p99 is no data",
      canary: { p99Ms: null },
      verdict: "inconclusive",
      mentions: ["p99 unknown", "canary no data"],
    },
    {
      name: "an infinite baseline p99 is no data",
      canary: {},
      baseline: { p99Ms: Number.POSITIVE_INFINITY },
      verdict: "inconclusive",
      mentions: ["p99 unknown"],
    },
    {
      name: "a known failure wins over a missing figure",
      canary: { errorRate: 0.2, p99Ms: null },
      verdict: "fail",
      mentions: ["error rate 20 % vs baseline 1 %"],
    },
    {
      name: "an error-rate increase exactly at the limit passes (0.06 − 0.01 is not more than 0.05)",
      canary: { errorRate: 0.06 },
      verdict: "pass",
      mentions: ["error rate 6 % vs baseline 1 % (+5 points, at most +5 points allowed)"],
    },
    {
      name: "an error-rate increase just above the limit fails, naming both rates",
      canary: { errorRate: 0.0601 },
      verdict: "fail",
      reasons: ["error rate 6.01 % vs baseline 1 % (+5.01 points, more than +5 points allowed)"],
    },
    {
      name: "a canary better than baseline passes",
      canary: { errorRate: 0 },
      baseline: { errorRate: 0.03 },
      verdict: "pass",
      mentions: ["(−3 points"],
    },
    {
      name: "p99 exactly at baseline × ratio passes",
      canary: { p99Ms: 150 },
      verdict: "pass",
      mentions: ["p99 150 ms vs baseline 100 ms (within ×1.5 = 150 ms"],
    },
    {
      name: "p99 above baseline × ratio and by more than the minimum increase fails",
      canary: { p99Ms: 151 },
      verdict: "fail",
      reasons: ["p99 151 ms vs baseline 100 ms (above ×1.5 = 150 ms and at least +20 ms)"],
    },
    {
      name: "p99 above the ratio but by less than the minimum increase passes (2 ms → 5 ms)",
      canary: { p99Ms: 5 },
      baseline: { p99Ms: 2 },
      verdict: "pass",
    },
    {
      name: "p99 above the ratio by exactly the minimum increase fails",
      canary: { p99Ms: 50 },
      baseline: { p99Ms: 30 },
      verdict: "fail",
    },
    {
      name: "both figures failing give both reasons",
      canary: { errorRate: 0.5, p99Ms: 900 },
      verdict: "fail",
      mentions: ["error rate 50 %", "p99 900 ms"],
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const judgement = judgeCanary(stats(c.canary), stats(c.baseline), ANALYSIS);
      assert.equal(judgement.verdict, c.verdict, JSON.stringify(judgement.reasons));
      if (c.reasons !== undefined) assert.deepEqual(judgement.reasons, c.reasons);
      for (const text of c.mentions ?? []) {
        assert.ok(
          judgement.reasons.some((reason) => reason.includes(text)),
          `expected a reason with ${JSON.stringify(text)} in ${JSON.stringify(judgement.reasons)}`,
        );
      }
    });
  }

  it("states the compared figures of a pass", () => {
    const judgement = judgeCanary(
      stats({ errorRate: 0.012, p99Ms: 110 }),
      stats({ errorRate: 0.01 }),
      ANALYSIS,
    );
    assert.deepEqual(judgement, {
      verdict: "pass",
      reasons: [
        "error rate 1.2 % vs baseline 1 % (+0.2 points, at most +5 points allowed)",
        "p99 110 ms vs baseline 100 ms (within ×1.5 = 150 ms and at least +20 ms)",
      ],
    });
  });
});

describe("judgeAgainstSlo", () => {
  const cases: {
    name: string;
    stats: Partial<WindowStats>;
    verdict: "pass" | "fail" | "inconclusive";
    reasons?: string[];
  }[] = [
    {
      name: "zero requests is inconclusive",
      stats: { requests: 0, errors: 0, errorRate: null, p50Ms: null, p99Ms: null, rps: 0 },
      verdict: "inconclusive",
      reasons: ["canary served 0 requests, need 50"],
    },
    {
      name: "below minRequests is inconclusive",
      stats: { requests: 12, errorRate: 0 },
      verdict: "inconclusive",
      reasons: ["canary served 12 requests, need 50"],
    },
    {
      name: "an error rate above the SLO fails",
      stats: { errorRate: 0.031 },
      verdict: "fail",
      reasons: ["error rate 3.1 % > SLO 1 %"],
    },
    {
      name: "an error rate exactly at the SLO passes",
      stats: { errorRate: 0.01, p99Ms: 300 },
      verdict: "pass",
      reasons: ["error rate 1 % ≤ SLO 1 %", "p99 300 ms ≤ SLO 300 ms"],
    },
    {
      name: "a p99 above the SLO fails",
      stats: { p99Ms: 300.5 },
      verdict: "fail",
      reasons: ["p99 300.5 ms > SLO 300 ms"],
    },
    {
      name: "a null p99 is no data",
      stats: { p99Ms: null },
      verdict: "inconclusive",
      reasons: ["p99 unknown: no data is never a pass"],
    },
    {
      name: "a NaN error rate is no data",
      stats: { errorRate: Number.NaN },
      verdict: "inconclusive",
      reasons: ["error rate unknown: no data is never a pass"],
    },
    {
      name: "a failing p99 wins over a missing error rate",
      stats: { errorRate: null, p99Ms: 800 },
      verdict: "fail",
      reasons: ["p99 800 ms > SLO 300 ms"],
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const judgement = judgeAgainstSlo(stats(c.stats), SLO, 50);
      assert.equal(judgement.verdict, c.verdict, JSON.stringify(judgement.reasons));
      if (c.reasons !== undefined) assert.deepEqual(judgement.reasons, c.reasons);
    });
  }

  it("names the release it judges when given a label", () => {
    assert.deepEqual(judgeAgainstSlo(stats({ requests: 3 }), SLO, 50, "v2").reasons, [
      "v2 served 3 requests, need 50",
    ]);
  });
});
