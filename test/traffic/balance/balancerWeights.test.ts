import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Balancer } from "../../../src/traffic/balance/balancer.ts";
import { binomialCheck } from "../../helpers/seededRandom.ts";
import {
  countPicks,
  endpoints,
  fail,
  IDLE,
  NOTHING,
  picked,
  seededRandom,
  T0,
  trafficSpec,
} from "./fixtures.ts";

/**
 * Each pick lands in a release with its share's probability, so a release's count over PICKS is
 * Binomial(PICKS, share): checked at ±3σ (±0.9 % at a share of 0.1, ±1.5 % at 0.5). The seed is
 * fixed (`countPicks`), so the counts are the same on every run.
 */
const PICKS = 10_000;

/** Releases v1 and v2 (3 endpoints each) in zone a, v3 (2 endpoints) in zone b. */
function threeReleases(weights: Record<string, number> | null): Balancer {
  const balancer = new Balancer(trafficSpec({ weights, outlier: { consecutiveFailures: 1 } }));
  balancer.setEndpoints([
    ...endpoints("one", 3, "a", "v1"),
    ...endpoints("two", 3, "a", "v2"),
    ...endpoints("three", 2, "b", "v3"),
  ]);
  return balancer;
}

function releaseShares(balancer: Balancer, now = T0): Map<string, number> {
  const counts = countPicks(balancer, PICKS, (result) => result.endpoint.release, { now });
  return new Map([...counts].map(([release, n]) => [release, n / PICKS]));
}

function assertShare(shares: Map<string, number>, release: string, expected: number): void {
  const check = binomialCheck(Math.round((shares.get(release) ?? 0) * PICKS), PICKS, expected, release);
  assert.ok(check.ok, check.message);
}

describe("Balancer: release weights", () => {
  it("splits 90/10 between two releases (± 3σ)", () => {
    const shares = releaseShares(threeReleases({ v1: 90, v2: 10 }));
    assertShare(shares, "v1", 0.9);
    assertShare(shares, "v2", 0.1);
    assert.equal(shares.get("v3"), undefined, "an unweighted release gets nothing");
  });

  it("gives nothing to a release of weight 0, even with endpoints", () => {
    const shares = releaseShares(threeReleases({ v1: 100, v2: 0, v3: 0 }));
    assert.deepEqual([...shares], [["v1", 1]]);
  });

  it("gives the share of a release whose endpoints are all ejected to the others, in proportion", () => {
    const balancer = threeReleases({ v1: 60, v2: 30, v3: 10 });
    fail(balancer, ["three-0", "three-1"], T0, 1);
    const shares = releaseShares(balancer);
    assertShare(shares, "v1", 2 / 3);
    assertShare(shares, "v2", 1 / 3);
    assert.equal(shares.get("v3"), undefined);
    const v3 = balancer.state(T0).pools.find((pool) => pool.release === "v3");
    assert.equal(v3?.share, 0);
  });

  it("picks priorities inside the chosen release only", () => {
    // v3 lives in zone b only: its picks go to priority 1 even though zone a (priority 0) is healthy.
    const balancer = threeReleases({ v1: 50, v3: 50 });
    const byRelease = countPicks(
      balancer,
      2_000,
      (result) => `${result.endpoint.release}/${result.priority}`,
    );
    assert.deepEqual([...byRelease.keys()].sort(), ["v1/0", "v3/1"]);
  });

  it("with no weights, treats every endpoint as one pool whatever its release", () => {
    const balancer = threeReleases(null);
    const shares = releaseShares(balancer);
    // Zone a (priority 0) holds v1 and v2, 3 endpoints each.
    assertShare(shares, "v1", 0.5);
    assertShare(shares, "v2", 0.5);
    assert.deepEqual(
      balancer.state(T0).pools.map((pool) => [pool.release, pool.share]),
      [[null, 1]],
    );
  });

  it("reports the weights and each release's share in its state", () => {
    const balancer = threeReleases({ v1: 3, v2: 1 });
    const state = balancer.state(T0);
    assert.deepEqual(state.weights, { v1: 3, v2: 1 });
    assert.deepEqual(
      state.pools.map((pool) => [pool.release, pool.share]),
      [
        ["v1", 0.75],
        ["v2", 0.25],
        ["v3", 0],
      ],
    );
  });

  it("shifts weights at runtime", () => {
    const balancer = threeReleases({ v1: 90, v2: 10 });
    balancer.setWeights({ v1: 10, v2: 90 });
    const shares = releaseShares(balancer);
    assertShare(shares, "v1", 0.1);
    assertShare(shares, "v2", 0.9);
    balancer.setWeights(null);
    assert.equal(balancer.state(T0).weights, null);
  });

  it("never lets a pick see a mix of two weight sets, even if they change during the pick", () => {
    // The first draw of a pick swaps the weights. The pick must finish on the weights it started
    // with: old {v1: 50, v2: 50} and draw 0.25 → v1. Reading the new set ({v1: 0, v2: 100}) for
    // any part of the choice would give v2.
    const balancer = threeReleases({ v1: 50, v2: 50 });
    const sets = [
      { v1: 50, v2: 50 },
      { v1: 0, v2: 100 },
    ];
    for (let round = 0; round < 20; round++) {
      const before = sets[round % 2]!;
      const after = sets[(round + 1) % 2]!;
      balancer.setWeights(before);
      let draws = 0;
      const swapping = () => {
        draws += 1;
        if (draws === 1) balancer.setWeights(after);
        return 0.25;
      };
      const result = picked(balancer.pick(T0, swapping, NOTHING, IDLE));
      assert.equal(result.endpoint.release, before.v1 > 0 ? "v1" : "v2", `round ${round}`);
      assert.ok(draws >= 1, "the pick drew at least once");
      assert.deepEqual(balancer.state(T0).weights, after, "the swap itself took effect");
    }
  });

  it("is not affected by later changes to the object passed in", () => {
    const weights = { v1: 100, v2: 0 };
    const balancer = threeReleases(weights);
    weights.v1 = 0;
    weights.v2 = 100;
    assert.deepEqual([...releaseShares(balancer)], [["v1", 1]]);
  });

  it("refuses invalid weights and keeps the ones in force", () => {
    const balancer = threeReleases({ v1: 100 });
    assert.throws(() => balancer.setWeights({ v1: -1, v2: 2 }), { code: "HS_BAD_REQUEST" });
    assert.throws(() => balancer.setWeights({ v1: 0 }), { code: "HS_BAD_REQUEST" });
    assert.deepEqual(balancer.state(T0).weights, { v1: 100 });
  });

  it("fails the pick when only releases without endpoints are weighted", () => {
    const balancer = threeReleases({ v9: 100 });
    assert.deepEqual(balancer.pick(T0, seededRandom(1), NOTHING, IDLE), {
      ok: false,
      reason: "no-endpoints",
    });
  });

  it("answers all-ejected when every weighted release has members but none usable", () => {
    // v3 is 2 of 8 members: ejecting both leaves the service at 75 % healthy, not in panic.
    const balancer = threeReleases({ v3: 100 });
    fail(balancer, ["three-0", "three-1"], T0, 1);
    assert.deepEqual(balancer.pick(T0, seededRandom(1), NOTHING, IDLE), { ok: false, reason: "all-ejected" });
    assert.equal(balancer.pick(T0 + 1_000, seededRandom(1), NOTHING, IDLE).ok, true);
  });
});
