/**
 * Crash safety of a progressive deploy (issue 15 item 4): the controller is SIGKILLed at every
 * boundary of the deploy catalogue (src/controller/crashPoints.ts) on one fleet under load. The
 * boundaries not crashed at yet are armed, so a deploy runs through several crashes (each next
 * controller armed with the rest, a few per deploy) until it finishes; deploys alternate v1 ↔ v2
 * until every boundary has been crashed at. After each deploy: proven, with the active release,
 * the ledger, the instances and what the data plane serves (asked through its own socket)
 * agreeing; every instance started and stopped once (journal); no process orphaned or duplicated
 * (/proc); no request failed.
 */

import assert from "node:assert/strict";
import { after, before } from "node:test";
import { CRASH_CATALOGUE } from "../../src/controller/crashPoints.ts";
import { CrashFleet, SettledOtherwise } from "../helpers/crashFleet.ts";
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

let fleet: CrashFleet;

before(async () => {
  fleet = await CrashFleet.start({
    yaml: (basePort, port) => releaseFleetYaml("crash-deploy", basePort, port),
    slots: 4,
    instances: 2,
    rps: 40,
  });
});
after(async () => {
  await fleet?.stop();
});

catalogueTests("deploy", CRASH_CATALOGUE.deploy, 6, async (n, armed, t) => {
  const from = (await releasesOf(fleet)).active;
  const to = from === "v1" ? "v2" : "v1";
  const fromBank = bankOf(instancesOn(await fleet.status(), from));
  const toBank = fromBank === 0 ? 1 : 0;
  const startedAt = Date.now();
  const run = await fleet.runOperation({
    what: `deploy ${n} (${from} → ${to})`,
    armed,
    trigger: () => fleet.box.api("POST", "/v1/services/api/deploy", { version: to }),
    settled: async () => {
      const doc = await releasesOf(fleet);
      const ended = doc.rollouts.find((r) => r.kind === "deploy" && r.state.to === to && r.finished);
      // Compensated instead of completed: nothing here should cause it; say so at once.
      if (ended !== undefined && ended.state.phase !== "proven")
        throw new SettledOtherwise(`the deploy of ${to} ended ${ended.state.phase}`);
      if (doc.active !== to || !doc.rollouts.every((r) => r.finished)) return false;
      const all = (await fleet.status()).services.flatMap((s) => s.instances);
      return all.length === 2 && all.every((i) => i.state === "ready" && i.release === to);
    },
  });
  const context = describeRun(run, t);
  const done = await releasesOf(fleet);
  const rollout = done.rollouts.find((r) => r.kind === "deploy" && r.state.to === to && r.finished);
  assert.equal(rollout?.state.phase, "proven", context);
  assert.equal(done.history.find((h) => h.version === to)?.status, "proven", context);
  assert.equal(done.history.find((h) => h.version === from)?.status, "superseded", context);
  const names = bankInstances(toBank);
  assert.deepEqual(
    instancesOn(await fleet.status(), to).sort(),
    names,
    `${context}: ${to} runs in bank ${toBank}`,
  );
  await fleet.expectServed(servesOnly(names, to), `${context}: the data plane serving ${to} only`);
  await fleet.assertJournal(run.journalFrom, { starts: names, stops: bankInstances(fromBank) }, context);
  await fleet.assertProcessesMatchStore(context);
  assert.deepEqual(fleet.failedSince(startedAt, run).slice(0, 5), [], `${context}: requests failed`);
});
