/**
 * The controller's quiet cadence (issue 15): a converged fleet with nothing under way is re-decided
 * once a second instead of at every 250 ms tick, and anything that changes or is under way brings
 * the full cadence (or an immediate pass) back. Real controller, release and failover managers and
 * SQLite store on the simulated driver and data plane, in virtual time.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { QUIET_PASS_EVERY_MS } from "../../src/controller/controller.ts";
import { SimFleet } from "../../src/drivers/sim/simFleet.ts";
import { scaleFleet } from "../helpers/scaleFleet.ts";

const SERVICES = 4;
const REPLICAS = 5;
const TICK_MS = 250;

/** Full passes in the next `ms` virtual ms. */
async function passesOver(sim: SimFleet, ms: number): Promise<number> {
  const from = sim.passes.length;
  await sim.run(ms);
  return sim.passes.length - from;
}

describe("quiet passes", () => {
  let dir: string;
  let sim: SimFleet;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "hs-quiet-"));
    sim = new SimFleet({ fleet: scaleFleet(SERVICES, REPLICAS), stateDir: dir, tickMs: TICK_MS });
    await sim.start();
    await sim.runUntil(() => sim.readyCount() === SERVICES * REPLICAS, 60_000, TICK_MS);
    // Past the first passes' one-off work and the data plane's first decisions.
    await sim.run(5_000);
  });

  afterEach(async () => {
    await sim?.close().catch(() => {});
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("re-decides a converged fleet once a second, and counts the passes it leaves out", async () => {
    const skipped = sim.skippedPasses;
    const passes = await passesOver(sim, 10_000);
    const expected = 10_000 / QUIET_PASS_EVERY_MS;
    assert.ok(passes >= expected - 1 && passes <= expected + 1, `${passes} passes in 10 virtual s`);
    // Every tick is either a pass or a skip: 40 ticks in 10 s.
    assert.equal(passes + (sim.skippedPasses - skipped), 10_000 / TICK_MS);
  });

  it("re-decides at once when an instance exits, without waiting for the quiet cadence", async () => {
    // Just after a quiet pass, so the next one would be almost a second away.
    await sim.runUntil(() => sim.passes.at(-1)!.at === sim.clock.now(), 2_000, 50);
    await sim.run(50);
    const crashedAt = sim.clock.now();
    const from = sim.passes.length;
    assert.ok(sim.driver.crash("s0001-2"));
    await sim.clock.settle();
    assert.ok(
      sim.passes.slice(from).some((p) => p.at === crashedAt),
      "no pass at the instant of the exit",
    );
    await sim.runUntil(() => sim.readyCount() === SERVICES * REPLICAS, 30_000, 50);
  });

  it("keeps a pass every tick while a fault rule is in force", async () => {
    const rule = sim.dataPlane!.faults.add({ zone: "zone-a", fault: { kind: "latency", ms: 10 } });
    assert.equal(await passesOver(sim, 2_000), 2_000 / TICK_MS);
    sim.dataPlane!.faults.remove(rule.id);
    // Zone probes taken over by the fault must pass again before the fleet is quiet.
    await sim.run(5_000);
    assert.ok((await passesOver(sim, 4_000)) <= 4_000 / QUIET_PASS_EVERY_MS + 1, "quiet again");
  });

  it("keeps a pass every tick while the data plane ejects an instance", async () => {
    sim.dataPlane!.setEjected("s0002", "s0002-1", true);
    assert.equal(await passesOver(sim, 2_000), 2_000 / TICK_MS);
    sim.dataPlane!.setEjected("s0002", "s0002-1", false);
    await sim.run(2_000);
    assert.ok((await passesOver(sim, 4_000)) <= 4_000 / QUIET_PASS_EVERY_MS + 1, "quiet again");
  });

  it("moves a deploy started while quiet on at the next tick, and at every tick until it is done", async () => {
    await sim.runUntil(() => sim.passes.at(-1)!.at === sim.clock.now(), 2_000, 50);
    await sim.run(50);
    const startedAt = sim.clock.now();
    const starts = sim.driver.startLog.length;
    sim.releases.deploy("s0003", "v2");
    await sim.run(TICK_MS);
    assert.ok(
      sim.passes.some((p) => p.at > startedAt && p.at <= startedAt + TICK_MS),
      "no pass within a tick of the deploy",
    );
    assert.ok(
      sim.driver.startLog.slice(starts).some((s) => s.instance.startsWith("s0003-")),
      "the deploy's canary was not started within a tick",
    );
    assert.equal(await passesOver(sim, 2_000), 2_000 / TICK_MS, "a pass every tick during the deploy");
  });

  it("keeps a pass every tick while an instance is not ready", async () => {
    assert.ok(sim.driver.unready("s0000-4"));
    // Its readiness probe (every 1 s, 3 failures) takes it out within a few seconds.
    await sim.runUntil(
      () =>
        sim.controller
          .observed()
          .instances.some((i) => i.name === "s0000-4" && i.health?.state === "unready"),
      10_000,
      50,
    );
    assert.equal(await passesOver(sim, 2_000), 2_000 / TICK_MS);
    assert.ok(sim.driver.heal("s0000-4"));
    await sim.runUntil(() => sim.readyCount() === SERVICES * REPLICAS, 10_000, 50);
    await sim.run(1_000);
    assert.ok((await passesOver(sim, 4_000)) <= 4_000 / QUIET_PASS_EVERY_MS + 1, "quiet again");
  });
});
