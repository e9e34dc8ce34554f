import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { domainHealth, utilization } from "../../../src/decide/failover/capacityModel.ts";
import { instance } from "./fixtures.ts";

describe("utilization", () => {
  it("is load over capacity, above 1 when overloaded", () => {
    assert.equal(utilization(instance("api", "a", "z", { default: 60 })), 0.6);
    assert.equal(utilization(instance("api", "a", "z", { default: 150 })), 1.5);
  });

  it("is 0 for an idle instance without capacity and ∞ for a busy one", () => {
    assert.equal(utilization(instance("api", "a", "z", { capacity: 0 })), 0);
    assert.equal(
      utilization(instance("api", "a", "z", { capacity: 0, default: 1 })),
      Number.POSITIVE_INFINITY,
    );
  });
});

describe("domainHealth", () => {
  function zone(name: string, healthy: number, sick: number) {
    return [
      ...Array.from({ length: healthy }, (_, i) => instance("api", `${name}-ok-${i}`, name)),
      ...Array.from({ length: sick }, (_, i) =>
        instance("api", `${name}-sick-${i}`, name, { healthy: false }),
      ),
    ];
  }

  it("judges each zone by the share of its unhealthy instances, with the default thresholds", () => {
    const instances = [
      ...zone("a", 10, 0),
      ...zone("b", 9, 1),
      ...zone("c", 8, 2),
      ...zone("d", 2, 2),
      ...zone("e", 0, 3),
    ];
    const health = domainHealth(instances, ["a", "b", "c", "d", "e", "f"]);
    assert.deepEqual(
      health.map((h) => [h.zone, h.state, h.healthyInstances, h.totalInstances]),
      [
        ["a", "healthy", 10, 10],
        ["b", "healthy", 9, 10],
        ["c", "degraded", 8, 10],
        ["d", "down", 2, 4],
        ["e", "down", 0, 3],
        ["f", "healthy", 0, 0],
      ],
    );
    const reasons = Object.fromEntries(health.map((h) => [h.zone, h.reason]));
    assert.equal(reasons.a, "all 10 instances healthy");
    assert.equal(reasons.b, "1 of 10 instances unhealthy (10 %) < degraded threshold 20 %");
    assert.equal(reasons.c, "2 of 10 instances unhealthy (20 %) ≥ degraded threshold 20 %");
    assert.equal(reasons.d, "2 of 4 instances unhealthy (50 %) ≥ down threshold 50 %");
    assert.equal(reasons.e, "no healthy instance: 3 of 3 instances unhealthy (100 %)");
    assert.equal(reasons.f, "no instances placed here");
  });

  it("takes its thresholds from the options, and a zone with nothing healthy is down whatever they say", () => {
    const instances = [...zone("a", 3, 1), ...zone("b", 1, 1), ...zone("c", 0, 1)];
    const health = domainHealth(instances, ["a", "b", "c"], { downShare: 0.9, degradedShare: 0.3 });
    assert.deepEqual(
      health.map((h) => h.state),
      ["healthy", "degraded", "down"],
    );
  });

  it("keeps the order of the zones it is given and drops duplicates", () => {
    const health = domainHealth(zone("a", 1, 0), ["c", "a", "c"]);
    assert.deepEqual(
      health.map((h) => h.zone),
      ["c", "a"],
    );
  });
});
