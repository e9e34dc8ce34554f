import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { planFailover } from "../../../src/decide/failover/planFailover.ts";
import type { FailoverPlan, FailoverStep } from "../../../src/decide/failover/types.ts";
import { HomeostatError } from "../../../src/errors.ts";
import { ABC, everywhere, instance, service } from "./fixtures.ts";

/** instance → utilization in %, to 0.01 %. */
function utilizations(step: FailoverStep): Record<string, number> {
  return Object.fromEntries(
    step.projected.map((p) => [p.instance, Math.round(p.utilization * 10_000) / 100]),
  );
}

function shedOf(step: FailoverStep): Record<string, number> {
  return Object.fromEntries(step.shed.map((s) => [`${s.service}/${s.criticality}`, s.rps]));
}

function assertRps(actual: number | undefined, expected: number): void {
  assert.ok(
    actual !== undefined && Math.abs(actual - expected) <= 0.01,
    `expected ${expected} rps, got ${actual}`,
  );
}

function step(plan: FailoverPlan, index: number): FailoverStep {
  const found = plan.steps.find((s) => s.index === index);
  assert.ok(found, `step ${index}`);
  return found;
}

describe("planFailover: projected utilization per step", () => {
  it("moves 25 % of the failed zone's load per step, spread evenly over equal targets", () => {
    const plan = planFailover({
      domain: "zone-a",
      services: [service("api", everywhere(ABC, { default: 40 }))],
    });
    assert.deepEqual(plan.targets, ["zone-b", "zone-c"]);
    assert.deepEqual(
      plan.steps.map((s) => s.shiftedPercent),
      [25, 50, 75, 100],
    );
    // zone-a's 40 rps: 10 rps per step, 5 to each target of 100 rps.
    assert.deepEqual(
      plan.steps.map((s) => utilizations(s)),
      [
        { "api-zone-b": 45, "api-zone-c": 45 },
        { "api-zone-b": 50, "api-zone-c": 50 },
        { "api-zone-b": 55, "api-zone-c": 55 },
        { "api-zone-b": 60, "api-zone-c": 60 },
      ],
    );
    assert.equal(plan.feasible, true);
    assert.ok(plan.steps.every((s) => s.withinCeiling && s.addInstances.length === 0 && s.shed.length === 0));
    assert.equal(step(plan, 4).peakUtilization, 0.6);
    assert.ok(step(plan, 1).reasons.includes("zone-b at 45 % after moving 25 % of zone-a's load"));
    assert.match(
      plan.summary,
      /^moves zone-a's load to zone-b, zone-c in 4 steps of 25 %, peak 60 % within the ceiling$/,
    );
  });

  it("spreads moved load in proportion to spare capacity under the ceiling, not evenly", () => {
    const plan = planFailover({
      domain: "zone-a",
      services: [
        service("api", { "zone-a": { default: 40 }, "zone-b": { default: 20 }, "zone-c": { default: 60 } }),
      ],
    });
    // Spare under 80 %: b 60, c 20 (3 : 1). Step 1 moves 10 → b +7.5, c +2.5; step 4 moves 40 → b +30, c +10.
    assert.deepEqual(utilizations(step(plan, 1)), { "api-zone-b": 27.5, "api-zone-c": 62.5 });
    assert.deepEqual(utilizations(step(plan, 4)), { "api-zone-b": 50, "api-zone-c": 70 });
    assert.equal(plan.feasible, true);
  });

  it("takes steps of any size, the last one capped at 100 %", () => {
    const plan = planFailover({
      domain: "zone-a",
      stepPercent: 40,
      services: [service("api", everywhere(ABC, { default: 40 }))],
    });
    assert.deepEqual(
      plan.steps.map((s) => [s.index, s.shiftedPercent]),
      [
        [1, 40],
        [2, 80],
        [3, 100],
      ],
    );
    assert.deepEqual(utilizations(step(plan, 1)), { "api-zone-b": 48, "api-zone-c": 48 });
  });

  it("refuses a step that is not a percentage", () => {
    for (const stepPercent of [0, -5, 101, Number.NaN]) {
      assert.throws(
        () => planFailover({ domain: "zone-a", stepPercent, services: [] }),
        (error: unknown) => error instanceof HomeostatError && error.code === "HS_BAD_REQUEST",
      );
    }
  });

  it("has nothing to move from a zone where nothing runs", () => {
    const plan = planFailover({
      domain: "zone-x",
      services: [service("api", everywhere(ABC, { default: 40 }))],
    });
    assert.equal(plan.feasible, true);
    assert.deepEqual(plan.steps, []);
    assert.match(plan.summary, /nothing runs in zone-x/);
  });
});

