import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Action } from "../../src/decide/actions.ts";
import { decide } from "../../src/decide/reconcile.ts";
import { freshSlot, type SlotState } from "../../src/decide/slotState.ts";
import type { ObservedInstance, Snapshot } from "../../src/decide/snapshot.ts";
import { type FleetSpec, instanceName } from "../../src/spec/model.ts";
import { makeFleet, type ServiceOverrides } from "../helpers/fleetFixture.ts";
import { seededRandom } from "../helpers/seededRandom.ts";
import { absent, allReady, exited, health, makeSnapshot, NOW, running } from "../helpers/snapshotFixture.ts";

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

/** A fleet and an observed state in which anything can be going on. */
function randomSnapshot(seed: number): Snapshot {
  const random = seededRandom(seed);
  const serviceCount = 1 + Math.floor(random() * 6);
  const services: ServiceOverrides[] = [];
  for (let i = 0; i < serviceCount; i++) {
    const earlier = services.map((s) => s.name).filter(() => random() < 0.3);
    services.push({
      name: `svc${i}`,
      replicas: Math.floor(random() * 5),
      release: pick(random, ["v1", "v2"]),
      dependsOn: earlier,
      restart: { policy: pick(random, ["always", "always", "on-failure", "never"] as const) },
    });
  }
  const fleet = makeFleet({ services });
  const instances: ObservedInstance[] = [];
  const slots: SlotState[] = [];
  const busy: string[] = [];
  // Include a removed service and slots beyond the replica count.
  for (const service of [...fleet.services.map((s) => s.name), "removed"]) {
    for (let slot = 0; slot < 6; slot++) {
      const name = instanceName(service, slot);
      const release = pick(random, ["v1", "v2"]);
      const roll = random();
      if (roll < 0.15) continue;
      if (roll < 0.25) instances.push(absent(service, slot, release));
      else if (roll < 0.45) {
        instances.push(
          exited(service, slot, {
            release,
            code: pick(random, [0, 1, null]),
            signal: pick(random, [null, "SIGKILL"]),
          }),
        );
      } else {
        const state = pick(random, ["ready", "ready", "starting", "unready", "unhealthy"] as const);
        const reason =
          state === "unhealthy" ? pick(random, ["liveness: down", "startup: never came up"]) : state;
        instances.push(
          running(service, slot, { release, health: random() < 0.1 ? null : health(state, { reason }) }),
        );
      }
      if (random() < 0.3) {
        slots.push({
          ...freshSlot(name, NOW - 10_000),
          consecutiveFailures: 1 + Math.floor(random() * 6),
          nextStartAt: NOW + Math.floor((random() - 0.5) * 20_000),
          crashLoop: random() < 0.3,
        });
      }
      if (random() < 0.1) busy.push(name);
    }
  }
  return makeSnapshot({ fleet, instances, slots, busy });
}

/** Invariants every decision must hold, whatever the snapshot. */
function checkInvariants(snapshot: Snapshot, actions: Action[]): void {
  const byName = new Map(snapshot.instances.map((i) => [i.name, i]));
  const services = new Map(snapshot.fleet.services.map((s) => [s.name, s]));
  const seen = new Set<string>();
  const rollingStops = new Map<string, number>();
  for (const action of actions) {
    const context = `${action.type} ${action.instance} (${action.reason.code})`;
    assert.ok(!seen.has(action.instance), `two actions for ${action.instance}`);
    seen.add(action.instance);
    assert.ok(!snapshot.busy.has(action.instance), `acted on busy ${context}`);
    assert.ok(action.reason.message.length > 0, `empty reason message: ${context}`);
    const observed = byName.get(action.instance);
    const service = services.get(action.service);
    if (action.type === "start") {
      assert.ok(
        service !== undefined && action.slot < service.replicas,
        `start outside the spec: ${context}`,
      );
      assert.equal(action.instance, instanceName(service.name, action.slot));
      assert.equal(action.release, service.release, context);
      assert.ok(observed === undefined || observed.runtime !== "running", `start of a running ${context}`);
      if (observed === undefined || observed.runtime === "absent") {
        for (const dep of service.dependsOn) {
          const depReady = snapshot.instances.some(
            (i) => i.service === dep && i.runtime === "running" && i.health?.state === "ready",
          );
          assert.ok(depReady, `started ${context} before its dependency ${dep} was ready`);
        }
      }
    }
    if (action.type === "stop") {
      assert.equal(observed?.runtime, "running", `stop of something not running: ${context}`);
      if (action.reason.code === "release-changed") {
        rollingStops.set(action.service, (rollingStops.get(action.service) ?? 0) + 1);
        const spec = services.get(action.service)!;
        for (let slot = 0; slot < spec.replicas; slot++) {
          const other = instanceName(spec.name, slot);
          if (other === action.instance) continue;
          const o = byName.get(other);
          assert.ok(
            !snapshot.busy.has(other) && o?.runtime === "running" && o.health?.state === "ready",
            `rolled ${action.instance} while ${other} was not ready`,
          );
        }
      }
      const wanted = service !== undefined && observed !== undefined && observed.slot < service.replicas;
      assert.equal(action.afterStop, wanted ? "restart" : "leave-stopped", context);
    }
  }
  for (const [service, count] of rollingStops) assert.ok(count <= 1, `${count} rolling stops for ${service}`);
}

