/**
 * The decision core's work grows with the fleet, not with its square: counted in reads of the
 * snapshot's instances (operation counts, not wall time; timing is bench:scale's business).
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decide } from "../../src/decide/reconcile.ts";
import type { ObservedInstance } from "../../src/decide/snapshot.ts";
import { makeFleet } from "../helpers/fleetFixture.ts";
import { absent, makeSnapshot, running } from "../helpers/snapshotFixture.ts";

/** `instances` as an array that counts how many of its elements are read. */
function counted(instances: ObservedInstance[]): { array: ObservedInstance[]; reads: () => number } {
  let reads = 0;
  const array = new Proxy(instances, {
    get(target, prop, receiver) {
      if (typeof prop === "string" && /^\d+$/.test(prop)) reads++;
      return Reflect.get(target, prop, receiver);
    },
  });
  return { array, reads: () => reads };
}

describe("decide: work per pass", () => {
  it("reads each instance a bounded number of times when every slot of a dependent service is absent", () => {
    // 200 services, each depending on `base`: every absent slot asks whether `base` is ready.
    const services = 200;
    const replicas = 10;
    const fleet = makeFleet({
      services: [
        { name: "base", replicas },
        ...Array.from({ length: services }, (_, i) => ({
          name: `svc${i}`,
          replicas,
          dependsOn: ["base"],
        })),
      ],
    });
    const instances: ObservedInstance[] = [];
    for (let slot = 0; slot < replicas; slot++) instances.push(running("base", slot));
    for (let i = 0; i < services; i++) {
      for (let slot = 0; slot < replicas; slot++) instances.push(absent(`svc${i}`, slot));
    }
    const { array, reads } = counted(instances);
    const actions = decide(makeSnapshot({ fleet, instances: array }));
    assert.equal(actions.filter((a) => a.type === "start").length, services * replicas);
    // Counting ready instances per absent slot read every instance 2,000 times (4 million
    // reads); counted once per pass, each instance is read a few times.
    assert.ok(
      reads() <= 5 * instances.length,
      `${reads()} reads of ${instances.length} instances: per-slot work over all instances is back`,
    );
  });

  it("still waits for a dependency with no ready instance, and starts once it has one", () => {
    const fleet = makeFleet({
      services: [
        { name: "db", replicas: 1 },
        { name: "api", replicas: 2, dependsOn: ["db"] },
      ],
    });
    const waiting = decide(makeSnapshot({ fleet, instances: [absent("db", 0)] }));
    assert.deepEqual(
      waiting.filter((a) => a.service === "api").map((a) => [a.type, a.reason.code]),
      [
        ["wait", "waiting-for-dependency"],
        ["wait", "waiting-for-dependency"],
      ],
    );
    const starting = decide(makeSnapshot({ fleet, instances: [running("db", 0)] }));
    assert.deepEqual(
      starting.filter((a) => a.service === "api").map((a) => a.type),
      ["start", "start"],
    );
  });
});
