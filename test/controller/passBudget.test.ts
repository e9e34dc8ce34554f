/**
 * A pass's dispatch budget (issue 15: one pass < 100 ms at 10,000 instances): a pass that has
 * more starts or stops to dispatch than its budget allows leaves the rest to a follow-up pass in a
 * turn of its own, at once (no wait for the next tick), and nothing is lost or done twice. The
 * budget is set to 0 here so every pass dispatches exactly MIN_ACTIONS_PER_PASS, whatever the
 * machine's speed: what is asserted is behaviour, not time.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { MIN_ACTIONS_PER_PASS } from "../../src/controller/controller.ts";
import { SimFleet } from "../../src/drivers/sim/simFleet.ts";
import { scaleFleet } from "../helpers/scaleFleet.ts";

const SERVICES = 10;
const REPLICAS = 10;
const TOTAL = SERVICES * REPLICAS;

describe("pass dispatch budget", () => {
  let dir: string;
  let sim: SimFleet;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "hs-budget-"));
    let starts = 0;
    sim = new SimFleet({
      fleet: scaleFleet(SERVICES, REPLICAS),
      stateDir: dir,
      passBudgetMs: 0,
      // Starts the driver was asked for during each pass.
      counter: () => {
        starts = sim?.driver.counts.starts ?? starts;
        return starts;
      },
    });
  });

  afterEach(async () => {
    await sim?.close().catch(() => {});
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("spreads a cold start over follow-up passes at the same instant, each starting at most its share", async () => {
    const t0 = sim.clock.now();
    await sim.start();
    assert.equal(sim.clock.now(), t0, "the start took virtual time");
    const atStart = sim.passes.filter((p) => p.at === t0);
    assert.equal(sim.driver.counts.starts, TOTAL, "every instance started at the first instant");
    assert.ok(
      atStart.length >= Math.ceil(TOTAL / MIN_ACTIONS_PER_PASS),
      `${atStart.length} passes at the first instant for ${TOTAL} starts`,
    );
    assert.ok(
      sim.passes.every((p) => p.counted <= MIN_ACTIONS_PER_PASS),
      `a pass started ${Math.max(...sim.passes.map((p) => p.counted))} instances`,
    );
    assert.equal(
      new Set(sim.driver.startLog.map((s) => s.instance)).size,
      TOTAL,
      "an instance was started twice",
    );
    await sim.runUntil(() => sim.readyCount() === TOTAL, 30_000, 250);
  });

  it("restarts a burst of crashed instances over several passes, each once and nothing else", async () => {
    await sim.start();
    await sim.runUntil(() => sim.readyCount() === TOTAL, 30_000, 250);
    await sim.run(5_000);
    const victims = Array.from(
      { length: SERVICES * 3 },
      (_, i) => `s${String(i % SERVICES).padStart(4, "0")}-${Math.floor(i / SERVICES)}`,
    );
    const from = sim.passes.length;
    const starts = sim.driver.startLog.length;
    for (const name of victims) assert.ok(sim.driver.crash(name));
    await sim.runUntil(() => sim.driver.startLog.length - starts >= victims.length, 30_000, 50);
    const restarted = sim.driver.startLog.slice(starts);
    assert.deepEqual(
      restarted.map((s) => s.instance).sort(),
      [...victims].sort(),
      "each crashed instance started once, and nothing else",
    );
    assert.ok(
      sim.passes.slice(from).every((p) => p.counted <= MIN_ACTIONS_PER_PASS),
      "a pass went over its share",
    );
    await sim.runUntil(() => sim.readyCount() === TOTAL, 30_000, 250);
  });
});