describe("planFailover: scale-up before shedding", () => {
  it("adds an instance when a step would pass the ceiling, and sheds nothing when that suffices", () => {
    const plan = planFailover({
      domain: "zone-a",
      services: [
        service("api", everywhere(ABC, { critical: 20, default: 20, sheddable: 20 }), { maxReplicas: 4 }),
      ],
    });
    // 60 rps move; b and c have 20 rps spare each (40 in all).
    assert.deepEqual(utilizations(step(plan, 1)), { "api-zone-b": 67.5, "api-zone-c": 67.5 });
    assert.deepEqual(utilizations(step(plan, 2)), { "api-zone-b": 75, "api-zone-c": 75 });
    // Step 3 moves 45 > 40: without help both would be at 80 % + 5/200 = 82.5 %. One instance (80 rps under the
    // ceiling) is enough; b and c have one each, so the tie goes to zone-b. Spare is now 20 + 20 + 80 = 120.
    const third = step(plan, 3);
    assert.deepEqual(third.addInstances, [
      {
        service: "api",
        zone: "zone-b",
        count: 1,
        reason: "adds 1 instance of api in zone-b: projected 82.5 % > ceiling 80 %",
      },
    ]);
    assert.deepEqual(third.shed, []);
    assert.deepEqual(utilizations(third), { "api-zone-b": 67.5, "api-new-1": 30, "api-zone-c": 67.5 });
    assert.deepEqual(
      third.projected.map((p) => [p.instance, p.zone]),
      [
        ["api-new-1", "zone-b"],
        ["api-zone-b", "zone-b"],
        ["api-zone-c", "zone-c"],
      ],
    );
    // The added instance stays: step 4 moves 60 over 120 spare, nothing more to add.
    const fourth = step(plan, 4);
    assert.deepEqual(fourth.addInstances, []);
    assert.deepEqual(utilizations(fourth), { "api-zone-b": 70, "api-new-1": 40, "api-zone-c": 70 });
    assert.equal(plan.feasible, true);
    assert.match(plan.summary, /adds 1 instance \(1 of api in zone-b\)/);
  });

  it("adds as many instances as the overflow needs, at once", () => {
    const plan = planFailover({
      domain: "zone-a",
      stepPercent: 100,
      services: [
        service("api", everywhere(ABC, { default: 80 }), { maxReplicas: 10, instanceCapacityRps: 50 }),
      ],
    });
    // 80 rps move, no spare anywhere; an added instance takes 40 rps under the ceiling → 2.
    const only = step(plan, 1);
    assert.deepEqual(
      only.addInstances.map((a) => [a.zone, a.count]),
      [
        ["zone-b", 1],
        ["zone-c", 1],
      ],
    );
    assert.match(only.addInstances[0]!.reason, /projected 120 % > ceiling 80 %/);
    assert.deepEqual(utilizations(only), {
      "api-new-1": 80,
      "api-zone-b": 80,
      "api-new-2": 80,
      "api-zone-c": 80,
    });
    assert.equal(only.withinCeiling, true);
  });

  it("spreads added instances over the target zones, fewest first", () => {
    const api = service("api", {}, { maxReplicas: 10 });
    api.instances = [
      instance("api", "api-a", "zone-a", { default: 240, capacity: 300 }),
      instance("api", "api-b1", "zone-b", { default: 80 }),
      instance("api", "api-b2", "zone-b", { default: 80 }),
      instance("api", "api-c", "zone-c", { default: 80 }),
    ];
    // zone-d has no api yet, but is healthy (web runs there): a target, and the emptiest.
    const web = service("web", { "zone-d": { default: 10 } });
    const plan = planFailover({ domain: "zone-a", stepPercent: 100, services: [web, api] });
    assert.deepEqual(plan.targets, ["zone-b", "zone-c", "zone-d"]);
    // 240 rps, 80 per added instance → 3: zone-d (0), then zone-c (1, before zone-d's 1 by name), then zone-d (1).
    assert.deepEqual(
      step(plan, 1).addInstances.map((a) => [a.service, a.zone, a.count]),
      [
        ["api", "zone-c", 1],
        ["api", "zone-d", 2],
      ],
    );
    assert.equal(plan.feasible, true);
  });

  it("counts every instance outside the failed zone against maxReplicas, unhealthy ones too", () => {
    const api = service("api", {}, { maxReplicas: 4 });
    api.instances = [
      instance("api", "api-a", "zone-a", { sheddable: 80 }),
      instance("api", "api-b", "zone-b", { sheddable: 60 }),
      instance("api", "api-b-sick", "zone-b", { healthy: false }),
      instance("api", "api-c", "zone-c", { sheddable: 60 }),
    ];
    const plan = planFailover({ domain: "zone-a", stepPercent: 100, services: [api] });
    // 80 move, 40 spare: 40 over, wants 1 instance; 3 exist outside zone-a, maxReplicas 4 → 1 allowed. It goes
    // to zone-b or zone-c by healthy count: 1 each, so zone-b. The sick instance takes nothing.
    const only = step(plan, 1);
    assert.deepEqual(
      only.addInstances.map((a) => [a.zone, a.count]),
      [["zone-b", 1]],
    );
    assert.ok(!only.projected.some((p) => p.instance === "api-b-sick"));
    assert.deepEqual(only.shed, []);
  });
});

