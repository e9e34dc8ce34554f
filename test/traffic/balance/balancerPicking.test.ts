import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Balancer } from "../../../src/traffic/balance/balancer.ts";
import { countPicks, endpoints, IDLE, NOTHING, picked, seededRandom, T0, trafficSpec } from "./fixtures.ts";

function balancerWith(zoneA: number, zoneB = 0): Balancer {
  const balancer = new Balancer(trafficSpec());
  balancer.setEndpoints([...endpoints("a", zoneA, "a"), ...endpoints("b", zoneB, "b")]);
  return balancer;
}

describe("Balancer: retries (exclude)", () => {
  it("never picks an excluded instance while another is available", () => {
    const balancer = balancerWith(3);
    const counts = countPicks(balancer, 1_000, (result) => result.endpoint.instance, {
      exclude: new Set(["a-0", "a-2"]),
    });
    assert.deepEqual([...counts], [["a-1", 1_000]]);
  });

  it("spreads over the non-excluded instances", () => {
    const balancer = balancerWith(4);
    const counts = countPicks(balancer, 3_000, (result) => result.endpoint.instance, {
      exclude: new Set(["a-1"]),
    });
    assert.deepEqual([...counts.keys()].sort(), ["a-0", "a-2", "a-3"]);
    for (const n of counts.values()) assert.ok(Math.abs(n / 3_000 - 1 / 3) <= 0.02, `${[...counts]}`);
  });

  it("goes to the next priority when every endpoint of the drawn one was tried", () => {
    const balancer = balancerWith(2, 2);
    const counts = countPicks(balancer, 500, (result) => `${result.endpoint.zone}/${result.priority}`, {
      exclude: new Set(["a-0", "a-1"]),
    });
    assert.deepEqual([...counts], [["b/1", 500]]);
  });

  it("retries an already tried instance rather than failing when it is the only one", () => {
    const balancer = balancerWith(1);
    const result = picked(balancer.pick(T0, seededRandom(3), new Set(["a-0"]), IDLE));
    assert.equal(result.endpoint.instance, "a-0");
  });
});

describe("Balancer: power of two choices", () => {
  it("takes the less loaded of two", () => {
    const balancer = balancerWith(2);
    const load = (instance: string) => (instance === "a-0" ? 10 : 0);
    const counts = countPicks(balancer, 500, (result) => result.endpoint.instance, { inFlight: load });
    assert.deepEqual([...counts], [["a-1", 500]]);
  });

  it("never picks the most loaded of three, and the least loaded in about 2 of 3 picks", () => {
    const balancer = balancerWith(3);
    const inFlight: Record<string, number> = { "a-0": 9, "a-1": 5, "a-2": 1 };
    const counts = countPicks(balancer, 6_000, (result) => result.endpoint.instance, {
      inFlight: (instance) => inFlight[instance] ?? 0,
    });
    assert.equal(counts.get("a-0"), undefined);
    // a-2 is in two of the three possible pairs, and wins both.
    assert.ok(Math.abs((counts.get("a-2") ?? 0) / 6_000 - 2 / 3) <= 0.02, `${[...counts]}`);
  });

  it("spreads evenly when the load is even", () => {
    const balancer = balancerWith(4);
    const counts = countPicks(balancer, 8_000, (result) => result.endpoint.instance);
    for (const n of counts.values()) assert.ok(Math.abs(n / 8_000 - 0.25) <= 0.02, `${[...counts]}`);
  });

  it("stays in range when random returns its extremes", () => {
    const balancer = balancerWith(3, 3);
    for (const value of [0, 1 - Number.EPSILON, 1]) {
      const result = balancer.pick(T0, () => value, NOTHING, IDLE);
      assert.ok(result.ok, `random = ${value}`);
    }
  });
});

describe("Balancer: state", () => {
  it("describes every endpoint with its zone, priority and outlier state", () => {
    const balancer = balancerWith(1, 1);
    balancer.report("b-0", "timeout", T0);
    const state = balancer.state(T0);
    assert.deepEqual(state.endpoints, [
      {
        instance: "a-0",
        release: "v1",
        zone: "a",
        priority: 0,
        ejected: false,
        ejectedUntil: null,
        consecutiveFailures: 0,
        timesEjected: 0,
        stalled: false,
        stalledSince: null,
      },
      {
        instance: "b-0",
        release: "v1",
        zone: "b",
        priority: 1,
        ejected: false,
        ejectedUntil: null,
        consecutiveFailures: 1,
        timesEjected: 0,
        stalled: false,
        stalledSince: null,
      },
    ]);
    assert.equal(state.members, 2);
    assert.equal(state.panicMode, "send-to-all");
    // Round-trips through JSON unchanged (no Maps, no Infinity).
    assert.deepEqual(JSON.parse(JSON.stringify(state)), state);
  });
});
