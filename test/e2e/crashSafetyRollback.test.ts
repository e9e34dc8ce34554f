/**
 * Crash safety of rollbacks (issue 15 item 4): the controller is SIGKILLed at every boundary of
 * the manual-rollback catalogue (`homeostat rollback`) and of the automatic rollback of a deploy
 * whose canary fails (src/controller/crashPoints.ts), on one fleet under load, each next
 * controller armed with the boundaries not crashed at yet (a few per operation). After each
 * rollback: done, the active release, the ledger, the instances and what the data plane serves
 * agreeing; its incident opened once; every instance started and stopped once (journal); no
 * process orphaned or duplicated (/proc); no request failed but the bad canary's own.
 */

import assert from "node:assert/strict";
import { after, before } from "node:test";
import { CRASH_CATALOGUE } from "../../src/controller/crashPoints.ts";
import { CrashFleet } from "../helpers/crashFleet.ts";
import {
  bankInstances,
  bankOf,
  catalogueTests,
  describeRun,
  instancesOn,
  releaseFleetYaml,
  releasesOf,
  servesOnly,
} from "../helpers/crashScenarios.ts";
import { demoRelease } from "../helpers/e2e.ts";

let fleet: CrashFleet;

interface IncidentDoc {
  kind: string;
  detail: string;
  status: string;
  detectedAt: number;
}

before(async () => {
  fleet = await CrashFleet.start({
    yaml: (basePort, port) =>
      releaseFleetYaml("crash-rollback", basePort, port, [
        demoRelease("v1"),
        demoRelease("v2"),
        demoRelease("v3-bad", { FAULT_ERROR_RATE: "1" }),
      ]),
    slots: 4,
    instances: 2,
    rps: 40,
  });
  // A release to roll back from: v2, deployed and proven without a crash.
  const run = await fleet.runOperation({
    what: "deploy v2",
    armed: new Set(),
    trigger: () => fleet.box.api("POST", "/v1/services/api/deploy", { version: "v2" }),
    settled: async () => (await releasesOf(fleet)).active === "v2" && (await settledOn(2, "v2")),
  });
  assert.equal(run.crashes.length, 0);
});
after(async () => {
  await fleet?.stop();
});

/** `count` instances, all ready and running `release`, and no rollout in progress. */
async function settledOn(count: number, release: string): Promise<boolean> {
  const doc = await releasesOf(fleet);
  if (!doc.rollouts.every((r) => r.finished)) return false;
  const all = (await fleet.status()).services.flatMap((s) => s.instances);
  return all.length === count && all.every((i) => i.state === "ready" && i.release === release);
}

/** The rollback incidents opened since `since`, as "detail (status)". */
async function rollbackIncidents(since: number): Promise<string[]> {
  const { incidents } = await fleet.box.get<{ incidents: IncidentDoc[] }>("/v1/incidents?limit=50");
  return incidents
    .filter((i) => i.kind === "rollback" && i.detectedAt >= since - 1_000)
    .map((i) => `${i.detail} (${i.status})`);
}

catalogueTests("manual rollback", CRASH_CATALOGUE.rollback, 5, async (n, armed, t) => {
  const from = (await releasesOf(fleet)).active;
  const to = from === "v1" ? "v2" : "v1";
  const fromBank = bankOf(instancesOn(await fleet.status(), from));
  const toBank = fromBank === 0 ? 1 : 0;
  const startedAt = Date.now();
  // The release rolled back from is marked rolled-back, which blocks a rollback to it: the
  // rollbacks after the first one are forced (admin, audited), as an operator would.
  const body = n === 1 ? { to } : { to, force: true, reason: "crash-safety test: back again" };
  const run = await fleet.runOperation({
    what: `rollback ${n} (${from} → ${to})`,
    armed,
    trigger: () => fleet.box.api("POST", "/v1/services/api/rollback", body),
    settled: async () => (await releasesOf(fleet)).active === to && (await settledOn(2, to)),
  });
  const context = describeRun(run, t);
  const done = await releasesOf(fleet);
  const rollback = done.rollouts.find((r) => r.kind === "rollback" && r.finished);
  assert.equal(rollback?.state.phase, "done", context);
  assert.equal(done.history.find((h) => h.version === from)?.status, "rolled-back", context);
  const names = bankInstances(toBank);
  assert.deepEqual(instancesOn(await fleet.status(), to).sort(), names, context);
  await fleet.expectServed(servesOnly(names, to), `${context}: the data plane serving ${to} only`);
  await fleet.assertJournal(run.journalFrom, { starts: names, stops: bankInstances(fromBank) }, context);
  await fleet.assertProcessesMatchStore(context);
  // One incident for the rollback, whatever the crashes: opened once, not superseded by itself.
  const incidents = await rollbackIncidents(startedAt);
  assert.equal(incidents.length, 1, `${context}: rollback incidents ${JSON.stringify(incidents)}`);
  assert.deepEqual(fleet.failedSince(startedAt, run).slice(0, 5), [], `${context}: requests failed`);
});

catalogueTests("automatic rollback", CRASH_CATALOGUE.autoRollback, 3, async (n, armed, t) => {
  const active = (await releasesOf(fleet)).active;
  const activeBank = bankOf(instancesOn(await fleet.status(), active));
  const canaryBank = activeBank === 0 ? 1 : 0;
  const startedAt = Date.now();
  const run = await fleet.runOperation({
    what: `deploy ${n} of v3-bad (rolls back to ${active})`,
    armed,
    trigger: () => fleet.box.api("POST", "/v1/services/api/deploy", { version: "v3-bad" }),
    settled: async () => {
      const doc = await releasesOf(fleet);
      const ended = doc.rollouts.find((r) => r.kind === "deploy" && r.state.to === "v3-bad" && r.finished);
      return ended !== undefined && (await settledOn(2, active));
    },
  });
  const context = describeRun(run, t);
  const done = await releasesOf(fleet);
  const rollout = done.rollouts.find((r) => r.kind === "deploy" && r.state.to === "v3-bad" && r.finished);
  assert.equal(rollout?.state.phase, "rolled-back", context);
  assert.equal(done.active, active, context);
  assert.equal(done.history.find((h) => h.version === "v3-bad")?.status, "failed", context);
  const names = bankInstances(activeBank);
  await fleet.expectServed(servesOnly(names, active), `${context}: the data plane serving ${active} only`);
  const canary = bankInstances(canaryBank);
  await fleet.assertJournal(run.journalFrom, { starts: canary, stops: canary }, context);
  await fleet.assertProcessesMatchStore(context);
  assert.equal((await rollbackIncidents(startedAt)).length, 1, `${context}: one incident for the rollback`);
  // The canary's own failures (its 500s, and 503s once the data plane ejected both its
  // instances) end with the verdict: the rollback moves traffic back at once, crash or not.
  const verdict = (rollout?.state as { failedAt?: number } | undefined)?.failedAt ?? Date.now();
  const failed = fleet.failedSince(startedAt, run, (r) => r.at <= verdict + 1_000 || r.fault === "errorRate");
  assert.deepEqual(failed.slice(0, 5), [], `${context}: requests failed after the verdict`);
});
