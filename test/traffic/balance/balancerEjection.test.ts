import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Balancer } from "../../../src/traffic/balance/balancer.ts";
import type { TrafficOverrides } from "./fixtures.ts";
import { countPicks, endpoints, fail, IDLE, NOTHING, seededRandom, T0, trafficSpec } from "./fixtures.ts";

/** One zone, `count` endpoints `a-0..`; ejection after 3 failures, base 1 s, max 10 s. */
function oneZone(count: number, overrides: TrafficOverrides = {}): Balancer {
  const balancer = new Balancer(trafficSpec(overrides));
  balancer.setEndpoints(endpoints("a", count, "a"));
  return balancer;
}

function pickedInstances(balancer: Balancer, now: number, n = 600): Set<string> {
  return new Set(countPicks(balancer, n, (result) => result.endpoint.instance, { now }).keys());
}

function endpointState(balancer: Balancer, instance: string, now: number) {
  const found = balancer.state(now).endpoints.find((e) => e.instance === instance);
  assert.ok(found, `${instance} is a member`);
  return found;
}

describe("Balancer: outlier ejection", () => {
  it("ejects after the configured consecutive failures, and not before", () => {
    const balancer = oneZone(3);
    fail(balancer, ["a-0"], T0, 2);
    assert.ok(pickedInstances(balancer, T0).has("a-0"));
    assert.equal(endpointState(balancer, "a-0", T0).consecutiveFailures, 2);
    fail(balancer, ["a-0"], T0, 1);
    assert.deepEqual([...pickedInstances(balancer, T0)].sort(), ["a-1", "a-2"]);
    const state = endpointState(balancer, "a-0", T0);
    assert.equal(state.ejected, true);
    assert.equal(state.ejectedUntil, T0 + 1_000);
    assert.equal(state.timesEjected, 1);
  });

  it("does not eject when a success breaks the run of failures", () => {
    const balancer = oneZone(3);
    fail(balancer, ["a-0"], T0, 2);
    balancer.report("a-0", "success", T0);
    fail(balancer, ["a-0"], T0, 2);
    assert.ok(pickedInstances(balancer, T0).has("a-0"));
  });

  it("returns an ejected endpoint when its ejection time has passed, with no success needed", () => {
    const balancer = oneZone(3);
    fail(balancer, ["a-0"], T0, 3);
    // Warm the cached view before the deadline, so the test also covers noticing the expiry.
    assert.ok(!pickedInstances(balancer, T0 + 999).has("a-0"));
    assert.ok(pickedInstances(balancer, T0 + 1_000).has("a-0"));
    assert.equal(endpointState(balancer, "a-0", T0 + 1_000).ejected, false);
  });

  it("ejects for longer each time (base × times ejected), capped at the maximum", () => {
    const balancer = oneZone(3, { outlier: { baseEjectionMs: 1_000, maxEjectionMs: 2_500 } });
    const durations: number[] = [];
    let now = T0;
    for (let round = 0; round < 4; round++) {
      fail(balancer, ["a-0"], now, 3);
      const until = endpointState(balancer, "a-0", now).ejectedUntil;
      assert.notEqual(until, null, `round ${round} ejected`);
      durations.push(until! - now);
      now = until!;
      assert.ok(pickedInstances(balancer, now).has("a-0"), `back after round ${round}`);
    }
    assert.deepEqual(durations, [1_000, 2_000, 2_500, 2_500]);
  });

  it("never ejects more than maxEjectionPercent of the members, even if all fail (50 % of 4 → 2)", () => {
    const balancer = oneZone(4, { outlier: { maxEjectionPercent: 50 } });
    const all = ["a-0", "a-1", "a-2", "a-3"];
    fail(balancer, all, T0, 10);
    const state = balancer.state(T0);
    assert.equal(state.endpoints.filter((e) => e.ejected).length, 2);
    assert.equal(state.healthy, 2);
    assert.ok(state.ejectionsSuppressed > 0, "the held-back ejections are visible");
    assert.equal(pickedInstances(balancer, T0).size, 2);
  });

  it("keeps outlier state of endpoints that stay and forgets removed ones", () => {
    const balancer = oneZone(0);
    const [a0, a1, a2] = endpoints("a", 3, "a");
    balancer.setEndpoints([a0!, a1!, a2!]);
    fail(balancer, ["a-0", "a-1"], T0, 3);
    balancer.setEndpoints([a0!, a2!]);
    assert.equal(endpointState(balancer, "a-0", T0).ejected, true);
    balancer.setEndpoints([a0!, a1!, a2!]);
    assert.equal(
      endpointState(balancer, "a-1", T0).ejected,
      false,
      "a-1 left, so its ejection was forgotten",
    );
    assert.equal(endpointState(balancer, "a-1", T0).timesEjected, 0);
  });

  it("forgets the record of an instance name that now runs another release or port", () => {
    const balancer = oneZone(0);
    const [a0, a1] = endpoints("a", 2, "a");
    balancer.setEndpoints([a0!, a1!]);
    fail(balancer, [a0!.instance], T0, 3);
    balancer.setEndpoints([{ ...a0!, release: "v2" }, a1!]);
    assert.equal(endpointState(balancer, a0!.instance, T0).ejected, false);
  });

  it("ignores outcomes for instances that are not members (removed, draining)", () => {
    const balancer = oneZone(2);
    fail(balancer, ["gone-0"], T0, 10);
    assert.equal(balancer.state(T0).healthy, 2);
  });

  it("refuses two endpoints with the same instance name", () => {
    const balancer = oneZone(0);
    const [a0] = endpoints("a", 1, "a");
    assert.throws(() => balancer.setEndpoints([a0!, { ...a0!, port: 1 }]), { code: "HS_INTERNAL" });
  });

  it("answers no-endpoints when nothing is ready", () => {
    const balancer = oneZone(0);
    assert.deepEqual(balancer.pick(T0, seededRandom(1), NOTHING, IDLE), {
      ok: false,
      reason: "no-endpoints",
    });
  });
});

