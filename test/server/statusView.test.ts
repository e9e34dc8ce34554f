/**
 * The status document's zone headroom: per zone, what losing it now would do (static stability,
 * N−1), and the warning when some zone's loss pushes the survivors past their ceiling.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { capacityPicture } from "../../src/controller/capacityPicture.ts";
import { buildStatus, type StatusInputs, zoneHeadroom } from "../../src/server/statusView.ts";
import type { TrafficStats } from "../../src/traffic/stats/index.ts";
import { ABC, everywhere, service } from "../decide/failover/fixtures.ts";
import { makeFleet } from "../helpers/fleetFixture.ts";
import { allReady, NOW } from "../helpers/snapshotFixture.ts";

const THREE_ZONES = ABC.map((zone) => ({ zone, host: `host-${zone}` }));

function inputs(extra: Partial<StatusInputs> = {}): StatusInputs {
  const fleet = makeFleet({
    services: [{ name: "api", replicas: 3, placement: THREE_ZONES, capacity: { rps: 100 } }],
  });
  return {
    fleet,
    instances: allReady(fleet),
    pids: new Map(),
    slots: [],
    busy: [],
    openIncidents: [],
    controller: { pid: 1, startedAt: NOW - 60_000, apiPort: 7070, stateDir: "/tmp/x", now: NOW },
    ...extra,
  };
}

describe("status: headroom per zone", () => {
  test("three zones at 60 %: every zone's loss puts the survivors at 90 %, and the document warns", () => {
    const status = buildStatus(
      inputs({
        capacity: { services: [service("api", everywhere(ABC, { default: 60 }))], zones: ABC, skipped: [] },
      }),
    );
    assert.deepEqual(status.domains, [
      { zone: "zone-a", survivorPeakUtilization: 0.9, survivesLoss: false, headroomRps: -20 },
      { zone: "zone-b", survivorPeakUtilization: 0.9, survivesLoss: false, headroomRps: -20 },
      { zone: "zone-c", survivorPeakUtilization: 0.9, survivesLoss: false, headroomRps: -20 },
    ]);
    assert.equal(status.staticStability.ok, false);
    assert.equal(
      status.staticStability.warning,
      "the fleet cannot lose any one zone at current load (N−1) without pushing the survivors past their ceiling of 80 % " +
        "(zone-a: survivors at 90 %, short 20 rps; zone-b: survivors at 90 %, short 20 rps; zone-c: survivors at 90 %, short 20 rps)",
    );
  });

  test("at 40 % the fleet can lose any zone: positive headroom, no warning", () => {
    const status = buildStatus(
      inputs({
        capacity: { services: [service("api", everywhere(ABC, { default: 40 }))], zones: ABC, skipped: [] },
      }),
    );
    for (const d of status.domains) {
      assert.equal(d.survivorPeakUtilization, 0.6);
      assert.equal(d.survivesLoss, true);
      // 2 × 100 × 0.8 = 160 under the ceiling, 120 to carry.
      assert.equal(d.headroomRps, 40);
    }
    assert.deepEqual(status.staticStability, { ok: true, skipped: [] });
  });

  test("only the zones the fleet cannot lose are named", () => {
    // zone-a holds most of the capacity: losing it puts 250 rps on 200 (125 %); losing b or c, 62.5 %.
    const api = service("api", {
      "zone-a": { default: 150, capacity: 300 },
      "zone-b": { default: 50, capacity: 100 },
      "zone-c": { default: 50, capacity: 100 },
    });
    const { domains, staticStability } = zoneHeadroom({ services: [api], zones: ABC, skipped: [] });
    assert.deepEqual(
      domains.map((d) => [d.zone, d.survivesLoss]),
      [
        ["zone-a", false],
        ["zone-b", true],
        ["zone-c", true],
      ],
    );
    assert.equal(staticStability.ok, false);
    assert.match(staticStability.warning ?? "", /cannot lose zone-a at current load/);
    assert.doesNotMatch(staticStability.warning ?? "", /zone-b|zone-c/);
  });

  test("a loaded service left without survivors is null utilization (JSON has no Infinity)", () => {
    const lonely = service("db", { "zone-a": { default: 5 } });
    const { domains, staticStability } = zoneHeadroom({
      services: [lonely],
      zones: ["zone-a", "zone-b"],
      skipped: [],
    });
    assert.deepEqual(domains[0], {
      zone: "zone-a",
      survivorPeakUtilization: null,
      survivesLoss: false,
      headroomRps: -5,
    });
    assert.match(staticStability.warning ?? "", /zone-a: survivors at ∞ % \(none left\), short 5 rps/);
    // Survives the trip through the API.
    assert.deepEqual(JSON.parse(JSON.stringify(domains))[0].survivorPeakUtilization, null);
  });

  test("mixed ceilings are named as such", () => {
    const strict = service("api", everywhere(ABC, { default: 60 }), { ceiling: 0.7 });
    const loose = service("web", everywhere(ABC, { default: 10 }), { ceiling: 0.9 });
    const { staticStability } = zoneHeadroom({ services: [strict, loose], zones: ABC, skipped: [] });
    assert.match(staticStability.warning ?? "", /past their ceilings \(/);
  });

  test("without capacity data there is nothing to check: no domains, ok, and what was left out", () => {
    const none = buildStatus(inputs());
    assert.deepEqual(none.domains, []);
    assert.deepEqual(none.staticStability, { ok: true, skipped: [] });
    const skipped = [{ service: "api", reason: "no `capacity.rps` declared" }];
    assert.deepEqual(zoneHeadroom({ services: [], zones: ABC, skipped }), {
      domains: [],
      staticStability: { ok: true, skipped },
    });
  });

  test("the controller's capacity picture is what the status takes (measured load per instance)", () => {
    const base = inputs();
    // 60 req/s measured on each of the three instances, declared capacity 100 each.
    const stats = {
      window: () => ({ rps: 60 }),
      criticalityRates: () => ({ critical: 12, default: 30, sheddable: 18 }),
    } as unknown as TrafficStats;
    const picture = capacityPicture(base.fleet, base.instances, new Set(), stats);
    const status = buildStatus({ ...base, capacity: picture });
    assert.deepEqual(
      status.domains.map((d) => [d.zone, d.survivorPeakUtilization, d.survivesLoss]),
      [
        ["zone-a", 0.9, false],
        ["zone-b", 0.9, false],
        ["zone-c", 0.9, false],
      ],
    );
    // An instance being replaced (busy) is no survivor: losing zone-a leaves only zone-c's.
    const busy = capacityPicture(base.fleet, base.instances, new Set(["api-1"]), stats);
    const lossOfA = buildStatus({ ...base, capacity: busy }).domains[0]!;
    assert.equal(lossOfA.survivorPeakUtilization, 1.8);
  });
});
