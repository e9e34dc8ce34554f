/**
 * The HA scenarios of issue 15's Must show, for a fleet of two or three controllers on one
 * PostgreSQL store (test/helpers/haFleet.ts): the leader SIGKILLed under steady load, and during a
 * progressive deploy. What each asserts, and why the bounds are what they are, is said at each.
 */

import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { DEMO_PROBES, demoRelease } from "./e2e.ts";
import { driverViolations, ENDED_EVENTS, journalViolations, processViolations } from "./haChecks.ts";
import type { HaController, HaFleet, HaStatus, Takeover } from "./haFleet.ts";
import { failures, type SteadyLoad } from "./steadyLoad.ts";
import { waitFor } from "./waitFor.ts";

/**
 * The lease TTL of the tests: the 5 s default (renewed every second). A 2 s lease flapped on the
 * shared 2-core box (load ~14): a leader whose event loop stalled past TTL − TTL/5 = 1.6 s
 * deposed itself (exit 75) with no fault injected, and the proof needs the one takeover it causes.
 */
export const TEST_TTL_MS = 5_000;

/**
 * How late a follower may claim an expired lease on this machine. A follower claims again at the
 * expiry it last read (+5 ms, LeaderElection.acquire), or — when the leader renewed after that
 * read — one renewal period later at most; what is left is the store's round trip and the event
 * loop's lag on a loaded box (load average ~14 on 2 cores while 7 sessions run): 1.5 s for that.
 * Waiting out a second lease, or anything but the lease, overshoots it.
 */
export const CLAIM_SLACK_MS = 1_500;

/**
 * From the claim to `leader.elected`: the new leader builds its controller, binds its API and
 * attaches to the data plane (adopting it) before it says it leads. Measured 0.3–0.7 s on this
 * machine under load; 4 s allows a loaded 2-core box while failing a takeover that waited for
 * something else (another lease, a timeout of the data plane's feed).
 */
export const STARTUP_BUDGET_MS = 4_000;

/** Service `api`: 2 instances over two zones behind a front port, v1 running; deploys in 2 s steps. */
export function haFleetYaml(name: string, basePort: number, port: number): string {
  return `version: 1
name: ${name}
defaults:
${DEMO_PROBES}
  restart: { stopGracePeriod: 1s, resetAfter: 1s }
  deploy:
    steps: [50, 100]
    stepDuration: 2s
    stepDeadline: 60s
    soak: 2s
    keepStableWarm: false
    analysis: { minRequests: 3, maxErrorRateIncrease: 20%, maxP99Ratio: 10, minP99Increase: 1s }
  slo: { errorRate: 20%, p99: 2s }
services:
  api:
    replicas: 2
    basePort: ${basePort}
    port: ${port}
    placement: { zones: [zone-a, zone-b] }
    release: v1
    releases:
${[demoRelease("v1"), demoRelease("v2")].join("\n")}
`;
}

/** The releases API of `api`: the fields read here. */
export interface ReleasesDoc {
  active: string;
  history: { version: string; status: string }[];
  rollouts: {
    id: number;
    kind: string;
    finished: boolean;
    state: { phase: string; from: string; to: string; endedAt: number | null; toBank: 0 | 1 };
  }[];
}

/** Instance names of a bank of `api` (2 replicas: bank 0 is api-0, api-1; bank 1 api-2, api-3). */
export function bankOf(bank: 0 | 1): string[] {
  return [`api-${2 * bank}`, `api-${2 * bank + 1}`];
}

/** Instance name → pid, as the status shows them. */
export function pidsOf(status: HaStatus): Map<string, number | null> {
  return new Map(status.services.flatMap((s) => s.instances).map((i) => [i.name, i.pid]));
}

/**
 * The takeover's bounds, from the settings: the lease was taken only once the old one had expired
 * (no two leaders), within one renewal period plus CLAIM_SLACK_MS of the latest it could expire
 * (the fault + TTL), by one controller with the next token; `leader.elected` and the data plane
 * on the new token within STARTUP_BUDGET_MS of the claim.
 */