describe("planFailover: shedding", () => {
  it("sheds sheddable traffic only after the scale-up is exhausted, the exact minimum", () => {
    const plan = planFailover({
      domain: "zone-a",
      services: [
        service("api", everywhere(ABC, { critical: 30, default: 30, sheddable: 15 }), {
          maxReplicas: 3,
          instanceCapacityRps: 50,
        }),
      ],
    });
    // 75 rps move; spare b 5 + c 5. Step 1 moves 18.75: 8.75 over → 1 instance (40 under the ceiling), the only
    // one maxReplicas 3 allows. Spare is now 50.
    const first = step(plan, 1);
    assert.equal(first.addInstances.length, 1);
    assert.match(
      first.addInstances[0]!.reason,
      /^adds 1 instance of api in zone-b: projected 84\.4 % > ceiling 80 %$/,
    );
    assert.deepEqual(first.shed, []);
    assert.equal(step(plan, 2).shed.length, 0);
    // Step 3 moves 56.25 > 50: 6.25 over with nothing left to add → shed 6.25 sheddable. Unshed, every target
    // would be at 80 % + 6.25/250 = 82.5 %.
    const third = step(plan, 3);
    assert.deepEqual(third.addInstances, []);
    assert.deepEqual(shedOf(third), { "api/sheddable": 6.25 });
    assert.equal(
      third.shed[0]!.reason,
      "sheds 6.25 rps of sheddable api traffic: projected 82.5 % > ceiling 80 % and api is at maxReplicas 3",
    );
    assert.deepEqual(utilizations(third), { "api-new-1": 80, "api-zone-b": 80, "api-zone-c": 80 });
    // Step 4 moves 75: 25 over.
    assertRps(shedOf(step(plan, 4))["api/sheddable"], 25);
    assert.equal(plan.feasible, true);
    assert.ok(plan.steps.every((s) => s.peakUtilization <= 0.8 + 1e-9));
    assert.match(plan.summary, /sheds up to 25 rps of sheddable traffic/);
  });

  it("says 'still N % after scale-up' when the instances it could add were not enough", () => {
    const plan = planFailover({
      domain: "zone-a",
      stepPercent: 100,
      services: [
        service("api", everywhere(ABC, { default: 40, sheddable: 40 }), {
          maxReplicas: 3,
          instanceCapacityRps: 50,
        }),
      ],
    });
    // 80 move, no spare: 2 instances wanted, 1 allowed (40 under the ceiling), 40 over on 250 rps → 96 %.
    const only = step(plan, 1);
    assert.equal(only.addInstances[0]!.count, 1);
    assert.equal(only.shed[0]!.reason, "sheds 40 rps of sheddable api traffic: still 96 % after scale-up");
    assert.deepEqual(utilizations(only), { "api-new-1": 80, "api-zone-b": 80, "api-zone-c": 80 });
  });

  it("sheds default traffic only once all sheddable traffic is shed, and never critical", () => {
    const plan = planFailover({
      domain: "zone-a",
      services: [
        service("api", everywhere(ABC, { critical: 30, default: 40, sheddable: 5 }), { maxReplicas: 2 }),
      ],
    });
    // 75 move, 10 spare, nothing to add. Sheddable at step k: 5 + 5 on the targets + k/4 × 5 moved.
    const expected = [
      { sheddable: 8.75, default: 0 }, // 18.75 − 10 over; 11.25 sheddable available
      { sheddable: 12.5, default: 15 }, // 37.5 − 10 = 27.5 over
      { sheddable: 13.75, default: 32.5 }, // 56.25 − 10 = 46.25 over
      { sheddable: 15, default: 50 }, // 75 − 10 = 65 over
    ];
    plan.steps.forEach((s, i) => {
      const shed = shedOf(s);
      assertRps(shed["api/sheddable"], expected[i]!.sheddable);
      if (expected[i]!.default === 0) assert.equal(shed["api/default"], undefined);
      else assertRps(shed["api/default"], expected[i]!.default);
      assert.deepEqual(
        s.shed.map((x) => x.criticality),
        expected[i]!.default === 0 ? ["sheddable"] : ["sheddable", "default"],
      );
      assert.ok(s.withinCeiling);
    });
    assert.equal(
      step(plan, 2).shed[1]!.reason,
      "sheds 15 rps of default api traffic: shedding 12.5 rps of sheddable traffic is not enough",
    );
    assert.equal(plan.feasible, true);
  });

  it("is infeasible when only critical traffic is left, and says by how much it is short", () => {
    const plan = planFailover({
      domain: "zone-a",
      services: [
        service("api", everywhere(ABC, { critical: 60, default: 10, sheddable: 5 }), { maxReplicas: 2 }),
      ],
    });
    // Step 4: 65 over; sheddable 15 and default 30 can go; 20 rps of critical traffic would be left over.
    const fourth = step(plan, 4);
    assert.deepEqual(shedOf(fourth), { "api/sheddable": 15, "api/default": 30 });
    assert.equal(fourth.withinCeiling, false);
    assert.ok(
      fourth.reasons.includes(
        "api is short 20 rps: only critical traffic is left to shed, and critical traffic is never shed",
      ),
    );
    // The 20 rps that cannot go land above the ceiling, in proportion to capacity: +10 % each.
    assert.deepEqual(utilizations(fourth), { "api-zone-b": 90, "api-zone-c": 90 });
    assert.ok(
      fourth.reasons.includes("zone-b at 90 % after moving 100 % of zone-a's load (above the ceiling)"),
    );
    assert.ok(!fourth.shed.some((s) => s.criticality === "critical"));
    // Step 1 still fits: 8.75 over, 11.25 sheddable.
    assert.equal(step(plan, 1).withinCeiling, true);
    assert.equal(plan.feasible, false);
    assert.match(plan.summary, /^infeasible: api is short 20 rps at step 4 \(100 %\)/);
  });

  it("is infeasible with an all-critical overflow and no room to grow", () => {
    const plan = planFailover({
      domain: "zone-a",
      services: [service("api", everywhere(ABC, { critical: 75 }), { maxReplicas: 2 })],
    });
    assert.deepEqual(step(plan, 1).shed, []);
    assert.equal(step(plan, 1).withinCeiling, false);
    assert.match(plan.summary, /api is short 65 rps at step 4/);
    assert.equal(step(plan, 4).peakUtilization, 1.125);
  });

  it("sheds a target's own excess when it is above the ceiling before anything moves", () => {
    const plan = planFailover({
      domain: "zone-a",
      stepPercent: 100,
      services: [
        service("api", {
          "zone-a": { default: 20 },
          "zone-b": { default: 70, sheddable: 20 },
          "zone-c": { default: 40 },
        }),
      ],
    });
    // zone-b is 10 rps over already and has no spare: zone-c takes all 20 moved; zone-b sheds its 10.
    const only = step(plan, 1);
    assert.deepEqual(only.addInstances, []);
    assert.deepEqual(shedOf(only), { "api/sheddable": 10 });
    assert.match(
      only.shed[0]!.reason,
      /some targets already serve above the ceiling 80 % before anything moves$/,
    );
    assert.deepEqual(utilizations(only), { "api-zone-b": 80, "api-zone-c": 60 });
    assert.equal(plan.feasible, true);
  });

  it("handles services independently, each against its own ceiling", () => {
    const plan = planFailover({
      domain: "zone-a",
      stepPercent: 100,
      services: [
        service("web", everywhere(ABC, { default: 50 }), { ceiling: 0.9 }),
        service("api", everywhere(ABC, { default: 40 })),
      ],
    });
    // web: 50 move into 40 + 40 spare under 90 % → 75 %; api: 40 into 40 + 40 → 60 %.
    assert.deepEqual(utilizations(step(plan, 1)), {
      "api-zone-b": 60,
      "web-zone-b": 75,
      "api-zone-c": 60,
      "web-zone-c": 75,
    });
    assert.deepEqual(
      step(plan, 1).projected.map((p) => p.instance),
      ["api-zone-b", "web-zone-b", "api-zone-c", "web-zone-c"],
    );
    assert.ok(step(plan, 1).reasons.includes("zone-b at 75 % after moving 100 % of zone-a's load"));
  });
});

