import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type ProtectedMember,
  type ProtectionInput,
  protectSurvivors,
  SHED_TARGET_OF_CEILING,
  type SpareSlot,
} from "../../../src/decide/failover/survivorProtection.ts";
import { seededRandom } from "../../helpers/seededRandom.ts";

const ZONES = ["zone-a", "zone-b", "zone-c"];

/** Slot `slot` of "api", placed round-robin over the three zones as `placementOf` does. */
function member(slot: number, serving = true): ProtectedMember {
  return { instance: `api-${slot}`, slot, zone: ZONES[slot % 3]!, serving };
}

function spare(...slots: number[]): SpareSlot[] {
  return slots.map((slot) => ({ slot, zone: ZONES[slot % 3]! }));
}

/**
 * "api": 6 replicas (slots 0..5, two per zone) of 100 rps each, ceiling 80 %, spare bank 6..11,
 * maxReplicas 12; no zone shifted and no demand unless a test says so.
 */
function input(overrides: Partial<ProtectionInput> = {}): ProtectionInput {
  return {
    service: "api",
    ceiling: 0.8,
    instanceCapacityRps: 100,
    maxReplicas: 12,
    demand: { critical: 0, default: 0, sheddable: 0 },
    members: [0, 1, 2, 3, 4, 5].map((slot) => member(slot)),
    zoneShares: {},
    spare: spare(6, 7, 8, 9, 10, 11),
    added: [],
    ...overrides,
  };
}

/** zone-a (slots 0 and 3) evacuated: 400 rps of serving capacity left in zone-b and zone-c. */
const A_OUT = { zoneShares: { "zone-a": 0 } };

function slots(list: readonly SpareSlot[]): number[] {
  return list.map((s) => s.slot);
}

describe("protectSurvivors: nothing to do", () => {
  it("neither sheds nor scales up while demand fits under the ceiling, up to exactly the ceiling", () => {
    for (const demand of [
      { critical: 0, default: 0, sheddable: 0 },
      { critical: 100, default: 100, sheddable: 100 },
      { critical: 160, default: 160, sheddable: 160 }, // 480 = 0.8 × 600
    ]) {
      const p = protectSurvivors(input({ demand }));
      assert.deepEqual(p.shed, { sheddable: 0, default: 0 });
      assert.deepEqual(p.addSlots, []);
      assert.deepEqual(p.reasons, []);
      assert.equal(p.servingCapacityRps, 600);
    }
    const atCeiling = protectSurvivors(
      input({ ...A_OUT, demand: { critical: 320, default: 0, sheddable: 0 } }),
    );
    assert.equal(atCeiling.projectedUtilization, 0.8);
    assert.deepEqual(atCeiling.addSlots, []);
    assert.deepEqual(atCeiling.shed, { sheddable: 0, default: 0 });
  });

  it("counts only serving members, each scaled by its zone's share", () => {
    const p = protectSurvivors(
      input({
        members: [member(0), member(1, false), member(2), member(3), member(4), member(5)],
        zoneShares: { "zone-a": 0.25, "zone-c": 0 },
        demand: { critical: 10, default: 20, sheddable: 30 },
      }),
    );
    // zone-a: 2 × 100 × 0.25; zone-b: slot 4 only (slot 1 is not serving); zone-c: share 0.
    assert.equal(p.servingCapacityRps, 150);
    assert.equal(p.demandRps, 60);
    assert.equal(p.projectedUtilization, 0.4);
  });
});

