import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkFailoverAllowed, type FailoverRequest } from "../../../src/decide/failover/safetyRules.ts";
import type { DomainHealth } from "../../../src/decide/failover/types.ts";

function zones(...names: string[]): DomainHealth[] {
  return names.map((zone) => ({
    zone,
    state: "healthy",
    healthyInstances: 1,
    totalInstances: 1,
    reason: "ok",
  }));
}

const BASE: FailoverRequest = {
  domain: "zone-a",
  zones: zones("zone-a", "zone-b", "zone-c"),
  evacuated: [],
  lastAutomatedAt: null,
  now: 1_000_000,
  minIntervalMs: 300_000,
  automated: true,
};

describe("checkFailoverAllowed", () => {
  it("allows an automated evacuation when every rule holds", () => {
    assert.deepEqual(checkFailoverAllowed(BASE), {
      allowed: true,
      reason: "zone-a may be evacuated: zone-b, zone-c keep traffic",
    });
  });

  it("never evacuates every zone, even with a manual override", () => {
    const lastOne = { ...BASE, evacuated: ["zone-b", "zone-c"] };
    for (const request of [lastOne, { ...lastOne, automated: false, override: { reason: "drill" } }]) {
      const decision = checkFailoverAllowed(request);
      assert.equal(decision.allowed, false);
      assert.equal(decision.rule, "never-evacuate-all");
      assert.match(decision.reason, /would leave no zone with traffic \(zone-b, zone-c already evacuated\)/);
    }
    const single = checkFailoverAllowed({ ...BASE, zones: zones("zone-a") });
    assert.equal(single.rule, "never-evacuate-all");
  });

  it("allows one automated evacuation at a time", () => {
    const decision = checkFailoverAllowed({ ...BASE, evacuated: ["zone-b"] });
    assert.equal(decision.allowed, false);
    assert.equal(decision.rule, "one-at-a-time");
    assert.equal(decision.reason, "zone-b is already evacuated; one evacuation at a time");
    // Re-evacuating the zone that is already evacuated is not a second evacuation.
    assert.equal(checkFailoverAllowed({ ...BASE, evacuated: ["zone-a"] }).allowed, true);
  });

  it("keeps a minimum interval between automated failovers", () => {
    const early = checkFailoverAllowed({ ...BASE, lastAutomatedAt: BASE.now - 120_000 });
    assert.equal(early.allowed, false);
    assert.equal(early.rule, "min-interval");
    assert.equal(
      early.reason,
      "the last automated failover was 2 min ago, the minimum interval is 5 min (3 min to go)",
    );
    assert.equal(checkFailoverAllowed({ ...BASE, lastAutomatedAt: BASE.now - 300_000 }).allowed, true);
  });

  it("holds a manual request without an override to the same rules, and says how to override", () => {
    const decision = checkFailoverAllowed({ ...BASE, automated: false, evacuated: ["zone-b"] });
    assert.equal(decision.rule, "one-at-a-time");
    assert.match(decision.reason, /a manual request may override this with a reason/);
    const blank = checkFailoverAllowed({
      ...BASE,
      automated: false,
      evacuated: ["zone-b"],
      override: { reason: "  " },
    });
    assert.equal(blank.allowed, false);
  });

  it("lets a manual override with a reason bypass one-at-a-time and min-interval, and records the reason", () => {
    const decision = checkFailoverAllowed({
      ...BASE,
      automated: false,
      evacuated: ["zone-b"],
      lastAutomatedAt: BASE.now - 1_000,
      override: { reason: "zone-a's power is failing (INC-42)" },
    });
    assert.equal(decision.allowed, true);
    assert.equal(decision.rule, undefined);
    assert.equal(
      decision.reason,
      'zone-a may be evacuated: manual override "zone-a\'s power is failing (INC-42)" bypasses one-at-a-time (zone-b is already evacuated; one evacuation at a time) and min-interval (the last automated failover was 1 s ago, the minimum interval is 5 min (4 min 59 s to go)); zone-c keeps traffic',
    );
  });

  it("ignores an override on an automated request", () => {
    const decision = checkFailoverAllowed({
      ...BASE,
      evacuated: ["zone-b"],
      override: { reason: "because" },
    });
    assert.equal(decision.allowed, false);
    assert.equal(decision.rule, "one-at-a-time");
    assert.match(decision.reason, /automation cannot use one/);
  });

  it("refuses a zone the fleet does not have", () => {
    const decision = checkFailoverAllowed({ ...BASE, domain: "zone-x" });
    assert.equal(decision.allowed, false);
    assert.equal(decision.rule, undefined);
    assert.match(decision.reason, /zone-x is not a zone of this fleet/);
  });
});
