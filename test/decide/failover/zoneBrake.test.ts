/**
 * The automation brakes' hook in the zone state machine: an automatic evacuation the safety rules
 * allow is asked of the brake last, and a hold starts nothing (asked again next pass); a refusal by
 * the safety rules never reaches the brake (it would count a failover that never was); a person's
 * evacuation never asks it (the API checked the pause).
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DomainHealth } from "../../../src/decide/failover/types.ts";
import {
  advanceZones,
  EMPTY_ZONE_CONTROL,
  startEvacuation,
} from "../../../src/decide/failover/zoneControl.ts";
import type { FailoverSpec } from "../../../src/spec/model.ts";
import { DEFAULT_FAILOVER } from "../../helpers/fleetFixture.ts";

const AUTO: FailoverSpec = { ...DEFAULT_FAILOVER, automatic: true, confirmMs: 0 };
const T0 = 1_800_000_000_000;

function zones(down: string[]): DomainHealth[] {
  return ["zone-a", "zone-b", "zone-c"].map((zone) => ({
    zone,
    state: down.includes(zone) ? "down" : "healthy",
    healthyInstances: down.includes(zone) ? 0 : 2,
    totalInstances: 2,
    reason: down.includes(zone) ? `${zone} is down` : `${zone} is fine`,
  }));
}

describe("the brake on automatic evacuations", () => {
  it("holds an evacuation the safety rules allow: nothing starts, no event, asked again next pass", () => {
    const asked: string[] = [];
    const brake = (zone: string) => {
      asked.push(zone);
      return "automation is paused";
    };
    const first = advanceZones(EMPTY_ZONE_CONTROL, { now: T0, zones: zones(["zone-a"]), spec: AUTO, brake });
    assert.deepEqual(first.state.shifts, []);
    assert.deepEqual(first.events, []);
    assert.equal(first.state.lastAutomatedAt, null, "a held failover does not start the min-interval");
    const second = advanceZones(first.state, { now: T0 + 250, zones: zones(["zone-a"]), spec: AUTO, brake });
    assert.deepEqual(second.state.shifts, []);
    assert.deepEqual(asked, ["zone-a", "zone-a"]);
  });

  it("lets it go once the brake does", () => {
    let paused = true;
    const brake = () => (paused ? "automation is paused" : null);
    const held = advanceZones(EMPTY_ZONE_CONTROL, { now: T0, zones: zones(["zone-a"]), spec: AUTO, brake });
    paused = false;
    const next = advanceZones(held.state, { now: T0 + 250, zones: zones(["zone-a"]), spec: AUTO, brake });
    assert.deepEqual(
      next.state.shifts.map((s) => [s.zone, s.phase, s.trigger]),
      [["zone-a", "evacuated", "automatic"]],
    );
    assert.equal(next.events[0]?.type, "failover.started");
  });

  it("is not asked when the safety rules refuse (never evacuate every zone)", () => {
    const asked: string[] = [];
    const all = zones(["zone-a", "zone-b", "zone-c"]);
    const state = {
      ...EMPTY_ZONE_CONTROL,
      shifts: ["zone-a", "zone-b"].map((zone) => ({
        zone,
        phase: "evacuated" as const,
        share: 0,
        trigger: "automatic" as const,
        reason: "down",
        startedAt: T0 - 600_000,
        lastStepAt: T0 - 600_000,
        failback: null,
      })),
    };
    advanceZones(state, {
      now: T0,
      zones: all,
      spec: AUTO,
      brake: (zone) => {
        asked.push(zone);
        return null;
      },
    });
    assert.deepEqual(asked, []);
  });

  it("is never asked for a person's evacuation", () => {
    const outcome = startEvacuation(EMPTY_ZONE_CONTROL, {
      domain: "zone-b",
      zones: zones([]),
      now: T0,
      spec: AUTO,
      automated: false,
      why: "operator: drill",
      brake: () => assert.fail("a manual evacuation asked the automation brake"),
    });
    assert.equal(outcome.decision.allowed, true);
    assert.equal(outcome.state.shifts.length, 1);
  });
});
