/**
 * Three controllers on one PostgreSQL store (issue 15, Must show): the leader is SIGKILLed under
 * steady load through the data plane — two followers race for the lease, one wins (the token goes
 * up by one), the other follows it — then, three controllers again, SIGKILLed while a progressive
 * deploy moves traffic. Each time the takeover stays within the lease TTL and a renewal period
 * (bounds in test/helpers/haScenarios.ts), the deploy ends consistently, no action is done twice
 * (journal, driver's record, /proc) and no request through the data plane fails.
 */

import { after, before, describe, test } from "node:test";
import { HaFleet } from "../helpers/haFleet.ts";
import {
  haFleetYaml,
  killLeaderDuringDeploy,
  killLeaderUnderLoad,
  TEST_TTL_MS,
} from "../helpers/haScenarios.ts";
import { type SteadyLoad, steadyLoad } from "../helpers/steadyLoad.ts";
import { waitFor } from "../helpers/waitFor.ts";

describe("three controllers on PostgreSQL", () => {
  let fleet: HaFleet | undefined;
  let load: SteadyLoad | undefined;

  before(async () => {
    fleet = await HaFleet.create({
      yaml: (b, p) => haFleetYaml("ha-three", b, p),
      slots: 4,
      ttlMs: TEST_TTL_MS,
    });
    const ha = fleet;
    await Promise.all([ha.spawn(), ha.spawn(), ha.spawn()]);
    const leader = await ha.telling(() =>
      waitFor(() => ha.leader(), { timeoutMs: 120_000, what: "a leader" }),
    );
    await ha.leading(leader);
    for (const follower of ha.followersOf(leader)) await ha.following(follower);
    await ha.steady(2, "two instances ready");
    load = steadyLoad({ port: ha.port, rate: 40, connections: 4 });
  });
  after(async () => {
    try {
      await load?.stop();
    } finally {
      await fleet?.cleanup();
    }
  });

  test("the leader SIGKILLed under load: one of two followers takes over, the other follows it", async (t) => {
    const ha = fleet as HaFleet;
    const takeover = await killLeaderUnderLoad(ha, load as SteadyLoad, t);
    const followers = ha.followersOf(takeover.to);
    t.assert.equal(followers.length, 1, "the other follower still runs, following");
    // Three controllers again for the next test.
    await ha.following(await ha.spawn());
  });

  test("the leader SIGKILLed while a deploy moves traffic: a follower finishes it, nothing twice", async (t) => {
    await killLeaderDuringDeploy(fleet as HaFleet, load as SteadyLoad, "stepping", t);
  });
});
