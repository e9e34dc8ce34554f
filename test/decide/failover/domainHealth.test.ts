import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { domainHealth, type ZoneMember } from "../../../src/decide/failover/domainHealth.ts";
import { fraction } from "../../../src/spec/fraction.ts";
import type { FailoverSpec } from "../../../src/spec/model.ts";
import { DEFAULT_FAILOVER } from "../../helpers/fleetFixture.ts";

/** `total` members of `zone`, the first `failing` of them ejected. */
function zoneOf(zone: string, total: number, failing: number): ZoneMember[] {
  return Array.from({ length: total }, (_, i) => ({
    instance: `api-${zone}-${i}`,
    zone,
    problem: i < failing ? "ejected by the data plane" : null,
  }));
}

/** The state of one zone of `total` members with `failing` failing, under `spec`. */
function stateOf(
  total: number,
  failing: number,
  spec: Pick<FailoverSpec, "downShare" | "degradedShare"> = DEFAULT_FAILOVER,
): string {
  return domainHealth(["zone-a"], zoneOf("zone-a", total, failing), spec)[0]!.state;
}

describe("domainHealth", () => {
  it("is degraded from degradedShare and down from downShare, both boundaries included", () => {
    // Defaults: degraded at 20 %, down at 50 %.
    const states = Array.from({ length: 11 }, (_, failing) => stateOf(10, failing));
    assert.deepEqual(states, [
      "healthy",
      "healthy",
      "degraded", // 2 of 10 = 20 % exactly
      "degraded",
      "degraded",
      "down", // 5 of 10 = 50 % exactly
      "down",
      "down",
      "down",
      "down",
      "down",
    ]);
    assert.equal(stateOf(2, 1), "down", "1 of 2 is 50 %");
    assert.equal(stateOf(1, 1), "down");
    assert.equal(stateOf(1, 0), "healthy");
  });

  it("meets boundaries that are not round in binary exactly", () => {
    const spec = { downShare: 0.6, degradedShare: 0.3 };
    assert.equal(stateOf(10, 3, spec), "degraded", "3 / 10 ≥ 0.3");
    assert.equal(stateOf(10, 2, spec), "healthy");
    assert.equal(stateOf(5, 3, spec), "down", "3 / 5 ≥ 0.6");
    assert.equal(stateOf(10, 5, spec), "degraded");
    assert.equal(stateOf(3, 1, { downShare: 1, degradedShare: 1 / 3 }), "degraded");
    assert.equal(stateOf(3, 2, { downShare: 1, degradedShare: 1 / 3 }), "degraded", "down needs all of them");
    assert.equal(stateOf(3, 3, { downShare: 1, degradedShare: 1 / 3 }), "down");
  });

  it("agrees with exact integer arithmetic for every percentage a fleet file can write", () => {
    // The loader turns "30%" into 30 / 100; k of n failing is down exactly when 100 k ≥ 30 n.
    for (let percent = 1; percent <= 100; percent++) {
      const spec = { downShare: fraction(`${percent}%`), degradedShare: fraction(`${percent}%`) };
      for (let total = 1; total <= 25; total++) {
        for (let failing = 0; failing <= total; failing++) {
          const expected = failing * 100 >= percent * total ? "down" : "healthy";
          assert.equal(stateOf(total, failing, spec), expected, `${failing} of ${total} at ${percent} %`);
        }
      }
    }
  });

  it("reports every zone asked for, in order, with its counts; a zone without members is healthy", () => {
    const members = [...zoneOf("zone-c", 4, 1), ...zoneOf("zone-a", 2, 2), ...zoneOf("zone-x", 3, 3)];
    const zones = domainHealth(["zone-a", "zone-b", "zone-c"], members, DEFAULT_FAILOVER);
    assert.deepEqual(
      zones.map((z) => [z.zone, z.state, z.healthyInstances, z.totalInstances]),
      [
        ["zone-a", "down", 0, 2],
        ["zone-b", "healthy", 0, 0],
        ["zone-c", "degraded", 3, 4],
      ],
    );
    assert.equal(zones[1]!.reason, "no instance to judge");
  });

  it("says why: all healthy, or the failing instances by name (three at most) and how many more", () => {
    const reason = (members: ZoneMember[]) => domainHealth(["zone-a"], members, DEFAULT_FAILOVER)[0]!.reason;
    assert.equal(reason(zoneOf("zone-a", 1, 0)), "its 1 instance is healthy");
    assert.equal(reason(zoneOf("zone-a", 3, 0)), "all 3 instances healthy");
    assert.equal(
      reason(zoneOf("zone-a", 1, 1)),
      "its 1 instance is failing (api-zone-a-0: ejected by the data plane)",
    );
    assert.equal(
      reason([
        { instance: "api-0", zone: "zone-a", problem: "not ready (failing)" },
        { instance: "api-3", zone: "zone-a", problem: null },
      ]),
      "1 of 2 instances failing (api-0: not ready (failing))",
    );
    const three = zoneOf("zone-a", 4, 3);
    assert.equal(
      reason(three),
      "3 of 4 instances failing (api-zone-a-0: ejected by the data plane; api-zone-a-1: ejected by the data plane; api-zone-a-2: ejected by the data plane)",
    );
    const many: ZoneMember[] = [
      { instance: "web-0", zone: "zone-a", problem: "not running (exited)" },
      { instance: "web-3", zone: "zone-a", problem: "ejected by the data plane" },
      { instance: "web-6", zone: "zone-a", problem: "zone probe: connect ECONNREFUSED" },
      { instance: "web-9", zone: "zone-a", problem: "not ready (failing)" },
      { instance: "web-12", zone: "zone-a", problem: "not ready (failing)" },
      { instance: "web-15", zone: "zone-a", problem: null },
    ];
    assert.equal(
      reason(many),
      "5 of 6 instances failing (web-0: not running (exited); web-3: ejected by the data plane; web-6: zone probe: connect ECONNREFUSED; 2 more)",
    );
  });
});