describe("Balancer: panic (all failing, threshold 50 %, maxEjectionPercent 100)", () => {
  const all = ["a-0", "a-1", "a-2", "a-3"];

  it("send-to-all: still picks the ejected endpoints, and says it is in panic", () => {
    const balancer = oneZone(4, { panic: { thresholdPercent: 50, mode: "send-to-all" } });
    fail(balancer, all, T0, 3);
    const state = balancer.state(T0);
    assert.equal(state.healthy, 0);
    assert.equal(state.panic, true);
    const results = countPicks(balancer, 2_000, (result) => `${result.endpoint.instance}/${result.panic}`);
    assert.deepEqual(
      [...results.keys()].sort(),
      all.map((i) => `${i}/true`),
    );
  });

  it("fail-closed: answers all-ejected", () => {
    const balancer = oneZone(4, { panic: { thresholdPercent: 50, mode: "fail-closed" } });
    fail(balancer, all, T0, 3);
    assert.equal(balancer.state(T0).panic, true);
    assert.deepEqual(balancer.pick(T0, seededRandom(1), NOTHING, IDLE), { ok: false, reason: "all-ejected" });
  });

  it("fail-closed: in panic with a healthy endpoint left, sends only to it", () => {
    const balancer = oneZone(4, { panic: { thresholdPercent: 50, mode: "fail-closed" } });
    fail(balancer, ["a-0", "a-1", "a-2"], T0, 3);
    const results = countPicks(balancer, 500, (result) => `${result.endpoint.instance}/${result.panic}`);
    assert.deepEqual([...results], [["a-3/true", 500]]);
  });

  it("send-to-all: below the threshold with one healthy endpoint, spreads over all of them", () => {
    const balancer = oneZone(4, { panic: { thresholdPercent: 50, mode: "send-to-all" } });
    fail(balancer, ["a-0", "a-1", "a-2"], T0, 3);
    const counts = countPicks(balancer, 4_000, (result) => result.endpoint.instance);
    for (const instance of all) {
      assert.ok(
        Math.abs((counts.get(instance) ?? 0) / 4_000 - 0.25) <= 0.02,
        `${instance}: ${counts.get(instance)}`,
      );
    }
  });

  it("is not in panic at exactly the threshold", () => {
    const balancer = oneZone(4, { panic: { thresholdPercent: 50, mode: "send-to-all" } });
    fail(balancer, ["a-0", "a-1"], T0, 3);
    assert.equal(balancer.state(T0).panic, false);
    assert.deepEqual([...pickedInstances(balancer, T0)].sort(), ["a-2", "a-3"]);
  });

  it("leaves panic when the ejections end", () => {
    const balancer = oneZone(4, { panic: { thresholdPercent: 50, mode: "fail-closed" } });
    fail(balancer, all, T0, 3);
    assert.equal(balancer.pick(T0 + 999, seededRandom(1), NOTHING, IDLE).ok, false);
    const result = balancer.pick(T0 + 1_000, seededRandom(1), NOTHING, IDLE);
    assert.ok(result.ok && !result.panic);
  });
});

describe("Balancer.ejectedInstances", () => {
  it("lists the members ejected now, and none once their ejection has ended", () => {
    const balancer = new Balancer(trafficSpec({ outlier: { maxEjectionPercent: 100 } }));
    balancer.setEndpoints([...endpoints("a", 2, "a"), ...endpoints("b", 1, "b")]);
    assert.deepEqual(balancer.ejectedInstances(T0), []);
    fail(balancer, ["a-1", "b-0"], T0, 3);
    assert.deepEqual(balancer.ejectedInstances(T0).sort(), ["a-1", "b-0"]);
    assert.deepEqual(
      balancer.ejectedInstances(T0).sort(),
      balancer
        .state(T0)
        .endpoints.filter((e) => e.ejected)
        .map((e) => e.instance)
        .sort(),
      "the same answer as the full state",
    );
    assert.deepEqual(balancer.ejectedInstances(T0 + 1_000), [], "1 s base ejection is over");
  });
});