describe("protectSurvivors: scale-up first", () => {
  it("asks for ceil((demand / shedding target − capacity) / unit) instances, in zones that keep all their traffic", () => {
    // 560 rps on 400: 777.8 needed under the 72 % shedding target → 4 more instances.
    const p = protectSurvivors(input({ ...A_OUT, demand: { critical: 100, default: 300, sheddable: 160 } }));
    assert.deepEqual(slots(p.addSlots), [7, 8, 10, 11]);
    assert.deepEqual(
      p.addSlots.map((s) => s.zone),
      ["zone-b", "zone-c", "zone-b", "zone-c"],
    );
    assert.equal(
      p.reasons[0],
      "api: adds 4 instances in zone-b, zone-c: demand 560 rps on 400 rps of serving capacity is 140 % > ceiling 80 %; sized for 72 %, where shedding stops",
    );
    // Until they are ready, sheddable traffic is shed towards 72 % (0.9 × the 80 % ceiling), all
    // 160 of it; default only as far as the ceiling needs: 560 − 320 − 160 = 80 of 300.
    assert.equal(p.shed.sheddable, 1);
    assert.ok(Math.abs(p.shed.default - 80 / 300) < 1e-9, String(p.shed.default));
  });

  it("rounds the number of instances up, but not for float noise", () => {
    // 432 / 0.72 = 600 exactly: 2 instances, not 3 (and 432 > 320: over the ceiling).
    const exact = protectSurvivors(input({ ...A_OUT, demand: { critical: 432, default: 0, sheddable: 0 } }));
    assert.equal(exact.addSlots.length, 2);
    const over = protectSurvivors(input({ ...A_OUT, demand: { critical: 432.1, default: 0, sheddable: 0 } }));
    assert.equal(over.addSlots.length, 3);
  });

  it("prefers the zone with the fewest instances, then the lowest slot", () => {
    const p = protectSurvivors(
      input({
        ...A_OUT,
        // zone-c has three instances (slot 8 already added and serving), zone-b two.
        members: [0, 1, 2, 3, 4, 5, 8].map((slot) => member(slot)),
        added: [8],
        spare: spare(6, 7, 9, 10, 11),
        demand: { critical: 800, default: 0, sheddable: 0 },
      }),
    );
    // Capacity 500, 1111 needed → 7; zone-b (2) first, then ties go to the lowest slot.
    assert.deepEqual(slots(p.addSlots), [7, 10, 11]);
    assert.match(
      p.reasons[1]!,
      /needs 4 more instances but no free spare slot is left in a healthy zone that keeps its traffic/,
    );
  });

  it("does not ask twice for added instances that are not serving yet", () => {
    const demand = { critical: 500, default: 0, sheddable: 0 }; // 500 / 0.72 = 694: 3 wanted
    const starting = protectSurvivors(
      input({
        ...A_OUT,
        demand,
        members: [...input().members, member(7, false)],
        added: [7],
        spare: spare(6, 8, 9, 10, 11),
      }),
    );
    assert.deepEqual(slots(starting.addSlots), [8, 10]);
    // Added but not running at all yet (no member): counted as coming too.
    const notRunning = protectSurvivors(
      input({ ...A_OUT, demand, added: [7, 8, 10], spare: spare(6, 9, 11) }),
    );
    assert.deepEqual(notRunning.addSlots, []);
    assert.deepEqual(
      notRunning.reasons.filter((r) => r.includes("instance")),
      [],
    );
  });

  it("an added instance that serves is capacity, not a pending one", () => {
    const p = protectSurvivors(
      input({
        ...A_OUT,
        demand: { critical: 500, default: 0, sheddable: 0 },
        members: [...input().members, member(7)],
        added: [7],
        spare: spare(6, 8, 9, 10, 11),
      }),
    );
    assert.equal(p.servingCapacityRps, 500);
    assert.deepEqual(slots(p.addSlots), [8, 10]); // 694 − 500 → 2
  });

  it("stops at maxReplicas, counting members outside fully evacuated zones, and says so", () => {
    // 4 members count (zone-a's two are evacuated): room for 2 of the 3 wanted.
    const p = protectSurvivors(
      input({ ...A_OUT, maxReplicas: 6, demand: { critical: 500, default: 0, sheddable: 0 } }),
    );
    assert.deepEqual(slots(p.addSlots), [7, 8]);
    assert.equal(
      p.reasons[1],
      "api: needs 1 more instance but it is at maxReplicas 6; shedding covers the rest",
    );
    // A zone that is only partly shifted still counts.
    const partly = protectSurvivors(
      input({
        zoneShares: { "zone-a": 0.5 },
        maxReplicas: 6,
        demand: { critical: 500, default: 0, sheddable: 0 },
      }),
    );
    assert.deepEqual(partly.addSlots, []);
    assert.match(partly.reasons[0]!, /needs 2 more instances but it is at maxReplicas 6/);
  });

  it("counts added instances that are not running yet against maxReplicas", () => {
    // Round 1 took slots 7 and 8 (room 2 of the 3 wanted); they have not started yet.
    const p = protectSurvivors(
      input({
        ...A_OUT,
        maxReplicas: 6,
        demand: { critical: 500, default: 0, sheddable: 0 },
        added: [7, 8],
        spare: spare(6, 9, 10, 11),
      }),
    );
    assert.deepEqual(p.addSlots, [], "4 members + 2 coming = maxReplicas");
    assert.match(p.reasons.join("\n"), /needs 1 more instance but it is at maxReplicas 6/);
  });

  it("uses only free spare slots in zones that keep all their traffic", () => {
    const p = protectSurvivors(
      input({
        zoneShares: { "zone-a": 0, "zone-b": 0.5 },
        spare: spare(6, 7, 9, 10),
        demand: { critical: 500, default: 0, sheddable: 0 },
      }),
    );
    // Capacity 100 (b, half) + 200 (c) = 300; 625 needed → 4 wanted; zone-c, the only zone that
    // keeps all its traffic, has no free spare slot (zone-a's and zone-b's do not count).
    assert.deepEqual(p.addSlots, []);
    assert.match(p.reasons[0]!, /needs 4 more instances but no free spare slot is left in a healthy zone/);
  });

  it("never adds an instance in a failing zone, even before its evacuation is confirmed", () => {
    // zone-a failing but not shifted yet (its instances ejected: not serving); 400 rps of capacity.
    const p = protectSurvivors(
      input({
        members: [0, 1, 2, 3, 4, 5].map((slot) => member(slot, slot % 3 !== 0)),
        avoidZones: ["zone-a"],
        demand: { critical: 500, default: 0, sheddable: 0 },
      }),
    );
    assert.deepEqual(
      p.addSlots.map((s) => s.zone),
      ["zone-b", "zone-c", "zone-b"],
    );
  });

  it("keeps adding while shedding runs above the target, so shedding ends once the capacity is ready", () => {
    // 240 on 300 is exactly the 80 % ceiling: nothing to do from a standing start...
    const members = [member(1), member(4), member(7)];
    const calm = protectSurvivors(
      input({
        ...A_OUT,
        members,
        added: [7],
        spare: spare(8, 10, 11),
        demand: { critical: 240, default: 0, sheddable: 0 },
      }),
    );
    assert.deepEqual(calm.addSlots, []);
    // ...but while shedding towards 72 %, one more instance (240 / 0.72 = 333).
    const shedding = protectSurvivors(
      input({
        ...A_OUT,
        members,
        added: [7],
        spare: spare(8, 10, 11),
        wasShedding: true,
        demand: { critical: 240, default: 0, sheddable: 0 },
      }),
    );
    assert.deepEqual(slots(shedding.addSlots), [8]);
  });

  it("adds nothing when the spare bank is unavailable, and says why", () => {
    const p = protectSurvivors(
      input({
        ...A_OUT,
        spare: { unavailable: "a deploy of api uses its spare bank" },
        demand: { critical: 0, default: 500, sheddable: 0 },
      }),
    );
    assert.deepEqual(p.addSlots, []);
    assert.equal(p.reasons[0], "api: cannot add instances: a deploy of api uses its spare bank");
    assert.equal(p.shed.default, (500 - 320) / 500);
  });
});

