/**
 * The real controller, decision core, release and failover managers and SQLite store, run on the
 * simulated driver, data plane and probes (src/drivers/sim) in virtual time, with 1,000 instances.
 * What is asserted is behaviour and operation counts (store writes and reads, reads of the spec):
 * wall time belongs in bench:scale.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Snapshot } from "../../src/dataplane/feedProtocol.ts";
import { SimFleet } from "../../src/drivers/sim/simFleet.ts";
import type { FleetSpec, ServiceSpec } from "../../src/spec/model.ts";
import { scaleFleet } from "../helpers/scaleFleet.ts";

const SERVICES = 100;
const REPLICAS = 10;
const TOTAL = SERVICES * REPLICAS;

/**
 * `fleet` with every service spec and the services list counting how often they are read: a pass
 * that walks every instance for every service reads `service.name` services × instances times.
 */
function countingFleet(fleet: FleetSpec): { fleet: FleetSpec; reads: () => number } {
  let reads = 0;
  const services = fleet.services.map(
    (service) =>
      new Proxy(service, {
        get(target, prop, receiver) {
          reads++;
          return Reflect.get(target, prop, receiver);
        },
      }) as ServiceSpec,
  );
  const list = new Proxy(services, {
    get(target, prop, receiver) {
      if (typeof prop === "string" && /^\d+$/.test(prop)) reads++;
      return Reflect.get(target, prop, receiver);
    },
  });
  return { fleet: { ...fleet, services: list }, reads: () => reads };
}

function membersOf(snapshot: Snapshot, service: string): string[] {
  return (snapshot.services.find((s) => s.name === service)?.endpoints ?? []).map((e) => e.instance);
}

describe("controller on the simulated fleet (1,000 instances, virtual time)", () => {
  let dir: string;
  let sim: SimFleet;
  let specReads: () => number;
  const snapshots: Snapshot[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "hs-simfleet-"));
    const counting = countingFleet(scaleFleet(SERVICES, REPLICAS));
    specReads = counting.reads;
    sim = new SimFleet({ fleet: counting.fleet, stateDir: dir, counter: specReads });
    sim.dataPlane!.onSnapshot((s) => snapshots.push(s));
    await sim.start();
    await sim.runUntil(() => sim.readyCount() === TOTAL, 60_000, 250);
    // Past the first passes' one-off work (release records, first membership).
    await sim.run(5_000);
  });

  after(async () => {
    await sim?.close().catch(() => {});
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("starts every instance and gives the data plane every one as a member", () => {
    assert.equal(sim.driver.counts.starts, TOTAL);
    const last = snapshots.at(-1)!;
    assert.equal(last.services.length, SERVICES);
    assert.equal(
      last.services.reduce((n, s) => n + (s.endpoints?.length ?? 0), 0),
      TOTAL,
    );
  });

  it("writes nothing to the store and pushes no snapshot in steady passes, and reads little", async () => {
    const passes = sim.passes.length;
    const writes = sim.storeCounts.writes;
    const reads = sim.storeCounts.reads;
    const pushed = sim.dataPlane!.counts.snapshots;
    const spec = specReads();
    await sim.run(10_000);
    const steady = sim.passes.length - passes;
    // A quiet fleet is passed over once a second (QUIET_PASS_EVERY_MS), not at every 250 ms tick.
    assert.ok(steady >= 9 && steady <= 11, `${steady} passes in 10 virtual s (one a second when quiet)`);
    assert.equal(sim.storeCounts.writes - writes, 0, "store writes in steady passes");
    assert.equal(sim.dataPlane!.counts.snapshots - pushed, 0, "snapshots pushed with nothing changed");
    assert.ok(
      sim.passes.slice(passes).every((p) => p.writes === 0),
      "a steady pass wrote to the store",
    );
    // Reading every service's ledger entry every pass was 100 reads a pass here (1,000 at 10k).
    const readsPerPass = (sim.storeCounts.reads - reads) / steady;
    assert.ok(readsPerPass <= 1 + SERVICES / 10, `${readsPerPass} store reads per steady pass`);
    // Reading the spec per instance per service (a walk of all instances for each service, a
    // find over the services for each instance) was 100,000s of reads a pass.
    const specPerPass = (specReads() - spec) / steady;
    assert.ok(
      specPerPass <= 20 * (TOTAL + SERVICES),
      `${Math.round(specPerPass)} reads of the spec per steady pass: work per pass is quadratic again`,
    );
  });

  it("restarts a crashed instance, and the data plane has it out of membership while it is down", async () => {
    const victim = "s0042-3";
    const from = snapshots.length;
    const starts = sim.driver.startLog.length;
    assert.ok(sim.driver.crash(victim));
    await sim.runUntil(
      () =>
        sim.driver.startLog.slice(starts).some((s) => s.instance === victim) &&
        membersOf(snapshots.at(-1)!, "s0042").includes(victim),
      30_000,
      50,
    );
    const after = snapshots.slice(from);
    const firstWithout = after.findIndex((s) => !membersOf(s, "s0042").includes(victim));
    assert.ok(firstWithout >= 0, "no snapshot took the crashed instance out");
    assert.equal(membersOf(after[firstWithout]!, "s0042").length, REPLICAS - 1, "the others stay members");
    assert.ok(
      after.slice(firstWithout + 1).some((s) => membersOf(s, "s0042").includes(victim)),
      "it came back once ready",
    );
    const incident = sim.store.listIncidents({ service: "s0042" }).find((i) => i.instance === victim);
    assert.ok(incident, "an incident was opened for the crash");
    assert.equal(sim.readyCount(), TOTAL);
  });

  it("replaces a hung instance once its liveness probe fails (stop, then start)", async () => {
    const victim = "s0077-5";
    const starts = sim.driver.startLog.length;
    const stops = sim.driver.counts.stops;
    assert.ok(sim.driver.hang(victim));
    await sim.runUntil(
      () =>
        sim.driver.startLog.slice(starts).some((s) => s.instance === victim) && sim.readyCount() === TOTAL,
      60_000,
      250,
    );
    assert.equal(sim.driver.counts.stops - stops, 1);
    assert.deepEqual(
      sim.driver.startLog.slice(starts).map((s) => s.instance),
      [victim],
      "only the hung instance was started again",
    );
  });

  it("dispatches 100 stops at once without a walk over every instance per stop", async () => {
    // Every instance in slot 7 hangs: their liveness probes fail in the same turn, and one pass
    // dispatches 100 stops. Taking each out of membership walked every instance once per stop.
    const victims = Array.from({ length: SERVICES }, (_, i) => `s${String(i).padStart(4, "0")}-7`);
    const from = sim.passes.length;
    const starts = sim.driver.counts.starts;
    for (const name of victims) assert.ok(sim.driver.hang(name));
    await sim.runUntil(
      () => sim.driver.counts.starts - starts >= victims.length && sim.readyCount() === TOTAL,
      60_000,
      250,
    );
    const worst = Math.max(...sim.passes.slice(from).map((p) => p.counted));
    assert.ok(
      worst <= 20 * (TOTAL + SERVICES),
      `${worst} reads of the spec in one pass: work per stop over every instance is back`,
    );
  });

  it("goes back to no store writes once the failures are recovered and verified", async () => {
    // Incidents close after the stabilization window (10 s in the fixture), then nothing is left to write.
    await sim.runUntil(() => sim.store.listIncidents({ status: "open" }).length === 0, 60_000, 500);
    await sim.run(1_000);
    const writes = sim.storeCounts.writes;
    await sim.run(5_000);
    assert.equal(sim.storeCounts.writes - writes, 0);
  });
});
