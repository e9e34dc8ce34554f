/**
 * Crash safety of zone failover and failback (issue 15 item 4): on one fleet of three zones under
 * load, `homeostat failover zone-a` and `homeostat failback zone-a` alternate, the controller
 * SIGKILLed at every boundary of each catalogue (src/controller/crashPoints.ts; each next
 * controller armed with the boundaries not crashed at yet). After each: the zone shifted (or
 * back) with the controller's zone shares, the saved failover state and what the data plane
 * serves (asked through its own socket) agreeing; the capacity added for the failover started
 * once and stopped once after the failback (journal); no process orphaned or duplicated (/proc);
 * no request failed.
 */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { CRASH_CATALOGUE } from "../../src/controller/crashPoints.ts";
import { CrashFleet, type Served } from "../helpers/crashFleet.ts";
import { CRASH_PROBES, describeRun } from "../helpers/crashScenarios.ts";
import { demoRelease, describeEvents, eventsSince } from "../helpers/e2e.ts";

/**
 * Three replicas over three zones, 10 rps each at 80 %. Two survivors take 16 rps before the
 * ceiling, and one added instance is enough up to 21.6 rps (the planner sizes for 72 %): the load,
 * 18.5 rps, sits between the two, 13 % above one and 17 % below the other, because the demand
 * measured on a busy 2-CPU machine moves by 15 % (a data plane starved while a controller
 * restarts counts a burst late). At 20 rps, 8 % from the upper one, CI once saw two instances
 * added; reproduced under a CPU hog, the demand read 17.75, 22.09, then 17.7 rps within 3 s.
 */
function zonesFleetYaml(basePort: number, port: number): string {
  return `version: 1
name: crash-zones
hosts:
  host-a: { zone: zone-a }
  host-b: { zone: zone-b }
  host-c: { zone: zone-c }
failover:
  automatic: false
  stepPercent: 50
  stepInterval: 1s
  stabilization: 500ms
  minInterval: 0s
defaults:
${CRASH_PROBES}
  restart: { stopGracePeriod: 1s, resetAfter: 1s }
services:
  api:
    replicas: 3
    basePort: ${basePort}
    port: ${port}
    placement: { zones: [zone-a, zone-b, zone-c] }
    capacity: { rps: 10, targetUtilization: 80% }
    release: v1
    releases:
${demoRelease("v1")}
`;
}

interface FailoverDoc {
  zones: { zone: string; share: number; shift: { phase: string } | null }[];
  services: { service: string; addedInstances: string[] }[];
}

let fleet: CrashFleet;

before(async () => {
  fleet = await CrashFleet.start({ yaml: zonesFleetYaml, slots: 6, instances: 3, rps: 18.5 });
});
after(async () => {
  await fleet?.stop();
});

const failoverState = () => fleet.box.get<FailoverDoc>("/v1/failover");
const added = (doc: FailoverDoc) => doc.services.find((s) => s.service === "api")?.addedInstances ?? [];

/** Every instance ready, `count` of them, and `also` of the failover state. */
async function settled(count: number, also: (doc: FailoverDoc) => boolean): Promise<boolean> {
  const doc = await failoverState();
  if (!also(doc)) return false;
  const all = (await fleet.status()).services.flatMap((s) => s.instances);
  return all.length === count && all.every((i) => i.state === "ready");
}

/** A request the failover's survivor protection shed on purpose. */
const shed = (r: { error: string | null }) => r.error === "shed: failover-shed";

function sharesAre(expected: Record<string, number>): (served: Served) => void {
  return (served) => assert.deepEqual(served.zoneShares, expected, "the data plane's zone shares");
}

const armedFailover = new Set<string>(CRASH_CATALOGUE.failover);
const armedFailback = new Set<string>(CRASH_CATALOGUE.failback);

