import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decide } from "../../src/decide/reconcile.ts";
import { makeFleet } from "../helpers/fleetFixture.ts";
import { exited, health, makeSnapshot, running } from "../helpers/snapshotFixture.ts";

describe("decide: instances the spec no longer wants", () => {
  it("stops slots beyond the replica count, reason scaled-down, and leaves them stopped", () => {
    const fleet = makeFleet({ services: [{ name: "api", replicas: 2 }] });
    const instances = [0, 1, 2, 3].map((slot) => running("api", slot));
    const actions = decide(makeSnapshot({ fleet, instances }));
    assert.deepEqual(
      actions.map((a) => [a.type, a.instance, a.service, a.type === "stop" ? a.afterStop : null, a.reason]),
      [
        [
          "stop",
          "api-2",
          "api",
          "leave-stopped",
          { code: "scaled-down", message: "api-2 (v1) is not in the desired set of api" },
        ],
        [
          "stop",
          "api-3",
          "api",
          "leave-stopped",
          { code: "scaled-down", message: "api-3 (v1) is not in the desired set of api" },
        ],
      ],
    );
  });

  it("stops the instances of a service removed from the fleet, reason service-removed", () => {
    const fleet = makeFleet({ services: [{ name: "api", replicas: 1 }] });
    const instances = [
      running("api", 0),
      running("legacy", 0),
      running("legacy", 1, { health: health("unready") }),
    ];
    const actions = decide(makeSnapshot({ fleet, instances }));
    assert.deepEqual(
      actions.map((a) => [
        a.type,
        a.instance,
        a.service,
        a.type === "stop" ? a.afterStop : null,
        a.reason.code,
      ]),
      [
        ["stop", "legacy-0", "legacy", "leave-stopped", "service-removed"],
        ["stop", "legacy-1", "legacy", "leave-stopped", "service-removed"],
      ],
    );
    assert.match(actions[0]!.reason.message, /legacy is no longer in the fleet/);
  });

  it("does not stop what is already gone", () => {
    const fleet = makeFleet({ services: [{ name: "api", replicas: 1 }] });
    const instances = [running("api", 0), exited("api", 1), exited("legacy", 0)];
    assert.deepEqual(decide(makeSnapshot({ fleet, instances })), []);
  });

  it("stops an unhealthy surplus instance for good rather than restarting it", () => {
    const fleet = makeFleet({ services: [{ name: "api", replicas: 1 }] });
    const instances = [
      running("api", 0),
      running("api", 1, { health: health("unhealthy", { reason: "liveness: x" }) }),
    ];
    const actions = decide(makeSnapshot({ fleet, instances }));
    assert.deepEqual(
      actions.map((a) => [a.instance, a.type === "stop" ? a.afterStop : a.type, a.reason.code]),
      [["api-1", "leave-stopped", "scaled-down"]],
    );
  });

  it("stops everything when scaled to zero", () => {
    const fleet = makeFleet({ services: [{ name: "api", replicas: 0 }] });
    const actions = decide(makeSnapshot({ fleet, instances: [running("api", 0), running("api", 1)] }));
    assert.deepEqual(
      actions.map((a) => [a.type, a.instance, a.reason.code]),
      [
        ["stop", "api-0", "scaled-down"],
        ["stop", "api-1", "scaled-down"],
      ],
    );
  });
});

describe("decide: two banks during a progressive deploy", () => {
  it("runs each bank's release in its own slots and stops what no bank wants", () => {
    const fleet = makeFleet({ services: [{ name: "api", replicas: 2 }] });
    const targets = new Map([
      [
        "api",
        [
          { bank: 0 as const, release: "v1", slots: [0, 1] },
          { bank: 1 as const, release: "v2", slots: [2, 3] },
        ],
      ],
    ]);
    const instances = [running("api", 0), running("api", 1), running("api", 4)];
    const actions = decide({ ...makeSnapshot({ fleet, instances }), targets });
    assert.deepEqual(
      actions.map((a) => [a.type, a.instance, a.type === "start" ? a.release : a.reason.code]),
      [
        ["start", "api-2", "v2"],
        ["start", "api-3", "v2"],
        ["stop", "api-4", "scaled-down"],
      ],
    );
  });
});
