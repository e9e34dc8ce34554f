import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Balancer } from "../../../src/traffic/balance/balancer.ts";
import { binomialCheck } from "../../helpers/seededRandom.ts";
import { countPicks, endpoints, fail, IDLE, picked, seededRandom, T0, trafficSpec } from "./fixtures.ts";

/**
 * A zone's count over PICKS is Binomial(PICKS, its share): checked at ±3σ (±1.4 % at a third). The
 * seed is fixed (`countPicks`), so the counts are the same on every run.
 */
const PICKS = 10_000;

/** Zones a, b, c with two endpoints each, all one priority (no spill order in the way). */
function threeZones(): Balancer {
  const balancer = new Balancer(
    trafficSpec({
      priorities: [["a", "b", "c"]],
      outlier: { consecutiveFailures: 1, maxEjectionPercent: 50 },
    }),
  );
  balancer.setEndpoints([...endpoints("a", 2, "a"), ...endpoints("b", 2, "b"), ...endpoints("c", 2, "c")]);
  return balancer;
}

function zoneShares(balancer: Balancer, exclude?: ReadonlySet<string>): Map<string, number> {
  const counts = countPicks(balancer, PICKS, (r) => r.endpoint.zone, exclude ? { exclude } : {});
  return new Map([...counts].map(([zone, n]) => [zone, n / PICKS]));
}

function near(actual: number | undefined, expected: number, what: string): void {
  const check = binomialCheck(Math.round((actual ?? 0) * PICKS), PICKS, expected, what);
  assert.ok(check.ok, check.message);
}

describe("Balancer: zone shares (failover and failback)", () => {
  it("without shares, three equal zones get a third each", () => {
    const shares = zoneShares(threeZones());
    for (const zone of ["a", "b", "c"]) near(shares.get(zone), 1 / 3, zone);
  });

  it("a zone at 0.5 keeps half its traffic; the rest spreads over the other zones", () => {
    const balancer = threeZones();
    balancer.setZoneShares({ a: 0.5 });
    const shares = zoneShares(balancer);
    near(shares.get("a"), 1 / 6, "a");
    near(shares.get("b"), 5 / 12, "b");
    near(shares.get("c"), 5 / 12, "c");
  });

  it("a zone at 0 gets nothing, even though its endpoints are healthy", () => {
    const balancer = threeZones();
    balancer.setZoneShares({ a: 0 });
    const shares = zoneShares(balancer);
    assert.equal(shares.get("a"), undefined);
    near(shares.get("b"), 0.5, "b");
  });

  it("moves traffic out of a high-priority zone into the lower ones", () => {
    const balancer = new Balancer(trafficSpec({ priorities: [["a"], ["b"]] }));
    balancer.setEndpoints([...endpoints("a", 2, "a"), ...endpoints("b", 2, "b")]);
    assert.deepEqual([...zoneShares(balancer).keys()], ["a"], "priority 0 takes everything while healthy");
    balancer.setZoneShares({ a: 0.25 });
    const shares = zoneShares(balancer);
    near(shares.get("a"), 0.25, "a");
    near(shares.get("b"), 0.75, "b");
  });

  it("keeps a shifted zone's traffic there when no unshifted zone has a usable endpoint", () => {
    const balancer = new Balancer(trafficSpec({ priorities: [["a", "b"]] }));
    balancer.setEndpoints([...endpoints("a", 2, "a"), ...endpoints("b", 2, "b")]);
    balancer.setZoneShares({ a: 0, b: 0.5 });
    const shares = zoneShares(balancer);
    // Nothing is unshifted: every pick stays where it landed.
    near(shares.get("a"), 0.5, "a");
    near(shares.get("b"), 0.5, "b");
  });

  it("sends a shifted pick to an unshifted zone only through usable endpoints", () => {
    const balancer = threeZones();
    fail(balancer, ["b-0", "b-1"], T0, 1);
    balancer.setZoneShares({ a: 0 });
    const shares = zoneShares(balancer);
    assert.deepEqual([...shares.keys()].sort(), ["c"], "b is ejected, a is evacuated: c takes it all");
  });

  it("respects retries: a shifted pick never goes back to an endpoint already tried when another exists", () => {
    const balancer = threeZones();
    balancer.setZoneShares({ a: 0 });
    const tried = new Set(["b-0", "b-1", "c-0"]);
    const counts = countPicks(balancer, 500, (r) => r.endpoint.instance, { exclude: tried });
    assert.deepEqual([...counts.keys()], ["c-1"]);
  });

  it("null clears every shift, and a share of 1 is no shift", () => {
    const balancer = threeZones();
    balancer.setZoneShares({ a: 0 });
    balancer.setZoneShares(null);
    near(zoneShares(balancer).get("a"), 1 / 3, "a after null");
    balancer.setZoneShares({ a: 1 });
    assert.deepEqual(balancer.shiftedZones(), {});
    assert.deepEqual(balancer.state(T0).zoneShares, {});
    balancer.setZoneShares({ b: 0.4 });
    assert.deepEqual(balancer.state(T0).zoneShares, { b: 0.4 });
  });

  it("rejects a share outside [0, 1] and keeps the previous shares", () => {
    const balancer = threeZones();
    balancer.setZoneShares({ a: 0.5 });
    for (const bad of [-0.1, 1.5, Number.NaN]) {
      assert.throws(() => balancer.setZoneShares({ a: bad }), /share of zone a must be in \[0, 1\]/);
    }
    assert.deepEqual(balancer.shiftedZones(), { a: 0.5 });
    const random = seededRandom(7);
    assert.ok(picked(balancer.pick(T0, random, new Set(), IDLE)).endpoint.zone.length > 0);
  });
});
