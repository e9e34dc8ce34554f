/**
 * Zone failover end to end, under load, with the real CLI, controller, data plane and instances:
 * a zone cut off from the data plane is evacuated automatically, capacity is added in the other
 * zones, the minimum is shed (sheddable first, never critical), failback waits out its window and
 * does not flap when the zone fails again inside it, and manual failovers obey the safety rules.
 * The cut is made twice: with the data plane's own fault hook (`POST /v1/faults`), and with a real
 * network partition (nftables rules dropping every packet to and from the zone's ports).
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { netPartitionUnavailable } from "../../bench/common/netPartition.ts";
import type { CriticalityOutcome } from "../helpers/criticalityLoad.ts";
import { apiCli } from "../helpers/fleetControl.ts";
import { waitFor } from "../helpers/waitFor.ts";
import {
  assertDefaultNeverShed,
  type FailoverDoc,
  type ZoneEventDoc,
  ZoneFleet,
} from "../helpers/zoneFleet.ts";

/** The fleet's name and releases (v2: a deploy the failover must refuse). */
const FLEET = { name: "zone-failover-e2e", releases: ["v1", "v2"] };

/**
 * Evidence that shedding took the minimum in the right order: sheddable requests were refused by
 * the failover gate (the settings guarantee it, see the callers), none of default before the first
 * of sheddable, and every announced shedding that touched default had already shed all sheddable.
 */
function assertShedSheddableFirst(
  outcomes: readonly CriticalityOutcome[],
  shedding: readonly ZoneEventDoc[],
): void {
  const shed = outcomes.filter((o) => o.shed === "failover-shed");
  const sheddable = shed.filter((o) => o.criticality === "sheddable");
  const byDefault = shed.filter((o) => o.criticality === "default");
  assert.ok(sheddable.length > 0, `no sheddable request was shed (${byDefault.length} default were)`);
  const firstSheddable = Math.min(...sheddable.map((o) => o.at));
  const firstDefault = Math.min(...byDefault.map((o) => o.at));
  assert.ok(
    firstSheddable <= firstDefault,
    `a default request was shed at ${firstDefault}, before any sheddable one (${firstSheddable})`,
  );
  assert.ok(
    shedding.some((e) => (e.data.shed?.sheddable ?? 0) > 0),
    `no failover.shedding event shed sheddable traffic: ${JSON.stringify(shedding.map((e) => e.data.shed))}`,
  );
  for (const e of shedding) {
    const s = e.data.shed!;
    assert.ok(s.default === 0 || s.sheddable === 1, `default shed before all sheddable: ${e.message}`);
  }
}