export function assertTakeover(fleet: HaFleet, takeover: Takeover, t: TestContext): void {
  const claimMs = takeover.newLease.acquiredAt - takeover.faultAt;
  const electedMs = takeover.electedAt - takeover.faultAt;
  const attachedMs = takeover.attachedAt === null ? null : takeover.attachedAt - takeover.faultAt;
  t.diagnostic(
    `takeover #${takeover.from.index} → #${takeover.to.index} (token ${takeover.fromToken} → ${takeover.token}): lease claimed ${claimMs} ms after the fault, leader.elected ${electedMs} ms, data plane on the new token ${attachedMs} ms (TTL ${fleet.ttlMs} ms)`,
  );
  assert.notEqual(takeover.to, takeover.from, "another controller leads");
  assert.equal(takeover.token, takeover.fromToken + 1, "one new leader: the token went up by one");
  assert.ok(
    takeover.newLease.acquiredAt >= takeover.oldLease.expiresAt,
    `the lease was taken at ${takeover.newLease.acquiredAt}, before the old one expired (${takeover.oldLease.expiresAt})`,
  );
  const claimBound = fleet.ttlMs + fleet.renewEveryMs + CLAIM_SLACK_MS;
  assert.ok(
    claimMs <= claimBound,
    `the lease was claimed ${claimMs} ms after the fault: more than TTL ${fleet.ttlMs} + a renewal period ${fleet.renewEveryMs} + ${CLAIM_SLACK_MS} ms`,
  );
  const electedAfterClaim = takeover.electedAt - takeover.newLease.acquiredAt;
  assert.ok(
    electedAfterClaim <= STARTUP_BUDGET_MS,
    `leader.elected came ${electedAfterClaim} ms after the claim (budget ${STARTUP_BUDGET_MS} ms)`,
  );
  assert.ok(
    takeover.attachedAt !== null && takeover.attachedAt - takeover.newLease.acquiredAt <= STARTUP_BUDGET_MS,
    `the data plane took the new token ${attachedMs} ms after the fault`,
  );
}

/**
 * No action done twice and nothing orphaned or duplicated, from the journal, the driver's own
 * record and /proc (test/helpers/haChecks.ts), once the fleet has settled.
 */
export async function assertNothingTwice(
  fleet: HaFleet,
  context: string,
  /** What the live processes must be (default: what the store records). */
  expected?: ReadonlyMap<string, number>,
): Promise<void> {
  await waitFor(
    async () => {
      const journal = await fleet.journal();
      const ended = await fleet.events(0, ENDED_EVENTS);
      const problems = [
        ...journalViolations(journal, ended),
        ...driverViolations(journal, fleet.driverRecord()),
        ...processViolations(fleet.liveInstanceGroups(), expected ?? (await fleet.recordedPids())),
        ...fleet
          .strangers((await fleet.dataPlane()).identity.pid)
          .map((p) => `stray process in the sandbox: ${p}`),
      ];
      if (problems.length === 0) return true;
      throw new Error(problems.join("\n"));
    },
    { timeoutMs: 15_000, intervalMs: 250, what: `${context}: no action done twice, nothing orphaned` },
  );
}

/** The load's failed requests, said in full for an assertion. */
export function assertNoFailedRequests(load: SteadyLoad, context: string): void {
  const failed = failures(load.outcomes);
  assert.deepEqual(
    failed.slice(0, 10),
    [],
    `${context}: ${failed.length} of ${load.outcomes.length} requests failed`,
  );
  assert.ok(load.outcomes.length > 0, `${context}: the load sent requests`);
}

/**
 * The leader is SIGKILLed under steady load: a follower takes over within the bounds, adopts every
 * instance (same pids, nothing started or stopped), and the data plane takes its orders. Returns
 * the takeover; the dead controller is replaced by a new follower so the fleet keeps its size.
 */
export async function killLeaderUnderLoad(
  fleet: HaFleet,
  load: SteadyLoad,
  t: TestContext,
): Promise<Takeover> {
  const before = await fleet.steady(2, "the fleet steady before the kill");
  const sentBefore = load.outcomes.length;
  const takeover = await fleet.faultLeader("SIGKILL");
  assertTakeover(fleet, takeover, t);
  const after = await fleet.steady(
    2,
    "the fleet steady under the new leader",
    (s) => s.leadership?.token === takeover.token,
  );
  assert.deepEqual(pidsOf(after), pidsOf(before), "every instance adopted: the same pids");
  const journal = await fleet.journal();
  assert.deepEqual(
    journal.filter((e) => e.at >= takeover.faultAt && (e.action === "start" || e.action === "stop")),
    [],
    "nothing to start or stop after the takeover",
  );
  const adopted = (await fleet.events(takeover.faultAt, ["instance.adopted"])).map((e) => e.instance).sort();
  assert.deepEqual(adopted, ["api-0", "api-1"], "the new leader adopted both instances");
  const identity = (await fleet.dataPlane()).identity;
  assert.equal(identity.fencingToken, takeover.token, "the data plane takes orders from the new token");
  assert.equal(after.dataPlane?.pid, before.dataPlane?.pid, "the data plane was adopted, not restarted");
  // The other followers (three controllers) now follow the new leader.
  for (const follower of fleet.followersOf(takeover.to)) await fleet.following(follower);
  await assertNothingTwice(fleet, "after the kill under load");
  await waitFor(() => load.outcomes.length > sentBefore + 20, { what: "load after the takeover" });
  assertNoFailedRequests(load, "kill -9 of the leader under load");
  return takeover;
}

/** Where in the deploy the leader dies. */
export type DeployMoment =
  /** The new bank is starting: its first instance started (journaled), not yet taking traffic. */
  | "starting"
  /** Traffic moves: the first step (50 %) has begun. */
  | "stepping";

