/**
 * Fencing and the followers' API with up to three controllers on one PostgreSQL store (issue 15,
 * Must show): a follower's API forwards to the leader; a SIGSTOPped leader that wakes after
 * losing its lease cannot change anything — with the test hook that keeps it from noticing, its
 * orders reach the journal and the data plane and are refused there; without it, it exits 75
 * having done nothing; and `down` through a follower stops the fleet and every controller.
 *
 * Which processes run is read from /proc (test/helpers/haFleet.ts), not from the status: the
 * status gives the pids the store records, and whether a deposed leader leaves those records
 * alone is one of the things checked.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { STOPPED_HOLDER } from "../../src/store/leadership.ts";
import { processesUnder } from "../helpers/e2e.ts";
import { entriesOfToken } from "../helpers/haChecks.ts";
import { type HaController, HaFleet, type HaStatus } from "../helpers/haFleet.ts";
import {
  assertNoFailedRequests,
  assertNothingTwice,
  assertTakeover,
  haFleetYaml,
  pidsOf,
  TEST_TTL_MS,
} from "../helpers/haScenarios.ts";
import { type SteadyLoad, steadyLoad } from "../helpers/steadyLoad.ts";
import { waitFor } from "../helpers/waitFor.ts";

/** A leader that does not notice it was deposed (src/controller/leaderElection.ts, tests only). */
const DEAF = { HOMEOSTAT_TEST_HOOKS: "1", HOMEOSTAT_TEST_IGNORE_LEASE_LOSS: "1" };