describe("zone failover under load", () => {
  let fleet: ZoneFleet;
  const cli = (...args: string[]) => apiCli(fleet.box, ...args);
  const zone = (name: string) => fleet.zone(name);
  const events = (type?: string, afterSeq = 0) => fleet.events(type, afterSeq);
  const lastSeq = async () => (await events()).reduce((max, e) => Math.max(max, e.seq), 0);

  before(async () => {
    fleet = await ZoneFleet.start({ ...FLEET, serving: "api serving" });
  });
  after(async () => {
    await fleet?.stop();
  });

  test("a zone cut off from the data plane is evacuated: capacity added elsewhere, sheddable shed first, critical never shed", async () => {
    const cutAt = Date.now();
    const added = await cli("fault", "add", "blackhole", "--zone", "zone-a");
    assert.equal(added.code, 0, added.stderr);

    await fleet.expectZoneAEvacuated();

    // 100 rps on the two survivors (100 rps of capacity) is 100 % > 80 %: one more instance.
    const scaleUps = await fleet.scaleUps();
    const addedNames = scaleUps.flatMap((e) => e.data.instances ?? []);
    assert.ok(addedNames.length >= 1 && addedNames.length <= 2, JSON.stringify(addedNames));
    const ready = await waitFor(
      async () => {
        const found = await events("failover.capacity-ready");
        return found.length >= addedNames.length ? found : null;
      },
      { timeoutMs: 20_000, what: "added capacity ready" },
    );
    assert.ok(ready.every((e) => e.at >= cutAt));

    // A deploy needs the spare bank the failover is using: refused, not half-started.
    const deploy = await cli("deploy", "api", "v2");
    assert.equal(deploy.code, 1);
    assert.match(deploy.stderr, /spare bank.*failback/);

    // Once zone-a stops serving, 100 rps of demand meets 2 × 50 = 100 rps of serving capacity:
    // 100 % > the 80 % ceiling, so until the added instance is ready the gate must shed — and
    // sheddable (30 % of the demand, 30 rps) covers the 28 rps down to 72 %, so default need not.
    assertShedSheddableFirst(fleet.load.outcomes, await events("failover.shedding"));
    fleet.assertNoCriticalFailure();

    // Once evacuated and the capacity is ready, traffic flows again: the last second is all 200s.
    await fleet.expectCleanSecond("a clean second of traffic after the evacuation");
  });

  test("a controller killed mid-failover comes back with the zone still evacuated", async () => {
    const added = (await fleet.box.get<FailoverDoc>("/v1/failover")).services[0]!.addedInstances;
    assert.ok(added.length > 0);
    fleet.controller.child.kill("SIGKILL");
    await fleet.controller.exited;
    fleet.controller = fleet.box.up(fleet.fleetFile);
    const resumed = await waitFor(
      async () => {
        const found = await events("failover.resumed").catch(() => []);
        return found.length > 0 ? found : null;
      },
      { timeoutMs: 20_000, what: "the new controller resumed the failover" },
    );
    assert.match(resumed[0]!.message, /zone-a at 0 %/);
    // Faults live in the controller's memory: the drill's blackhole died with it. Put it back
    // before the 6 s window could give zone-a any traffic (a restart now also re-attaches the data plane, and CI machines are slow).
    const again = await cli("fault", "add", "blackhole", "--zone", "zone-a");
    assert.equal(again.code, 0, again.stderr);
    const z = await zone("zone-a");
    assert.equal(z.share, 0, "not a single request's worth of traffic back because of the restart");
    assert.deepEqual((await fleet.box.get<FailoverDoc>("/v1/failover")).services[0]!.addedInstances, added);
    await waitFor(async () => (await zone("zone-a")).state === "down", { what: "zone-a judged down again" });
  });

  test("failback waits out the window, does not flap when the zone fails again inside it, then ramps up", async () => {
    const mark = await lastSeq();
    const faults = await fleet.box.get<{ faults: { id: string }[] }>("/v1/faults");
    const clear = await cli("fault", "clear");
    assert.equal(clear.code, 0, clear.stderr);
    assert.ok(faults.faults.length > 0);
    await waitFor(async () => (await events("failback.waiting", mark)).length > 0, {
      what: "failback waiting",
    });

    // Fails again inside the 6 s window: back to nothing, and no traffic in between.
    const again = await cli("fault", "add", "blackhole", "--zone", "zone-a");
    assert.equal(again.code, 0, again.stderr);
    await waitFor(async () => (await events("failback.relapsed", mark)).length > 0, {
      what: "relapse noticed",
    });
    assert.equal((await events("failback.step", mark)).length, 0, "no traffic returned inside the window");
    assert.equal((await zone("zone-a")).share, 0);

    const clearAgain = await cli("fault", "clear");
    assert.equal(clearAgain.code, 0);
    const completed = await waitFor(
      async () => {
        const found = await events("failback.completed", mark);
        return found.length > 0 ? found : null;
      },
      { timeoutMs: 30_000, what: "failback completed" },
    );
    const steps = (await events("failback.step", mark)).filter((e) => e.seq <= completed[0]!.seq);
    assert.deepEqual(
      steps.map((e) => e.data.share),
      [0.25, 0.5, 0.75, 1],
      "traffic returns in steps of 25 %",
    );
    for (let i = 1; i < steps.length; i++) {
      assert.ok(steps[i]!.at - steps[i - 1]!.at >= 900, "one step per step interval (1 s)");
    }
    const waiting = await events("failback.waiting", mark);
    assert.ok(steps[0]!.at - waiting.at(-1)!.at >= 5_900, "the first step only after the 6 s window");
    assert.equal((await zone("zone-a")).share, 1);
    await waitFor(async () => (await events("failover.scale-down", mark)).length > 0, {
      what: "added instances stopped after failback",
    });
  });

  test("manual failover: stepwise, one at a time unless overridden with a reason, never every zone", async () => {
    const first = await cli("failover", "zone-b", "--reason", "drill", "--json");
    assert.equal(first.code, 0, first.stderr);
    const shift = (JSON.parse(first.stdout) as { shift: { phase: string; share: number; trigger: string } })
      .shift;
    assert.deepEqual([shift.phase, shift.share, shift.trigger], ["evacuating", 0.75, "manual"]);

    const second = await cli("failover", "zone-c");
    assert.equal(second.code, 1);
    assert.match(second.stderr, /one evacuation at a time.*HS_FAILOVER_REFUSED/s);

    const noReason = await cli("failover", "zone-c", "--override");
    assert.equal(noReason.code, 1);
    assert.match(noReason.stderr, /--override needs --reason/);

    const overridden = await cli("failover", "zone-c", "--override", "--reason", "zone-c switch maintenance");
    assert.equal(overridden.code, 0, overridden.stderr);

    const all = await cli("failover", "zone-a", "--override", "--reason", "everything");
    assert.equal(all.code, 1);
    assert.match(all.stderr, /no zone with traffic/);

    const again = await cli("failover", "zone-b");
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already/);

    const zones = await cli("zones");
    assert.equal(zones.code, 0, zones.stderr);
    assert.match(zones.stdout, /zone-b .*manual/);

    await waitFor(async () => (await zone("zone-b")).share === 0, {
      timeoutMs: 15_000,
      what: "zone-b evacuated step by step",
    });
    const bSteps = (await events("failover.step")).filter((e) => e.data.zone === "zone-b");
    assert.deepEqual(
      bSteps.map((e) => e.data.share),
      [0.75, 0.5, 0.25],
    );
    const journal = await fleet.box.get<{ journal: { action: string; target: string; reason: string }[] }>(
      "/v1/journal?limit=1000",
    );
    assert.ok(
      journal.journal.some(
        (j) => j.action === "failover" && j.target === "zone-c" && j.reason.includes("override"),
      ),
      "the override is audited",
    );

    for (const name of ["zone-b", "zone-c"]) {
      const back = await cli("failback", name, "--reason", "drill over");
      assert.equal(back.code, 0, back.stderr);
    }
    await waitFor(
      async () => (await fleet.box.get<FailoverDoc>("/v1/failover")).zones.every((z) => z.share === 1),
      { timeoutMs: 30_000, what: "every zone back" },
    );
    // 100 rps on 3 × 50 rps: losing any zone would leave 100 rps on 100 rps of capacity (100 %),
    // above the 80 % ceiling; the continuous N−1 check says so once the 30 s load average shows it.
    const lost = await waitFor(
      async () => {
        const found = await events("capacity.n-minus-1-lost");
        return found.length > 0 ? found : null;
      },
      { timeoutMs: 40_000, what: "the N−1 warning" },
    );
    assert.match(lost[0]!.message, /cannot lose zone-[abc] at current load/);
    const notShifted = await cli("failback", "zone-a");
    assert.equal(notShifted.code, 1);
    assert.match(notShifted.stderr, /not evacuated/);
  });
});