describe("planFailover: targets", () => {
  it("never targets zones that share the failed zone's fate, nor adds instances there", () => {
    const plan = planFailover({
      domain: "zone-a",
      sharesFateWith: ["zone-b"],
      services: [service("api", everywhere(ABC, { default: 50 }), { maxReplicas: 4 })],
    });
    assert.deepEqual(plan.targets, ["zone-c"]);
    for (const s of plan.steps) {
      assert.ok(s.projected.every((p) => p.zone === "zone-c"));
      assert.ok(s.addInstances.every((a) => a.zone === "zone-c"));
    }
    // Everything goes to zone-c's 30 rps of spare: 62.5 %, 75 %, then 37.5 > 30 → one instance in zone-c.
    assert.deepEqual(utilizations(step(plan, 1)), { "api-zone-c": 62.5 });
    assert.deepEqual(utilizations(step(plan, 2)), { "api-zone-c": 75 });
    assert.deepEqual(
      step(plan, 3).addInstances.map((a) => [a.zone, a.count]),
      [["zone-c", 1]],
    );
    assert.match(plan.summary, /zone-b excluded \(shares zone-a's fate\)/);
  });

  it("never moves load onto unhealthy instances", () => {
    const plan = planFailover({
      domain: "zone-a",
      services: [
        service("api", {
          "zone-a": { default: 40 },
          "zone-b": { default: 0, healthy: false },
          "zone-c": { default: 20 },
        }),
      ],
    });
    assert.deepEqual(plan.targets, ["zone-c"]);
    assert.deepEqual(utilizations(step(plan, 4)), { "api-zone-c": 60 });
  });

  it("is infeasible when no healthy zone is left to take the load", () => {
    const plan = planFailover({
      domain: "zone-a",
      sharesFateWith: ["zone-b", "zone-c"],
      services: [service("api", everywhere(ABC, { critical: 10, sheddable: 10 }), { maxReplicas: 9 })],
    });
    assert.deepEqual(plan.targets, []);
    assert.equal(plan.feasible, false);
    // The sheddable part of the moved load is shed; the critical part has nowhere to go.
    assert.deepEqual(shedOf(step(plan, 4)), { "api/sheddable": 10 });
    assert.equal(step(plan, 4).peakUtilization, Number.POSITIVE_INFINITY);
    assert.match(
      plan.summary,
      /^infeasible: no healthy zone outside zone-a can take its load; api is short 10 rps/,
    );
  });

  it("is deterministic: the order of the input does not matter", () => {
    const make = () => [
      service("web", everywhere(ABC, { default: 70, sheddable: 5 }), { maxReplicas: 4 }),
      service("api", everywhere(ABC, { critical: 30, default: 40 }), {
        maxReplicas: 5,
        instanceCapacityRps: 60,
      }),
    ];
    const forward = planFailover({ domain: "zone-b", services: make() });
    const reversed = make()
      .reverse()
      .map((s) => ({ ...s, instances: [...s.instances].reverse() }));
    assert.deepEqual(planFailover({ domain: "zone-b", services: reversed }), forward);
  });
});
