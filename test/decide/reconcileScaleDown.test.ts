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
          { code: "scaled-down", message: "slot 2 is beyond the api replica count" },
        ],
        [
          "stop",
          "api-3",
          "api",
          "leave-stopped",
          { code: "scaled-down", message: "slot 3 is beyond the api replica count" },
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