describe("decide: properties", () => {
  it("holds its invariants on 500 generated snapshots", () => {
    for (let seed = 1; seed <= 500; seed++) {
      const snapshot = randomSnapshot(seed);
      const actions = decide(snapshot);
      try {
        checkInvariants(snapshot, actions);
      } catch (error) {
        (error as Error).message = `seed ${seed}: ${(error as Error).message}`;
        throw error;
      }
    }
  });

  it("is deterministic: the same snapshot gives the same actions", () => {
    for (let seed = 1; seed <= 100; seed++) {
      const first = decide(randomSnapshot(seed));
      const again = decide(randomSnapshot(seed));
      assert.deepEqual(again, first, `seed ${seed}`);
    }
    const snapshot = randomSnapshot(42);
    assert.deepEqual(decide(snapshot), decide(snapshot));
  });

  it("does not modify the snapshot it is given", () => {
    const snapshot = randomSnapshot(7);
    const before = structuredClone(snapshot);
    decide(snapshot);
    assert.deepEqual(snapshot, before);
  });

  it("starts each slot at most once even when the snapshot lists it twice", () => {
    const fleet = makeFleet({ services: [{ name: "api", replicas: 2 }] });
    const instances = [exited("api", 0), exited("api", 0, { code: 2 }), absent("api", 1), absent("api", 1)];
    const starts = decide(makeSnapshot({ fleet, instances })).filter((a) => a.type === "start");
    assert.deepEqual(
      starts.map((a) => a.instance),
      ["api-0", "api-1"],
    );
  });
});

describe("decide: at scale", () => {
  function bigFleet(): FleetSpec {
    // 200 services × 5 replicas; each service in a group of ten depends on the group's first.
    return makeFleet({
      services: Array.from({ length: 200 }, (_, i) => ({
        name: `svc${String(i).padStart(3, "0")}`,
        replicas: 5,
        dependsOn: i % 10 === 0 ? [] : [`svc${String(i - (i % 10)).padStart(3, "0")}`],
      })),
    });
  }

  it("does nothing for 200 services × 5 replicas that are all healthy", () => {
    const fleet = bigFleet();
    const instances = allReady(fleet);
    assert.equal(instances.length, 1_000);
    assert.deepEqual(decide(makeSnapshot({ fleet, instances })), []);
  });

  it("on a cold start of the same fleet starts only the services without dependencies", () => {
    const fleet = bigFleet();
    const actions = decide(makeSnapshot({ fleet }));
    assert.equal(actions.length, 1_000);
    const starts = actions.filter((a) => a.type === "start");
    assert.equal(starts.length, 20 * 5);
    assert.ok(starts.every((a) => Number(a.service.slice(3)) % 10 === 0));
    assert.equal(actions.filter((a) => a.reason.code === "waiting-for-dependency").length, 180 * 5);
  });

  it("at scale, acts only on the few broken instances", () => {
    const fleet = bigFleet();
    const instances = allReady(fleet).map((i) => {
      if (i.name === "svc017-3") return exited(i.service, i.slot);
      if (i.name === "svc150-0")
        return running(i.service, i.slot, { health: health("unhealthy", { reason: "liveness: x" }) });
      return i;
    });
    const actions = decide(makeSnapshot({ fleet, instances: [...instances, running("svc199", 5)] }));
    assert.deepEqual(
      actions.map((a) => [a.type, a.instance, a.reason.code]),
      [
        ["start", "svc017-3", "process-exited"],
        ["stop", "svc150-0", "liveness-failed"],
        ["stop", "svc199-5", "scaled-down"],
      ],
    );
  });
});
