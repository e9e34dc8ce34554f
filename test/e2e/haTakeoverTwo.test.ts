/**
 * Two controllers on one PostgreSQL store (issue 15, Must show): the leader is SIGKILLed under
 * steady load through the data plane, then — a new follower having replaced it — SIGKILLed again
 * while a progressive deploy is starting its new instances. Each time the follower takes over
 * within the lease TTL and a renewal period (bounds in test/helpers/haScenarios.ts), the deploy
 * ends consistently, no action is done twice (journal, driver's record, /proc) and no request
 * through the data plane fails.
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

describe("two controllers on PostgreSQL", () => {
  let fleet: HaFleet | undefined;
  let load: SteadyLoad | undefined;

  before(async () => {
    fleet = await HaFleet.create({
      yaml: (b, p) => haFleetYaml("ha-two", b, p),
      slots: 4,
      ttlMs: TEST_TTL_MS,
    });
    const ha = fleet;
    await Promise.all([ha.spawn(), ha.spawn()]);
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

  test("the leader SIGKILLed under load: the follower takes over, adopts everything, nothing fails", async (t) => {
    const ha = fleet as HaFleet;
    await killLeaderUnderLoad(ha, load as SteadyLoad, t);
    // Two controllers again for the next test: a new one follows.
    await ha.following(await ha.spawn());
  });

  test("the leader SIGKILLed while a deploy starts its instances: the follower finishes it, nothing twice", async (t) => {
    await killLeaderDuringDeploy(fleet as HaFleet, load as SteadyLoad, "starting", t);
  });
});