const partitionUnavailable = await netPartitionUnavailable();

describe("zone failover under a real network partition", { skip: partitionUnavailable ?? false }, () => {
  let fleet: ZoneFleet;
  const zone = (name: string) => fleet.zone(name);
  const events = (type: string, afterSeq = 0) => fleet.events(type, afterSeq);

  before(async () => {
    // maxReplicas 3: one instance may be added outside the lost zone, so the survivors carry
    // zone-a's load themselves until it is ready, and shedding protects them meanwhile.
    fleet = await ZoneFleet.start({
      ...FLEET,
      maxReplicas: 3,
      localReadiness: true,
      serving: "api serving",
      partition: true,
    });
  });
  after(async () => {
    await fleet?.stop();
  });

  test("zone-a's ports partitioned under load: evacuated, sheddable shed and never default, no critical request fails", async () => {
    const cutAt = Date.now();
    await fleet.cutZoneA();
    await fleet.expectZoneAEvacuated();
    // Until api-4 is ready the serving capacity is api-1 and api-2: 2 × 50 = 100 rps for ~100 rps
    // of demand, 100 % > 80 %. The gate must shed sheddable down to 72 % (28 of its 30 rps), and
    // default not at all: default is shed only for demand over 80 % that sheddable cannot cover,
    // which needs more than 114 rps (the load sends at most 100).
    await fleet.expectApi4AddedWhileShedding(cutAt);
    const shedding = await events("failover.shedding");
    assertShedSheddableFirst(fleet.load.outcomes, shedding);
    assert.equal(
      fleet.load.outcomes.filter((o) => o.shed === "failover-shed" && o.criticality === "default").length,
      0,
      "no default request shed",
    );
    assertDefaultNeverShed(shedding);
    fleet.assertNoCriticalFailure();
  });

  test("healed, then cut again inside the failback window: only the zone probe can see it, and it does", async () => {
    const mark = (await events("failover.started")).at(-1)!.seq;
    await fleet.healZoneA();
    await waitFor(async () => (await events("failback.waiting", mark)).length > 0, {
      timeoutMs: 30_000,
      what: "failback waiting once the partition is healed",
    });
    // zone-a keeps 0 % of the traffic and its readiness check is local: nothing but the zone
    // probe (a real connection through the partition) can notice this second cut.
    await fleet.cutZoneA();
    await waitFor(async () => (await events("failback.relapsed", mark)).length > 0, {
      timeoutMs: 10_000,
      what: "relapse noticed",
    });
    const z = await waitFor(
      async () => {
        const found = await zone("zone-a");
        return found.state === "down" ? found : null;
      },
      { what: "zone-a down again" },
    );
    assert.match(z.reason, /api-0: zone probe failed \d+×/);
    assert.equal(z.share, 0);
    assert.equal((await events("failback.step", mark)).length, 0, "no traffic returned inside the window");

    await fleet.healZoneA();
    await waitFor(async () => (await events("failback.completed", mark)).length > 0, {
      timeoutMs: 40_000,
      what: "failback completed",
    });
    assert.equal((await zone("zone-a")).share, 1);
    fleet.assertNoCriticalFailure();
  });
});
