import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { findSharedFate, zonesSharingFate, zonesToAvoid } from "../../../src/decide/failover/independence.ts";
import type { IndependenceFinding } from "../../../src/decide/failover/types.ts";
import type { ZoneHost } from "../../../src/spec/model.ts";
import { makeFleet } from "../../helpers/fleetFixture.ts";

const at = (zone: string, host = `host-${zone}`): ZoneHost => ({ zone, host });
const SPREAD = [at("zone-a"), at("zone-b"), at("zone-c")];

function kinds(findings: IndependenceFinding[]): string[] {
  return findings.map((f) => `${f.severity} ${f.kind} ${f.service}`);
}

describe("findSharedFate", () => {
  it("finds nothing in a fleet spread over three zones and hosts", () => {
    const fleet = makeFleet({
      services: [
        { name: "db", replicas: 3, placement: SPREAD },
        { name: "api", replicas: 3, placement: SPREAD, dependsOn: ["db"] },
        { name: "web", replicas: 6, placement: SPREAD, dependsOn: ["api"] },
      ],
    });
    assert.deepEqual(findSharedFate(fleet), []);
  });

  it("replicas all in one zone, on one host: both are critical, each with its own fix", () => {
    const fleet = makeFleet({
      services: [
        { name: "api", replicas: 3, placement: [at("zone-a", "host-1")] },
        { name: "web", replicas: 2, placement: [at("zone-b", "host-2"), at("zone-c", "host-3")] },
      ],
    });
    const findings = findSharedFate(fleet);
    assert.deepEqual(kinds(findings), ["critical single-host api", "critical single-zone api"]);
    const [host, zone] = findings;
    assert.equal(host!.message, "all 3 replicas of api run on host-1: losing host-1 takes api down");
    assert.equal(host!.fix, "place api's replicas on more than one host (e.g. add host-2)");
    assert.equal(zone!.message, "all 3 replicas of api run in zone-a: losing zone-a takes api down");
    assert.equal(zone!.fix, "add zone-b, zone-c to api's placement so its replicas span zones");
  });

  it("replicas over two zones but one host: single-host only", () => {
    const fleet = makeFleet({
      services: [{ name: "api", replicas: 2, placement: [at("zone-a", "box"), at("zone-b", "box")] }],
    });
    const findings = findSharedFate(fleet);
    assert.deepEqual(kinds(findings), ["critical single-host api"]);
    assert.equal(findings[0]!.fix, "add a second host to the fleet and place api's replicas on both");
  });

  it("with no other zone in the fleet, the fix says to add one", () => {
    const fleet = makeFleet({
      services: [{ name: "api", replicas: 2, placement: [at("local", "h1"), at("local", "h2")] }],
    });
    const findings = findSharedFate(fleet);
    assert.deepEqual(kinds(findings), ["critical single-zone api"]);
    assert.equal(findings[0]!.fix, "add a second zone to the fleet and place api's replicas in both");
  });

  it("warns when more than half of the replicas sit in one zone", () => {
    const fleet = makeFleet({
      services: [
        // Slots cycle through the placement: a, a, b, a, a → 4 of 5 in zone-a.
        { name: "api", replicas: 5, placement: [at("zone-a"), at("zone-a"), at("zone-b")] },
        // 2 of 4 in zone-a is exactly half: fine.
        { name: "web", replicas: 4, placement: [at("zone-a"), at("zone-a"), at("zone-b"), at("zone-c")] },
        // a, a, b, a → 3 of 4: listing zone-a and zone-b in turn is enough.
        { name: "queue", replicas: 4, placement: [at("zone-a"), at("zone-a"), at("zone-b")] },
        // 2 of 3 over two zones cannot be balanced by reordering; zone-c exists in the fleet.
        { name: "worker", replicas: 3, placement: [at("zone-a"), at("zone-b")] },
      ],
    });
    const findings = findSharedFate(fleet);
    assert.deepEqual(kinds(findings), [
      "warning single-zone api",
      "warning single-zone queue",
      "warning single-zone worker",
    ]);
    assert.equal(
      findings[0]!.message,
      "4 of 5 replicas of api run in zone-a: losing it leaves 1 replica to carry all of api's load",
    );
    // 5 over two zones always leaves 3 in one: a third zone is needed.
    assert.equal(
      findings[0]!.fix,
      "add zone-c to api's placement so no zone holds more than half of its replicas",
    );
    assert.equal(
      findings[1]!.fix,
      "list queue's zones evenly in its placement (zone-a, zone-b in turn), at most 2 of 4 replicas per zone",
    );
    assert.equal(
      findings[2]!.message,
      "2 of 3 replicas of worker run in zone-a: losing it leaves 1 replica to carry all of worker's load",
    );
    assert.equal(
      findings[2]!.fix,
      "add zone-c to worker's placement so no zone holds more than half of its replicas",
    );
  });

  it("a single instance two services depend on is a shared single dependency: critical", () => {
    const fleet = makeFleet({
      services: [
        { name: "db", replicas: 1, placement: [at("zone-a")] },
        { name: "api", replicas: 3, placement: SPREAD, dependsOn: ["db"] },
        { name: "worker", replicas: 3, placement: SPREAD, dependsOn: ["db"] },
      ],
    });
    const findings = findSharedFate(fleet);
    assert.deepEqual(kinds(findings), ["critical shared-single-dependency db"]);
    assert.equal(
      findings[0]!.message,
      "api, worker all depend on db, which runs one instance (zone-a/host-zone-a): losing it takes them down together, however redundant they are",
    );
    assert.equal(
      findings[0]!.fix,
      "run db with at least 2 replicas and add zone-b to its placement, so they sit in different zones",
    );
  });

  it("a single instance one service depends on is a warning; one nobody depends on is info", () => {
    const fleet = makeFleet({
      services: [
        { name: "cache", replicas: 1, placement: [at("zone-b")] },
        { name: "api", replicas: 3, placement: SPREAD, dependsOn: ["cache"] },
        { name: "cron", replicas: 1, placement: [at("zone-c")] },
      ],
    });
    const findings = findSharedFate(fleet);
    assert.deepEqual(kinds(findings), ["warning single-instance cache", "info single-instance cron"]);
    assert.equal(
      findings[0]!.message,
      "api depends on cache, which runs one instance (zone-b/host-zone-b): losing zone-b or host-zone-b takes both down",
    );
    assert.equal(findings[1]!.message, "cron runs one instance (zone-c/host-zone-c): no redundancy");
  });

  it("a backup priority on a host of the primary shares its fate", () => {
    const fleet = makeFleet({
      services: [
        {
          name: "api",
          replicas: 3,
          placement: [at("zone-a", "rack-1"), at("zone-b", "rack-1"), at("zone-c", "rack-3")],
          traffic: { priorities: [["zone-a"], ["zone-b"], ["zone-c"]] },
        },
        {
          name: "web",
          replicas: 2,
          placement: [at("zone-a", "rack-1"), at("zone-b", "rack-2")],
          traffic: { priorities: [["zone-a"]] },
        },
      ],
    });
    const findings = findSharedFate(fleet);
    assert.deepEqual(kinds(findings), ["critical backup-shares-domain api"]);
    assert.equal(
      findings[0]!.message,
      "api's backup zones zone-b run on rack-1, as its primary zones zone-a do: the backup fails with the primary",
    );
  });

  it("orders findings by severity, then service", () => {
    const fleet = makeFleet({
      services: [
        { name: "zeta", replicas: 1, placement: [at("zone-a")] },
        { name: "beta", replicas: 3, placement: [at("zone-a"), at("zone-a"), at("zone-b")] },
        { name: "alpha", replicas: 2, placement: [at("zone-c", "h")] },
        { name: "omega", replicas: 2, placement: [at("zone-b", "h")] },
      ],
    });
    assert.deepEqual(kinds(findSharedFate(fleet)), [
      "critical single-host alpha",
      "critical single-zone alpha",
      "critical single-host omega",
      "critical single-zone omega",
      "warning single-zone beta",
      "info single-instance zeta",
    ]);
  });
});