for (let n = 1; n <= 5; n++) {
  test(`failover ${n} and failback ${n} of zone-a, through a controller crash at each boundary armed`, async (t) => {
    if (armedFailover.size + armedFailback.size === 0) {
      t.skip("every boundary of both catalogues has been crashed at");
      return;
    }
    // A run that failed half-way may have left zone-a out: back first, with nothing armed.
    if ((await failoverState()).zones.some((z) => z.shift !== null)) {
      await fleet.runOperation({
        what: "failback left over by a failed run",
        armed: new Set(),
        trigger: () => fleet.box.api("POST", "/v1/failback", { domain: "zone-a", reason: "cleanup" }),
        settled: () =>
          settled(3, (doc) => doc.zones.every((z) => z.shift === null) && added(doc).length === 0),
      });
    }
    let startedAt = Date.now();
    const out = await fleet.runOperation({
      what: `failover ${n} of zone-a`,
      armed: armedFailover,
      maxCrashes: 3,
      trigger: () => fleet.box.api("POST", "/v1/failover", { domain: "zone-a", reason: "crash-safety test" }),
      settled: async () => {
        const more = added(await failoverState()).length;
        return await settled(3 + more, (doc) => {
          const a = doc.zones.find((z) => z.zone === "zone-a");
          return more > 0 && a?.share === 0 && a.shift?.phase === "evacuated";
        });
      },
    });
    let context = describeRun(out, t);
    const extra = added(await failoverState());
    if (extra.length !== 1) {
      // Why each was added, and what the survivors looked like meanwhile.
      const why = describeEvents(
        (await eventsSince(fleet.box, startedAt)).filter((e) =>
          /^(failover|instance\.health|dataplane\.eject|zone)/.test(e.type),
        ),
        startedAt,
      );
      assert.fail(
        `${context}: one instance added for the two survivors, not ${extra.length} (${extra})\n${why}`,
      );
    }
    assert.notEqual(extra[0], "api-3", `${context}: nothing added in zone-a`);
    await fleet.expectServed((served) => {
      sharesAre({ "zone-a": 0 })(served);
      assert.deepEqual(
        served.endpoints
          .filter((e) => !e.draining)
          .map((e) => e.instance)
          .sort(),
        ["api-0", "api-1", "api-2", ...extra].sort(),
      );
    }, `${context}: the data plane with zone-a at 0 and the added instance serving`);
    await fleet.assertJournal(out.journalFrom, { starts: extra, stops: [] }, context);
    await fleet.assertProcessesMatchStore(context);
    // Shedding is the failover's own doing, announced (failover.shedding) and never more than the
    // ceiling needs: when an added instance takes longer to get ready than the step's hold.
    assert.deepEqual(fleet.failedSince(startedAt, out, shed).slice(0, 5), [], `${context}: requests failed`);

    startedAt = Date.now();
    const back = await fleet.runOperation({
      what: `failback ${n} of zone-a`,
      armed: armedFailback,
      maxCrashes: 3,
      trigger: () => fleet.box.api("POST", "/v1/failback", { domain: "zone-a", reason: "crash-safety test" }),
      settled: () => settled(3, (doc) => doc.zones.every((z) => z.shift === null) && added(doc).length === 0),
    });
    context = describeRun(back, t);
    await fleet.expectServed((served) => {
      sharesAre({})(served);
      assert.deepEqual(
        served.endpoints
          .filter((e) => !e.draining)
          .map((e) => e.instance)
          .sort(),
        ["api-0", "api-1", "api-2"],
      );
    }, `${context}: the data plane with every zone back and the added instance gone`);
    await fleet.assertJournal(back.journalFrom, { starts: [], stops: extra }, context);
    await fleet.assertProcessesMatchStore(context);
    assert.deepEqual(fleet.failedSince(startedAt, back, shed).slice(0, 5), [], `${context}: requests failed`);
  });
}

test("failover and failback: the controller was crashed at every boundary of both catalogues", () => {
  assert.deepEqual([...armedFailover, ...armedFailback], [], "boundaries never crossed in 5 runs");
});