describe("fencing and the followers' API", () => {
  let fleet: HaFleet | undefined;
  let load: SteadyLoad | undefined;
  let deaf: HaController;

  before(async () => {
    fleet = await HaFleet.create({
      yaml: (b, p) => haFleetYaml("ha-fencing", b, p),
      slots: 4,
      ttlMs: TEST_TTL_MS,
    });
    const ha = fleet;
    // The deaf one first, so that it leads and started every instance (they are its children).
    deaf = await ha.spawn(DEAF);
    await ha.leading(deaf);
    const followers = await Promise.all([ha.spawn(), ha.spawn()]);
    for (const follower of followers) await ha.following(follower);
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

  test("a follower's API forwards to the leader; GET /v1/leader it answers itself", async () => {
    const ha = fleet as HaFleet;
    const [follower] = ha.followersOf(deaf);
    assert.ok(follower);
    const direct = await ha.get<HaStatus>(deaf, "/v1/status");
    const forwarded = await ha.get<HaStatus>(follower, "/v1/status");
    assert.equal(forwarded.controller.pid, deaf.pid, "the leader answered");
    // The same document but for the lease's expiry, renewed in between.
    const lease = (s: HaStatus) => ({ ...s.leadership, expiresAt: null });
    assert.deepEqual(lease(forwarded), lease(direct));
    assert.equal(forwarded.leadership?.role, "leader");
    assert.deepEqual(pidsOf(forwarded), pidsOf(direct));
    assert.deepEqual(forwarded.dataPlane?.pid, direct.dataPlane?.pid);
    const leader = await ha.get<{
      role: string;
      self: { holder: string };
      leader: { pid: number; token: number };
    }>(follower, "/v1/leader");
    assert.equal(leader.role, "follower");
    assert.match(leader.self.holder, new RegExp(`/${follower.pid}/`));
    assert.equal(leader.leader.pid, deaf.pid);
    assert.equal(leader.leader.token, direct.leadership?.token);
  });

  test("a SIGSTOPped leader that wakes after losing its lease, and does not notice, changes nothing", async (t) => {
    const ha = fleet as HaFleet;
    try {
      await ha.steady(2, "steady before the stop");
      const before = ha.livePids();
      const dataPlanePid = (await ha.dataPlane()).identity.pid;
      const takeover = await ha.faultLeader("SIGSTOP");
      assert.equal(takeover.from, deaf);
      assertTakeover(ha, takeover, t);
      const wokeAt = Date.now();
      process.kill(deaf.pid, "SIGCONT");
      // Awake, it believes it leads. Its data-plane feed was cut when the new leader attached: it
      // attaches again with the old token, which the data plane refuses (dataplane.fenced).
      const dataPlaneRefusal = await ha.telling(() =>
        waitFor(
          async () =>
            (await ha.events(wokeAt, ["dataplane.fenced"])).find((e) => e.data?.token === takeover.fromToken),
          { timeoutMs: 30_000, what: "the data plane refusing the old leader" },
        ),
      );
      // Then something it acts on: api-0, its child, dies. It orders a start (or writes the exit
      // to the store): refused by the journal (journal.fenced) or by the fenced store (HS_FENCED,
      // which ends it). The new leader starts api-0 again: its legitimate action, under its token.
      const diedAt = Date.now();
      const lost = before.get("api-0") as number;
      process.kill(lost, "SIGKILL");
      const refused = await ha.telling(() =>
        waitFor(
          async () => {
            const journal = (await ha.events(diedAt, ["journal.fenced"])).filter((e) =>
              e.message.includes(`fencing token ${takeover.fromToken},`),
            );
            // Or it left: a fenced store write ends it (however it takes that, it is gone).
            const ended = !deaf.running();
            return journal.length > 0 || ended ? { journal, ended } : null;
          },
          { timeoutMs: 30_000, what: "the old leader's order refused" },
        ),
      );
      t.diagnostic(
        `refused: ${dataPlaneRefusal.message}; then ${refused.journal.length > 0 ? refused.journal[0]?.message : ""}${refused.ended ? ` it left: ${/HomeostatError: (.*)|no longer the leader.*/.exec(deaf.output())?.[0] ?? deaf.output().slice(-300)}` : "; it runs on"}`,
      );
      await ha.steady(2, "api-0 restarted by the new leader", () => {
        const now = ha.livePids().get("api-0");
        return now !== undefined && now !== lost;
      });
      const mid = ha.livePids();
      assert.deepEqual(
        entriesOfToken(await ha.journal(), takeover.fromToken, takeover.faultAt),
        [],
        "no journal entry of the old token after the takeover",
      );
      const identity = (await ha.dataPlane()).identity;
      assert.equal(identity.fencingToken, takeover.token, "the data plane keeps the new token");
      assert.equal(identity.pid, dataPlanePid, "the same data plane serves");
      const started = (await ha.journal()).filter(
        (e) => e.at >= wokeAt && (e.action === "start" || e.action === "stop"),
      );
      assert.deepEqual(
        started.map((e) => `${e.action} ${e.target} token ${e.token}`),
        [`start api-0 token ${takeover.token}`],
        "since the wake, only the new leader's restart of api-0",
      );
      await ha.steady(2, "steady after the wake");
      assert.deepEqual(ha.livePids(), mid, "no other process started or stopped");
      await assertNothingTwice(ha, "after the deaf leader woke", mid);
      await t.test("the store's instance records stay the new leader's", async () => {
        assert.deepEqual(await ha.recordedPids(), mid);
      });
    } finally {
      deaf.child.kill("SIGKILL");
      await deaf.exited;
    }
  });

  test("without the hook, a SIGSTOPped leader that wakes exits 75 having done nothing", async (t) => {
    const ha = fleet as HaFleet;
    // Three controllers again: the one to stop, and two followers racing for its lease.
    await ha.following(await ha.spawn());
    await ha.steady(2, "steady before the stop");
    const before = ha.livePids();
    const takeover = await ha.faultLeader("SIGSTOP");
    assertTakeover(ha, takeover, t);
    const sleeper = takeover.from;
    try {
      // api-0 (started by the sleeper after the last test's kill: its child) dies while it sleeps,
      // so an exit waits for it when it wakes.
      const lost = before.get("api-0") as number;
      process.kill(lost, "SIGKILL");
      await ha.steady(2, "api-0 restarted by the new leader", () => {
        const now = ha.livePids().get("api-0");
        return now !== undefined && now !== lost;
      });
      const mid = ha.livePids();
      process.kill(sleeper.pid, "SIGCONT");
      const exit = await ha.telling(() =>
        waitFor(async () => (sleeper.running() ? null : await sleeper.exited), {
          timeoutMs: 30_000,
          what: "the woken leader to exit",
        }),
      );
      t.diagnostic(`the woken leader exited ${exit.code ?? exit.signal}`);
      assert.ok(exit.code !== null && exit.code !== 0, `it left with an error code: ${JSON.stringify(exit)}`);
      await t.test("it exits 75, saying it no longer leads", () => {
        assert.equal(exit.code, 75, sleeper.output().slice(-3_000));
        assert.match(sleeper.output(), /no longer the leader/);
      });
      assert.deepEqual(
        entriesOfToken(await ha.journal(), takeover.fromToken, takeover.faultAt),
        [],
        "no journal entry of the old token after the takeover",
      );
      assert.equal((await ha.dataPlane()).identity.fencingToken, takeover.token);
      await ha.steady(2, "steady after the wake");
      assert.deepEqual(ha.livePids(), mid, "no process started or stopped since the wake");
      await assertNothingTwice(ha, "after the stopped leader woke and left", mid);
      await t.test("the store's instance records stay the new leader's", async () => {
        assert.deepEqual(await ha.recordedPids(), mid);
      });
    } finally {
      if (sleeper.running()) process.kill(sleeper.pid, "SIGKILL");
    }
  });

  test("down through a follower stops the fleet, and every controller exits", async () => {
    const ha = fleet as HaFleet;
    const whole = load as SteadyLoad;
    load = undefined;
    await whole.stop();
    assertNoFailedRequests(whole, "the whole run");
    const leader = await ha.leader();
    assert.ok(leader, "a leader");
    const [follower] = ha.followersOf(leader);
    assert.ok(follower, "a follower");
    const running = ha.controllers.filter((c) => c.running());
    // The CLI pointed at the follower's port; the token from the shared state directory.
    const down = await ha.box.cli([
      "down",
      "--api-port",
      String(follower.apiPort),
      "--state-dir",
      ha.box.stateDir,
    ]);
    assert.equal(down.code, 0, `${down.stdout}${down.stderr}`);
    await ha.telling(() =>
      waitFor(() => running.every((c) => !c.running()), {
        timeoutMs: 30_000,
        what: "every controller to exit",
      }),
    );
    assert.equal((await leader.exited).code, 0, leader.output());
    for (const other of running.filter((c) => c !== leader)) {
      assert.match(other.output(), /stopped/, `follower #${other.index} says why it left`);
    }
    assert.equal((await ha.lease())?.holder, STOPPED_HOLDER, "the lease says the fleet is stopped");
    await waitFor(() => processesUnder(ha.box.dir).length === 0, { what: "no process left in the sandbox" });
    assert.equal(ha.liveInstanceGroups().size, 0);
  });
});