describe("zonesSharingFate", () => {
  it("lists the zones that share a host with the given zone", () => {
    const fleet = makeFleet({
      services: [
        {
          name: "api",
          replicas: 3,
          placement: [at("zone-a", "rack-1"), at("zone-b", "rack-2"), at("zone-c", "rack-3")],
        },
        { name: "web", replicas: 2, placement: [at("zone-c", "rack-1"), at("zone-b", "rack-4")] },
      ],
    });
    assert.deepEqual(zonesSharingFate(fleet, "zone-a"), ["zone-c"]);
    assert.deepEqual(zonesSharingFate(fleet, "zone-c"), ["zone-a"]);
    assert.deepEqual(zonesSharingFate(fleet, "zone-b"), []);
  });
});

describe("zonesToAvoid (where failover adds no capacity)", () => {
  const fleet = makeFleet({
    services: [
      {
        name: "api",
        replicas: 4,
        placement: [
          at("zone-a", "rack-1"),
          at("zone-b", "rack-2"),
          at("zone-c", "rack-3"),
          at("zone-d", "rack-4"),
        ],
      },
      { name: "web", replicas: 2, placement: [at("zone-c", "rack-1"), at("zone-d", "rack-5")] },
    ],
  });

  it("avoids the failed zones and every zone sharing a host with one of them", () => {
    assert.deepEqual(zonesToAvoid(fleet, ["zone-a"]), ["zone-a", "zone-c"]);
    assert.deepEqual(zonesToAvoid(fleet, ["zone-b"]), ["zone-b"]);
    assert.deepEqual(zonesToAvoid(fleet, ["zone-b", "zone-a", "zone-a"]), ["zone-a", "zone-b", "zone-c"]);
  });

  it("avoids nothing when nothing failed", () => {
    assert.deepEqual(zonesToAvoid(fleet, []), []);
  });
});
