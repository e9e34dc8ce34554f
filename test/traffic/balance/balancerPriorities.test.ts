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
 * Each pick goes to priority 0 with probability equal to its load, so the count over PICKS is
 * Binomial(PICKS, load): checked at ±3σ (±0.42 % at 0.98, ±1.4 % at 0.7; exact at 0 and 1). The
 * seed is fixed (`countPicks`), so the counts are the same on every run.
 */
const PICKS = 10_000;

/** Priority 0 (zone a) with `p0` endpoints, `ejected` of them ejected; priority 1 (zone b) with `p1`. */
function spillBalancer(p0: number, ejected: number, p1 = 3): Balancer {
  const balancer = new Balancer(
    trafficSpec({ outlier: { consecutiveFailures: 1, maxEjectionPercent: 100 } }),
  );
  const zoneA = endpoints("a", p0, "a");
  balancer.setEndpoints([...zoneA, ...endpoints("b", p1, "b")]);
  fail(
    balancer,
    zoneA.slice(0, ejected).map((e) => e.instance),
    T0,
    1,
  );
  return balancer;
}

function priorityZeroCount(balancer: Balancer): number {
  return countPicks(balancer, PICKS, (result) => result.priority).get(0) ?? 0;
}

describe("Balancer: zone priorities (factor 1.4, priority 1 fully healthy)", () => {
  const cases: { label: string; build: () => Balancer; expected: number }[] = [
    { label: "3+3, priority 0 100 % healthy", build: () => spillBalancer(3, 0), expected: 1 },
    { label: "10+3, priority 0 70 % healthy (3 ejected)", build: () => spillBalancer(10, 3), expected: 0.98 },
    { label: "10+3, priority 0 50 % healthy (5 ejected)", build: () => spillBalancer(10, 5), expected: 0.7 },
    { label: "3+3, priority 0 all ejected", build: () => spillBalancer(3, 3), expected: 0 },
    { label: "0+3, priority 0 removed", build: () => spillBalancer(0, 0), expected: 0 },
    { label: "3+3, priority 0 at 2/3 healthy", build: () => spillBalancer(3, 1), expected: (2 / 3) * 1.4 },
    { label: "3+3, priority 0 at 1/3 healthy", build: () => spillBalancer(3, 2), expected: (1 / 3) * 1.4 },
  ];
  for (const { label, build, expected } of cases) {
    it(`${label}: priority 0 gets ${(expected * 100).toFixed(1)} % ± 3σ`, () => {
      const balancer = build();
      const check = binomialCheck(priorityZeroCount(balancer), PICKS, expected, "priority 0");
      assert.ok(check.ok, check.message);
      assert.equal(balancer.state(T0).panic, false, "these cases are not in panic");
    });
  }

  it("never picks an ejected endpoint outside panic", () => {
    const balancer = spillBalancer(10, 5);
    const counts = countPicks(balancer, PICKS, (result) => result.endpoint.instance);
    for (let i = 0; i < 5; i++) assert.equal(counts.get(`a-${i}`), undefined, `a-${i} is ejected`);
    for (let i = 5; i < 10; i++) assert.ok((counts.get(`a-${i}`) ?? 0) > 0, `a-${i} is healthy`);
  });

  it("shows the priority loads and healthy fractions in its state", () => {
    const state = spillBalancer(10, 5).state(T0);
    assert.equal(state.pools.length, 1);
    const pool = state.pools[0]!;
    assert.equal(pool.release, null);
    assert.equal(pool.share, 1);
    assert.deepEqual(pool.healthyFractions, [0.5, 1]);
    assert.ok(Math.abs(pool.priorityLoads[0]! - 0.7) < 1e-9);
    assert.ok(Math.abs(pool.priorityLoads[1]! - 0.3) < 1e-9);
    assert.equal(pool.priorityLoads.length, 2);
  });

  it("moves traffic back to priority 0 when its ejections end", () => {
    const balancer = spillBalancer(3, 3);
    assert.equal(priorityZeroCount(balancer), 0);
    const later = countPicks(balancer, 1_000, (result) => result.priority, { now: T0 + 1_000 });
    assert.equal(later.get(0), 1_000);
  });

  it("puts zones that priorities do not list in one last priority", () => {
    const balancer = new Balancer(trafficSpec({ priorities: [["a"]] }));
    balancer.setEndpoints([...endpoints("a", 1, "a"), ...endpoints("x", 1, "x"), ...endpoints("y", 1, "y")]);
    const byInstance = new Map(balancer.state(T0).endpoints.map((e) => [e.instance, e.priority]));
    assert.deepEqual(Object.fromEntries(byInstance), { "a-0": 0, "x-0": 1, "y-0": 1 });
    // Zone a has everything while it is healthy.
    const counts = countPicks(balancer, 200, (result) => result.endpoint.zone);
    assert.deepEqual([...counts], [["a", 200]]);
  });

  it("treats the whole service as one priority when no priorities are listed", () => {
    const balancer = new Balancer(trafficSpec({ priorities: [] }));
    balancer.setEndpoints([...endpoints("a", 2, "a"), ...endpoints("b", 2, "b")]);
    const counts = countPicks(balancer, 4_000, (result) => result.endpoint.zone);
    const check = binomialCheck(counts.get("a") ?? 0, 4_000, 0.5, "zone a");
    assert.ok(check.ok, check.message);
  });

  it("re-prioritises the current endpoints when the settings change", () => {
    const balancer = new Balancer(trafficSpec());
    balancer.setEndpoints([...endpoints("a", 2, "a"), ...endpoints("b", 2, "b")]);
    balancer.setTraffic(trafficSpec({ priorities: [["b"], ["a"]] }));
    const result = picked(balancer.pick(T0, seededRandom(1), NOTHING, IDLE));
    assert.equal(result.endpoint.zone, "b");
    assert.equal(result.priority, 0);
  });
});