/**
 * A progressive deploy of v2 is triggered through a follower (its API forwards it) and the
 * leader is SIGKILLed at `moment`: a follower takes over within the bounds and resumes the deploy,
 * which completes (or rolls back: either is a consistent end) with the release, the instances and
 * the data plane's endpoints and weights agreeing; no action done twice; no request failed.
 */
export async function killLeaderDuringDeploy(
  fleet: HaFleet,
  load: SteadyLoad,
  moment: DeployMoment,
  t: TestContext,
): Promise<Takeover> {
  await fleet.steady(2, "the fleet steady before the deploy");
  const leader = (await fleet.leader()) as HaController;
  const via = fleet.followersOf(leader)[0];
  assert.ok(via, "a follower to deploy through");
  const triggeredAt = Date.now();
  const response = await fleet.api(via, "POST", "/v1/services/api/deploy", { version: "v2" });
  assert.equal(response.status, 202, `deploy through follower #${via.index}: ${await response.text()}`);
  const lease = await fleet.lease();
  await fleet.telling(() =>
    waitFor(
      async () => {
        if (moment === "stepping") {
          return (await fleet.events(triggeredAt, ["deploy.step"])).some((e) => e.message.includes("v2"));
        }
        return (await fleet.journal()).some(
          (e) =>
            e.action === "start" &&
            e.result?.ok === true &&
            e.token === lease?.token &&
            bankOf(1).includes(e.target) &&
            e.at >= triggeredAt,
        );
      },
      { timeoutMs: 30_000, intervalMs: 20, what: `the deploy ${moment}` },
    ),
  );
  const takeover = await fleet.faultLeader("SIGKILL");
  assertTakeover(fleet, takeover, t);
  const releases = () => fleet.get<ReleasesDoc>(takeover.to, "/v1/services/api/releases");
  const rollout = await fleet.telling(() =>
    waitFor(async () => (await releases()).rollouts.find((r) => r.state.to === "v2" && r.finished), {
      timeoutMs: 60_000,
      what: "the deploy of v2 to finish under the new leader",
    }),
  );
  t.diagnostic(`the deploy ended ${rollout.state.phase} (leader killed while ${moment})`);
  assert.ok(
    ["proven", "rolled-back"].includes(rollout.state.phase),
    `the deploy ended ${rollout.state.phase}`,
  );
  assert.ok(
    rollout.state.endedAt !== null && rollout.state.endedAt > takeover.faultAt,
    "the deploy was still in flight when the leader died",
  );
  const release = rollout.state.phase === "proven" ? "v2" : "v1";
  const bank = rollout.state.phase === "proven" ? bankOf(1) : bankOf(0);
  const doc = await releases();
  assert.equal(doc.active, release, "the active release");
  const history = new Map(doc.history.map((h) => [h.version, h.status]));
  assert.equal(history.get("v2"), rollout.state.phase === "proven" ? "proven" : "failed");
  const status = await fleet.steady(2, `the fleet on ${release} only`, (s) =>
    s.services[0]!.instances.every((i) => i.release === release && bank.includes(i.name)),
  );
  assert.deepEqual([...pidsOf(status).keys()].sort(), bank, `${release} runs in its bank`);
  // What the data plane serves, as it says itself: that bank, that release, all the traffic.
  await waitFor(
    async () => {
      const served = (await fleet.dataPlane()).services.api as {
        endpoints: { instance: string; release: string; draining: boolean }[];
        weights: Record<string, number> | null;
      };
      const endpoints = served.endpoints
        .filter((e) => !e.draining)
        .map((e) => `${e.instance}@${e.release}`)
        .sort();
      assert.deepEqual(
        endpoints,
        bank.map((i) => `${i}@${release}`),
        "the data plane's endpoints",
      );
      const elsewhere = Object.entries(served.weights ?? {}).filter(([v, w]) => v !== release && w > 0);
      assert.deepEqual(
        elsewhere,
        [],
        `weights ${JSON.stringify(served.weights)} send traffic off ${release}`,
      );
      return true;
    },
    { timeoutMs: 15_000, what: "the data plane serving the deploy's end" },
  );
  const resumed = await fleet.events(takeover.faultAt, ["deploy.resumed", "deploy.started", "deploy.step"]);
  assert.ok(resumed.length > 0, "the new leader carried the deploy on");
  assert.equal((await fleet.dataPlane()).identity.fencingToken, takeover.token);
  // The journal after the fault is the new leader's alone.
  const journal = await fleet.journal();
  assert.deepEqual(
    journal
      .filter((e) => e.at >= takeover.faultAt && e.token !== takeover.token)
      .map((e) => `#${e.id} ${e.action} ${e.target} token ${e.token}`),
    [],
    "journal entries after the takeover carry the new token",
  );
  await assertNothingTwice(fleet, `after the kill during the deploy (${moment})`);
  assertNoFailedRequests(load, `kill -9 of the leader during a deploy (${moment})`);
  return takeover;
}