describe("protectSurvivors: shedding", () => {
  /** One serving instance of 100 rps: capacity 100, 80 under the ceiling. */
  function single(demand: ProtectionInput["demand"], more: Partial<ProtectionInput> = {}): ProtectionInput {
    return input({ members: [member(1)], maxReplicas: 1, demand, ...more });
  }

  it("sheds sheddable down to 90 % of the ceiling, default only down to the ceiling, with exact shares", () => {
    assert.equal(SHED_TARGET_OF_CEILING, 0.9);
    // 120 = 24 critical + 60 default + 36 sheddable on 100, ceiling 80 %, target 72 %: sheddable
    // would go to 48 over the target → all 36; default only to the ceiling: 40 − 36 = 4 of 60.
    const p = protectSurvivors(single({ critical: 24, default: 60, sheddable: 36 }));
    assert.equal(p.shed.sheddable, 1);
    assert.equal(p.shed.default, 4 / 60);
    assert.equal(p.projectedUtilization, 1.2);
    assert.deepEqual(p.reasons.slice(-2), [
      "api: sheds 100 % of sheddable traffic (36 rps): demand 120 rps on 100 rps of serving capacity is 120 % > ceiling 80 %; shedding down to 72 % leaves room for retries and uneven spread",
      "api: sheds 6.7 % of default traffic (4 rps): demand 120 rps on 100 rps of serving capacity is 120 % > ceiling 80 %; sheddable traffic alone cannot bring it under the ceiling",
    ]);
  });

  it("starts at the ceiling, and once shedding goes on down to the target (hysteresis)", () => {
    // 78 rps on 100: under the 80 % ceiling, nothing shed...
    const under = protectSurvivors(single({ critical: 0, default: 48, sheddable: 30 }));
    assert.deepEqual(under.shed, { sheddable: 0, default: 0 });
    // ...but if the previous pass was shedding, it keeps shedding down to 72 %: 6 of 30 sheddable.
    const held = protectSurvivors(single({ critical: 0, default: 48, sheddable: 30 }, { wasShedding: true }));
    assert.deepEqual(held.shed, { sheddable: 6 / 30, default: 0 });
    // Under the target, shedding stops even after shedding.
    const done = protectSurvivors(single({ critical: 0, default: 48, sheddable: 20 }, { wasShedding: true }));
    assert.deepEqual(done.shed, { sheddable: 0, default: 0 });
  });

  it("leaves default alone when sheddable traffic covers the excess", () => {
    const p = protectSurvivors(single({ critical: 20, default: 40, sheddable: 60 }));
    assert.deepEqual(p.shed, { sheddable: 48 / 60, default: 0 });
  });

  it("never sheds critical traffic, and states the excess left", () => {
    const onlyCritical = protectSurvivors(single({ critical: 150, default: 0, sheddable: 0 }));
    assert.deepEqual(onlyCritical.shed, { sheddable: 0, default: 0 });
    assert.match(
      onlyCritical.reasons.at(-1)!,
      /^api: still 70 rps over the ceiling with only critical traffic left, and critical traffic is never shed$/,
    );
    const some = protectSurvivors(single({ critical: 100, default: 10, sheddable: 5 }));
    assert.deepEqual(some.shed, { sheddable: 1, default: 1 });
    assert.match(some.reasons.at(-1)!, /still 20 rps over the ceiling/);
  });

  it("does not shed a share below 0.5 %, and does not push it onto default either", () => {
    // Already shedding, 3 rps above the 720 rps target against 713 rps of sheddable: 0.42 %,
    // float-noise territory.
    const p = protectSurvivors(
      single(
        { critical: 0, default: 10, sheddable: 713 },
        { members: [member(1)], instanceCapacityRps: 1_000, wasShedding: true },
      ),
    );
    assert.equal(p.demandRps, 723);
    assert.deepEqual(p.shed, { sheddable: 0, default: 0 });
    assert.deepEqual(
      p.reasons.filter((r) => r.includes(" sheds ") || r.includes("over the ceiling")),
      [],
    );
    // The same tiny excess on default alone is not shed either.
    const onDefault = protectSurvivors(
      single(
        { critical: 0, default: 723, sheddable: 0 },
        { members: [member(1)], instanceCapacityRps: 1_000, wasShedding: true },
      ),
    );
    assert.deepEqual(onDefault.shed, { sheddable: 0, default: 0 });
  });

  it("with nothing serving, sheds all sheddable and default traffic and projects ∞", () => {
    const p = protectSurvivors(
      input({
        members: [0, 1, 2, 3, 4, 5].map((slot) => member(slot, false)),
        demand: { critical: 10, default: 20, sheddable: 30 },
      }),
    );
    assert.equal(p.servingCapacityRps, 0);
    assert.equal(p.projectedUtilization, Number.POSITIVE_INFINITY);
    assert.deepEqual(p.shed, { sheddable: 1, default: 1 });
    assert.match(p.reasons.join("\n"), /is ∞ % > ceiling 80 %/);
    assert.match(p.reasons.at(-1)!, /still 10 rps over the ceiling/);
    // No demand and no capacity is 0 %, not ∞.
    const idle = protectSurvivors(input({ members: [] }));
    assert.equal(idle.projectedUtilization, 0);
    assert.deepEqual(idle.reasons, []);
  });
});

