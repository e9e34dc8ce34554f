import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Balancer } from "../../../src/traffic/balance/balancer.ts";
import {
  findStalled,
  type StallCandidate,
  stallThresholdMs,
} from "../../../src/traffic/balance/stallDetection.ts";
import { countPicks, endpoints, fail, T0, trafficSpec } from "./fixtures.ts";

const SETTINGS = { enabled: true, multiplier: 4, minTimeMs: 250 };

function candidate(instance: string, silentMs: number, waiting = 1, out = false): StallCandidate {
  return { instance, waiting: silentMs === 0 ? 0 : waiting, silentMs, out };
}

describe("stallThresholdMs", () => {
  it("is max(hedge delay × multiplier, minTime)", () => {
    assert.equal(stallThresholdMs(20, SETTINGS), 250);
    assert.equal(stallThresholdMs(100, SETTINGS), 400);
  });
});

describe("findStalled", () => {
  it("finds an instance silent past the threshold while a peer answers", () => {
    assert.deepEqual(findStalled([candidate("a", 500), candidate("b", 3), candidate("c", 0)], 250), ["a"]);
  });

  it("finds nothing when every instance is silent: the service itself is slow", () => {
    assert.deepEqual(findStalled([candidate("a", 500), candidate("b", 400)], 250), []);
  });

  it("does not count peers already out as proof that the service answers", () => {
    assert.deepEqual(findStalled([candidate("a", 500), candidate("b", 0, 0, true)], 250), []);
    assert.deepEqual(
      findStalled([candidate("a", 500), candidate("b", 900, 1, true), candidate("c", 1)], 250),
      ["a"],
    );
  });

  it("needs waiting attempts: an idle instance is not silent", () => {
    assert.deepEqual(
      findStalled([{ instance: "a", waiting: 0, silentMs: 900, out: false }, candidate("b", 1)], 250),
      [],
    );
  });

  it("lists the longest silent first (the cap keeps the worst out)", () => {
    assert.deepEqual(
      findStalled([candidate("a", 300), candidate("b", 900), candidate("c", 600), candidate("d", 1)], 250),
      ["b", "c", "a"],
    );
  });
});

describe("Balancer: stalled instances", () => {
  function oneZone(count: number, maxEjectionPercent = 50): Balancer {
    const balancer = new Balancer(trafficSpec({ outlier: { maxEjectionPercent } }));
    balancer.setEndpoints(endpoints("a", count, "a"));
    return balancer;
  }
  const picked = (balancer: Balancer) =>
    [...countPicks(balancer, 300, (r) => r.endpoint.instance, { now: T0 }).keys()].sort();

  it("gives a stalled instance no new requests until it is cleared", () => {
    const balancer = oneZone(3);
    assert.equal(balancer.markStalled("a-0", T0), true);
    assert.deepEqual(picked(balancer), ["a-1", "a-2"]);
    const state = balancer.state(T0).endpoints.find((e) => e.instance === "a-0");
    assert.equal(state?.stalled, true);
    assert.equal(state?.stalledSince, T0);
    assert.equal(state?.ejected, false, "stalled is not an outlier ejection");
    assert.equal(balancer.clearStalled("a-0"), true);
    assert.deepEqual(picked(balancer), ["a-0", "a-1", "a-2"]);
  });

  it("respects the max-ejection cap, shared with outlier ejections, and counts what it prevents", () => {
    const balancer = oneZone(4); // 50 % of 4: two out at most
    assert.equal(balancer.markStalled("a-0", T0), true);
    fail(balancer, ["a-1"], T0, 3);
    assert.equal(balancer.state(T0).endpoints.find((e) => e.instance === "a-1")?.ejected, true);
    assert.equal(balancer.markStalled("a-2", T0), false, "two are out already");
    fail(balancer, ["a-3"], T0, 3);
    assert.equal(balancer.state(T0).endpoints.find((e) => e.instance === "a-3")?.ejected, false);
    const state = balancer.state(T0);
    assert.equal(state.stallsSuppressed, 1);
    assert.ok(state.ejectionsSuppressed >= 1, "the stalled one counts toward the ejection cap too");
    assert.deepEqual(picked(balancer), ["a-2", "a-3"]);
  });

  it("lets an ejected instance be marked without using the cap twice", () => {
    const balancer = oneZone(2); // 50 % of 2: one out at most
    fail(balancer, ["a-0"], T0, 3);
    assert.equal(balancer.markStalled("a-0", T0), true);
    assert.equal(balancer.markStalled("a-1", T0), false);
  });

  it("forgets a stall when the instance leaves or runs another process", () => {
    const balancer = new Balancer(trafficSpec({ outlier: { maxEjectionPercent: 100 } }));
    const members = endpoints("a", 3, "a");
    balancer.setEndpoints(members);
    balancer.markStalled("a-0", T0);
    balancer.markStalled("a-1", T0);
    balancer.markStalled("a-2", T0);
    // a-0 now runs on another port (a new process), a-1 left, a-2 stays as it was.
    balancer.setEndpoints([{ ...members[0]!, port: members[0]!.port + 1_000 }, members[2]!]);
    assert.deepEqual(balancer.stalledInstances(), ["a-2"]);
    assert.equal(balancer.markStalled("nobody", T0), false);
  });
});
