import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decide } from "../../src/decide/reconcile.ts";
import { makeFleet } from "../helpers/fleetFixture.ts";
import { exited, health, makeSnapshot, running } from "../helpers/snapshotFixture.ts";

const fleet = makeFleet({ services: [{ name: "api", replicas: 1 }] });

describe("decide: running instances", () => {
  for (const state of ["ready", "starting", "unready"] as const) {
    it(`leaves a ${state} instance of the wanted release alone`, () => {
      const instances = [running("api", 0, { health: health(state) })];
      assert.deepEqual(decide(makeSnapshot({ fleet, instances })), []);
    });
  }

  it("leaves a running instance with no health yet alone", () => {
    assert.deepEqual(decide(makeSnapshot({ fleet, instances: [running("api", 0, { health: null })] })), []);
  });

  it("replaces an instance whose liveness failed: stop, then restart, reason liveness-failed", () => {
    const reasonText = "liveness: 3 consecutive failures (timeout after 500ms)";
    const instances = [running("api", 0, { health: health("unhealthy", { reason: reasonText }) })];
    const actions = decide(makeSnapshot({ fleet, instances }));
    assert.deepEqual(
      actions.map((a) => [a.type, a.instance, a.service, a.type === "stop" ? a.afterStop : null, a.reason]),
      [
        [
          "stop",
          "api-0",
          "api",
          "restart",
          { code: "liveness-failed", message: `api-0 is unhealthy (${reasonText}); replacing it` },
        ],
      ],
    );
  });

  it("replaces an instance whose startup probe failed, reason startup-failed", () => {
    const instances = [
      running("api", 0, {
        health: health("unhealthy", { reason: "startup: 30 consecutive failures (status 503)" }),
      }),
    ];
    const actions = decide(makeSnapshot({ fleet, instances }));
    assert.equal(actions.length, 1);
    const action = actions[0]!;
    assert.equal(action.type, "stop");
    if (action.type === "stop") assert.equal(action.afterStop, "restart");
    assert.equal(action.reason.code, "startup-failed");
    assert.match(action.reason.message, /startup: 30 consecutive failures/);
  });

  it("replaces an unhealthy instance even while its release is also outdated", () => {
    const two = makeFleet({ services: [{ name: "api", replicas: 2, release: "v2" }] });
    const instances = [
      running("api", 0, { release: "v1", health: health("unhealthy", { reason: "liveness: 3 failures" }) }),
      running("api", 1, { release: "v1", health: health("starting") }),
    ];
    const actions = decide(makeSnapshot({ fleet: two, instances }));
    assert.deepEqual(
      actions.map((a) => [a.type, a.instance, a.reason.code]),
      [
        ["stop", "api-0", "liveness-failed"],
        ["wait", "api-1", "rolling-one-at-a-time"],
      ],
    );
  });
});

describe("decide: busy instances", () => {
  it("skips busy instances whatever their state", () => {
    const three = makeFleet({ services: [{ name: "api", replicas: 4, release: "v2" }] });
    const instances = [
      exited("api", 0),
      running("api", 1, { health: health("unhealthy", { reason: "liveness: down" }) }),
      running("api", 2, { release: "v1" }),
      // api-3 missing
    ];
    const busy = ["api-0", "api-1", "api-2", "api-3"];
    assert.deepEqual(decide(makeSnapshot({ fleet: three, instances, busy })), []);
  });

  it("still decides for the instances that are not busy", () => {
    const two = makeFleet({ services: [{ name: "api", replicas: 2 }] });
    const instances = [exited("api", 0), exited("api", 1)];
    const actions = decide(makeSnapshot({ fleet: two, instances, busy: ["api-0"] }));
    assert.deepEqual(
      actions.map((a) => [a.type, a.instance]),
      [["start", "api-1"]],
    );
  });

  it("does not stop a busy instance of a removed service", () => {
    const instances = [running("old", 0)];
    assert.deepEqual(
      decide(makeSnapshot({ fleet, instances: [running("api", 0), ...instances], busy: ["old-0"] })),
      [],
    );
  });
});