describe("protectSurvivors: properties over random fleets", () => {
  it("never sheds critical, sheds the minimum, keeps shares in [0, 1] and respects the caps", () => {
    const next = seededRandom(20_240_601);
    const MIN_SHED = 0.005;
    for (let round = 0; round < 3_000; round++) {
      const unit = 10 + Math.floor(next() * 500);
      const ceiling = 0.5 + next() * 0.45;
      const replicas = 1 + Math.floor(next() * 6);
      const members: ProtectedMember[] = [];
      for (let slot = 0; slot < replicas; slot++) {
        if (next() < 0.9) members.push(member(slot, next() < 0.8));
      }
      const zoneShares: Record<string, number> = {};
      for (const zone of ZONES) {
        const roll = next();
        if (roll < 0.2) zoneShares[zone] = 0;
        else if (roll < 0.35) zoneShares[zone] = Math.round(next() * 4) / 4;
      }
      const spareSlots = spare(
        ...Array.from({ length: replicas }, (_, i) => replicas + i).filter(() => next() < 0.8),
      );
      const added = next() < 0.3 ? [replicas + replicas - 1] : [];
      const scale = unit * replicas * (0.2 + next() * 2);
      const demand = {
        critical: next() < 0.2 ? 0 : next() * scale * 0.4,
        default: next() < 0.2 ? 0 : next() * scale * 0.5,
        sheddable: next() < 0.3 ? 0 : next() * scale * 0.4,
      };
      const maxReplicas = replicas + Math.floor(next() * (replicas + 1));
      const case_ = {
        ...input(),
        instanceCapacityRps: unit,
        ceiling,
        members,
        zoneShares,
        spare: spareSlots.filter((s) => !added.includes(s.slot)),
        added,
        demand,
        maxReplicas,
      };
      const p = protectSurvivors(case_);
      const where = `round ${round}: ${JSON.stringify(case_)}`;

      assert.deepEqual(Object.keys(p.shed).sort(), ["default", "sheddable"], where);
      for (const share of [p.shed.sheddable, p.shed.default]) assert.ok(share >= 0 && share <= 1, where);

      const total = demand.critical + demand.default + demand.sheddable;
      const budget = ceiling * p.servingCapacityRps;
      // Shedding starts above the ceiling and aims at the target under it.
      const excess = total > budget ? total - SHED_TARGET_OF_CEILING * budget : 0;
      const shedRps = p.shed.sheddable * demand.sheddable + p.shed.default * demand.default;
      assert.ok(shedRps <= excess + 1e-5, `never sheds more than the excess; ${where}`);
      if (p.shed.default > 0) {
        assert.ok(
          p.shed.sheddable === 1 || demand.sheddable === 0,
          `default only after all sheddable; ${where}`,
        );
      }
      if (demand.sheddable + demand.default >= excess) {
        const tolerated = MIN_SHED * (demand.sheddable + demand.default);
        assert.ok(total - shedRps <= budget + tolerated + 1e-6, `under the ceiling after the shed; ${where}`);
      }

      // Scale-up: distinct free slots, in zones that keep all their traffic, within maxReplicas.
      const chosen = slots(p.addSlots);
      assert.equal(new Set(chosen).size, chosen.length, where);
      for (const slot of p.addSlots) {
        assert.ok(
          case_.spare.some((s) => s.slot === slot.slot),
          where,
        );
        assert.equal(zoneShares[slot.zone] ?? 1, 1, where);
      }
      const memberSlots = new Set(members.map((m) => m.slot));
      const counted =
        members.filter((m) => zoneShares[m.zone] !== 0).length +
        added.filter((s) => !memberSlots.has(s)).length;
      assert.ok(chosen.length === 0 || counted + chosen.length <= maxReplicas, `maxReplicas; ${where}`);
      if (total <= budget) assert.deepEqual(chosen, [], where);
    }
  });
});
