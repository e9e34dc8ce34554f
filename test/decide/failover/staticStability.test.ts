import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { requiredCapacityFactor, staticStability } from "../../../src/decide/failover/staticStability.ts";
import { ABC, everywhere, service } from "./fixtures.ts";

describe("staticStability", () => {
  it("three zones at 60 %: losing any one puts the survivors at 90 % > 80 % — not stable", () => {
    const headroom = staticStability([service("api", everywhere(ABC, { default: 60 }))], ABC);
    assert.deepEqual(headroom, [
      { zone: "zone-a", survivorPeakUtilization: 0.9, survivesLoss: false, headroomRps: -20 },
      { zone: "zone-b", survivorPeakUtilization: 0.9, survivesLoss: false, headroomRps: -20 },
      { zone: "zone-c", survivorPeakUtilization: 0.9, survivesLoss: false, headroomRps: -20 },
    ]);
  });

  it("with 1.5× the capacity (N/(N−1) for three zones) the same load survives the loss of any zone", () => {
    const headroom = staticStability([service("api", everywhere(ABC, { default: 60, capacity: 150 }))], ABC);
    for (const zone of headroom) {
      assert.equal(zone.survivorPeakUtilization, 0.6);
      assert.equal(zone.survivesLoss, true);
      // 2 × 150 × 0.8 = 240 under the ceiling, 180 to carry.
      assert.equal(zone.headroomRps, 60);
    }
  });

  it("spreads the load in proportion to the survivors' capacity and ignores unhealthy survivors", () => {
    const api = service("api", {
      "zone-a": { default: 100, capacity: 200 },
      "zone-b": { default: 50, capacity: 100 },
      "zone-c": { default: 0, capacity: 300, healthy: false },
    });
    const [lossOfA, lossOfB, lossOfC] = staticStability([api], ABC);
    assert.deepEqual(lossOfA, {
      zone: "zone-a",
      survivorPeakUtilization: 1.5,
      survivesLoss: false,
      headroomRps: -70,
    });
    assert.equal(lossOfB!.survivorPeakUtilization, 0.75);
    assert.equal(lossOfB!.survivesLoss, true);
    assert.equal(lossOfB!.headroomRps, 10);
    // zone-c serves nothing: losing it changes nothing, the others are at 50 %.
    assert.equal(lossOfC!.survivorPeakUtilization, 0.5);
  });

  it("reports the tightest service: one service's surplus does not hide another's shortfall", () => {
    const roomy = service("web", everywhere(ABC, { default: 10 }));
    const tight = service("api", everywhere(ABC, { default: 60 }));
    const [lossOfA] = staticStability([roomy, tight], ABC);
    assert.equal(lossOfA!.survivorPeakUtilization, 0.9);
    assert.equal(lossOfA!.survivesLoss, false);
    assert.equal(lossOfA!.headroomRps, -20);
  });

  it("a service that lives in the lost zone only has no survivors: ∞", () => {
    const lonely = service("db", { "zone-a": { default: 5 } });
    const [lossOfA, lossOfB] = staticStability([lonely], ["zone-a", "zone-b"]);
    assert.equal(lossOfA!.survivorPeakUtilization, Number.POSITIVE_INFINITY);
    assert.equal(lossOfA!.survivesLoss, false);
    assert.equal(lossOfA!.headroomRps, -5);
    assert.equal(lossOfB!.survivesLoss, true);
  });
});

describe("requiredCapacityFactor", () => {
  it("is N/(N−1)", () => {
    assert.equal(requiredCapacityFactor(3), 1.5);
    assert.equal(requiredCapacityFactor(2), 2);
    assert.equal(requiredCapacityFactor(5), 1.25);
  });

  it("is ∞ for one zone: nothing survives losing it", () => {
    assert.equal(requiredCapacityFactor(1), Number.POSITIVE_INFINITY);
    assert.equal(requiredCapacityFactor(0), Number.POSITIVE_INFINITY);
  });
});
