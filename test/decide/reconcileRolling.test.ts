import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Action } from "../../src/decide/actions.ts";
import { decide } from "../../src/decide/reconcile.ts";
import type { ObservedInstance } from "../../src/decide/snapshot.ts";
import { makeFleet } from "../helpers/fleetFixture.ts";
import { exited, health, makeSnapshot, running } from "../helpers/snapshotFixture.ts";

const fleet = makeFleet({
  services: [
    { name: "api", replicas: 3, release: "v2" },
    { name: "web", replicas: 2, release: "v2" },
  ],
});

function summary(actions: Action[]): string[][] {
  return actions.map((a) => [a.type, a.instance, a.reason.code]);
}

function oldApi(slot: number, overrides: Partial<ObservedInstance> = {}): ObservedInstance {
  return { ...running("api", slot, { release: "v1" }), ...overrides };
}

describe("decide: rolling a release change", () => {
  it("replaces one instance per service at a time; the others wait", () => {
    const instances = [
      oldApi(0),
      oldApi(1),
      oldApi(2),
      running("web", 0, { release: "v2" }),
      running("web", 1, { release: "v2" }),
    ];
    const actions = decide(makeSnapshot({ fleet, instances }));
    assert.deepEqual(summary(actions), [
      ["stop", "api-0", "release-changed"],
      ["wait", "api-1", "rolling-one-at-a-time"],
      ["wait", "api-2", "rolling-one-at-a-time"],
    ]);
    const stop = actions[0]!;
    assert.equal(stop.type === "stop" && stop.afterStop, "restart");
    assert.match(stop.reason.message, /runs v1; replacing it with v2/);
    const wait = actions[1]!;
    assert.equal(wait.type === "wait" && wait.until, null);
  });

  it("rolls each service independently (one per service in the same decision)", () => {
    const instances = [
      oldApi(0),
      oldApi(1),
      oldApi(2),
      running("web", 0, { release: "v1" }),
      running("web", 1, { release: "v1" }),
    ];
    const stops = decide(makeSnapshot({ fleet, instances })).filter((a) => a.type === "stop");
    assert.deepEqual(
      stops.map((a) => a.instance),
      ["api-0", "web-0"],
    );
  });

  it("waits while the instance being replaced is busy", () => {
    const instances = [oldApi(0), oldApi(1), oldApi(2)];
    const actions = decide(makeSnapshot({ fleet, instances, busy: ["api-0"] }));
    assert.deepEqual(
      summary(actions).filter((a) => a[1]?.startsWith("api")),
      [
        ["wait", "api-1", "rolling-one-at-a-time"],
        ["wait", "api-2", "rolling-one-at-a-time"],
      ],
    );
  });

  it("waits while the replacement is up but not ready yet", () => {
    const instances = [
      running("api", 0, { release: "v2", health: health("starting") }),
      oldApi(1),
      oldApi(2),
    ];
    const actions = decide(makeSnapshot({ fleet, instances })).filter((a) => a.service === "api");
    assert.deepEqual(summary(actions), [
      ["wait", "api-1", "rolling-one-at-a-time"],
      ["wait", "api-2", "rolling-one-at-a-time"],
    ]);
  });

  it("moves on to the next instance once the replacement is ready", () => {
    const instances = [running("api", 0, { release: "v2" }), oldApi(1), oldApi(2)];
    const actions = decide(makeSnapshot({ fleet, instances })).filter((a) => a.service === "api");
    assert.deepEqual(summary(actions), [
      ["stop", "api-1", "release-changed"],
      ["wait", "api-2", "rolling-one-at-a-time"],
    ]);
  });

  it("does not roll while another instance of the service has exited or is missing", () => {
    for (const other of [exited("api", 2, { release: "v2" }), null]) {
      const instances = [oldApi(0), oldApi(1), ...(other === null ? [] : [other])];
      const actions = decide(makeSnapshot({ fleet, instances })).filter((a) => a.service === "api");
      assert.equal(
        actions.some((a) => a.type === "stop"),
        false,
        JSON.stringify(actions),
      );
      // The broken slot itself is restarted with the new release meanwhile.
      const start = actions.find((a) => a.instance === "api-2");
      assert.ok(start?.type === "start" && start.release === "v2");
    }
  });

  it("replaces a not-ready old instance first when the others are ready", () => {
    const instances = [
      oldApi(0),
      oldApi(1, { health: health("unready") }),
      running("api", 2, { release: "v2" }),
    ];
    const actions = decide(makeSnapshot({ fleet, instances })).filter((a) => a.service === "api");
    assert.deepEqual(summary(actions), [
      ["wait", "api-0", "rolling-one-at-a-time"],
      ["stop", "api-1", "release-changed"],
    ]);
  });

  it("replaces a single-replica service right away", () => {
    const single = makeFleet({ services: [{ name: "api", replicas: 1, release: "v2" }] });
    const actions = decide(
      makeSnapshot({ fleet: single, instances: [oldApi(0, { health: health("starting") })] }),
    );
    assert.deepEqual(summary(actions), [["stop", "api-0", "release-changed"]]);
  });

  it("never takes more than one instance per service down across a whole simulated rollout", () => {
    // Drive the pure core through a rollout, applying its actions the way the actor would.
    let instances = [oldApi(0), oldApi(1), oldApi(2)];
    const single = makeFleet({ services: [{ name: "api", replicas: 3, release: "v2" }] });
    for (let round = 0; round < 20; round++) {
      const actions = decide(makeSnapshot({ fleet: single, instances }));
      const stops = actions.filter((a) => a.type === "stop");
      assert.ok(stops.length <= 1, `round ${round}: ${JSON.stringify(stops)}`);
      if (actions.length === 0 && instances.every((i) => i.health?.state === "ready")) break;
      const notReady = instances.filter((i) => i.health?.state !== "ready").length;
      assert.ok(notReady <= 1, `round ${round}: ${notReady} instances not ready`);
      instances = instances.map((i) => {
        // A replaced instance comes back on the new release, first starting, then ready next round.
        if (stops.some((s) => s.instance === i.name)) {
          return running("api", i.slot, { release: "v2", health: health("starting") });
        }
        return i.health?.state === "starting" ? { ...i, health: health("ready") } : i;
      });
    }
    assert.deepEqual(
      instances.map((i) => [i.release, i.health?.state]),
      [
        ["v2", "ready"],
        ["v2", "ready"],
        ["v2", "ready"],
      ],
    );
  });
});

describe("decide: a rollout waits for replaced instances to hold", () => {
  it("does not move on while a new instance has been ready for less than the stabilization window", () => {
    const single = makeFleet({ services: [{ name: "api", replicas: 2, release: "v2" }] });
    const now = 1_000_000;
    const justReady = running("api", 0, { release: "v2", health: health("ready", { since: now - 2_000 }) });
    const actions = decide(makeSnapshot({ fleet: single, now, instances: [justReady, oldApi(1)] }));
    assert.deepEqual(summary(actions), [["wait", "api-1", "rolling-one-at-a-time"]]);
    assert.match(actions[0]!.reason.message, /ready for 10s/);

    const held = running("api", 0, { release: "v2", health: health("ready", { since: now - 10_000 }) });
    const later = decide(makeSnapshot({ fleet: single, now, instances: [held, oldApi(1)] }));
    assert.deepEqual(summary(later), [["stop", "api-1", "release-changed"]]);
  });
});
