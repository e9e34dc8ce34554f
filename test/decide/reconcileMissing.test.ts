import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Action } from "../../src/decide/actions.ts";
import { decide } from "../../src/decide/reconcile.ts";
import { makeFleet } from "../helpers/fleetFixture.ts";
import { absent, exited, health, makeSnapshot, running } from "../helpers/snapshotFixture.ts";

function only(actions: Action[], instance: string): Action {
  const matching = actions.filter((a) => a.instance === instance);
  assert.equal(
    matching.length,
    1,
    `expected exactly one action for ${instance}, got ${JSON.stringify(actions)}`,
  );
  return matching[0]!;
}

describe("decide: missing instances", () => {
  it("starts every slot of a service nobody has started, with reason instance-missing", () => {
    const fleet = makeFleet({ services: [{ name: "api", replicas: 3, release: "v2" }] });
    const actions = decide(makeSnapshot({ fleet }));
    assert.deepEqual(
      actions.map((a) => (a.type === "start" ? [a.instance, a.slot, a.release, a.reason.code] : a.type)),
      [
        ["api-0", 0, "v2", "instance-missing"],
        ["api-1", 1, "v2", "instance-missing"],
        ["api-2", 2, "v2", "instance-missing"],
      ],
    );
    for (const action of actions) {
      assert.equal(action.service, "api");
      assert.match(action.reason.message, /not running/);
    }
  });

  it("treats an absent instance like a missing one", () => {
    const fleet = makeFleet({ services: [{ name: "api", replicas: 2 }] });
    const actions = decide(makeSnapshot({ fleet, instances: [running("api", 0), absent("api", 1)] }));
    assert.deepEqual(actions, [
      {
        type: "start",
        instance: "api-1",
        service: "api",
        slot: 1,
        release: "v1",
        reason: { code: "instance-missing", message: "api-1 is not running; starting v1" },
      },
    ]);
  });

  it("starts only the slots that are missing, leaving healthy ones alone", () => {
    const fleet = makeFleet({ services: [{ name: "api", replicas: 3 }] });
    const actions = decide(makeSnapshot({ fleet, instances: [running("api", 0), running("api", 2)] }));
    assert.deepEqual(
      actions.map((a) => [a.type, a.instance]),
      [["start", "api-1"]],
    );
  });

  it("does nothing for a service with zero replicas", () => {
    const fleet = makeFleet({ services: [{ name: "api", replicas: 0 }] });
    assert.deepEqual(decide(makeSnapshot({ fleet })), []);
  });
});

describe("decide: dependency gating", () => {
  const fleet = makeFleet({
    services: [
      { name: "db", replicas: 1 },
      { name: "api", replicas: 2, dependsOn: ["db"] },
    ],
  });

  it("starts the dependency and makes dependents wait when nothing is running", () => {
    const actions = decide(makeSnapshot({ fleet }));
    assert.equal(only(actions, "db-0").type, "start");
    for (const name of ["api-0", "api-1"]) {
      const action = only(actions, name);
      assert.equal(action.type, "wait");
      assert.equal(action.reason.code, "waiting-for-dependency");
      assert.match(action.reason.message, /\bdb\b/);
      if (action.type === "wait") assert.equal(action.until, null);
    }
  });

  for (const state of ["starting", "unready", "unhealthy"] as const) {
    it(`keeps dependents waiting while the dependency is ${state}`, () => {
      const db = running("db", 0, { health: health(state, { reason: "liveness: 3 consecutive failures" }) });
      const actions = decide(makeSnapshot({ fleet, instances: [db] }));
      assert.equal(only(actions, "api-0").reason.code, "waiting-for-dependency");
      assert.equal(only(actions, "api-1").reason.code, "waiting-for-dependency");
    });
  }

  it("keeps dependents waiting while the dependency has exited", () => {
    const actions = decide(makeSnapshot({ fleet, instances: [exited("db", 0)] }));
    assert.equal(only(actions, "api-0").reason.code, "waiting-for-dependency");
  });

  it("does not count a running instance with no health yet as ready", () => {
    const actions = decide(makeSnapshot({ fleet, instances: [running("db", 0, { health: null })] }));
    assert.equal(only(actions, "api-0").reason.code, "waiting-for-dependency");
  });

  it("starts dependents once the dependency has a ready instance", () => {
    const actions = decide(makeSnapshot({ fleet, instances: [running("db", 0)] }));
    assert.deepEqual(
      actions.map((a) => [a.type, a.instance, a.reason.code]),
      [
        ["start", "api-0", "instance-missing"],
        ["start", "api-1", "instance-missing"],
      ],
    );
  });

  it("needs only one ready instance of a replicated dependency", () => {
    const replicated = makeFleet({
      services: [
        { name: "db", replicas: 3 },
        { name: "api", replicas: 1, dependsOn: ["db"] },
      ],
    });
    const instances = [exited("db", 0), running("db", 1, { health: health("unready") }), running("db", 2)];
    const actions = decide(makeSnapshot({ fleet: replicated, instances }));
    assert.equal(only(actions, "api-0").type, "start");
  });

  it("waits for every dependency and names the ones not ready", () => {
    const multi = makeFleet({
      services: [
        { name: "db", replicas: 1 },
        { name: "cache", replicas: 1 },
        { name: "queue", replicas: 1 },
        { name: "api", replicas: 1, dependsOn: ["db", "cache", "queue"] },
      ],
    });
    const instances = [running("db", 0), running("cache", 0, { health: health("starting") })];
    const action = only(decide(makeSnapshot({ fleet: multi, instances })), "api-0");
    assert.equal(action.reason.code, "waiting-for-dependency");
    assert.match(action.reason.message, /cache, queue/);
    assert.doesNotMatch(action.reason.message, /\bdb\b/);
  });

  it("gates only on the service's own dependencies", () => {
    const two = makeFleet({
      services: [
        { name: "db", replicas: 1 },
        { name: "api", replicas: 1, dependsOn: ["db"] },
        { name: "web", replicas: 1 },
      ],
    });
    const actions = decide(makeSnapshot({ fleet: two }));
    assert.equal(only(actions, "web-0").type, "start");
    assert.equal(only(actions, "api-0").type, "wait");
  });
});
