/**
 * Crash safety of `homeostat apply` (issue 15 item 4): an apply that edits the running release's
 * definition in place (`--allow-in-place`: every instance rolled one at a time behind readiness)
 * goes through a controller SIGKILLed at every boundary of the apply catalogue
 * (src/controller/crashPoints.ts), each next controller armed with the boundaries not crashed at
 * yet (a few per apply); applies alternate MODE=a ↔ MODE=b until every boundary has been crashed
 * at. After each: the revision applied, every instance running the new definition (its process
 * environment, read from /proc) and served by the data plane; each instance rolled once — one
 * stop and one start (journal); no process orphaned or duplicated (/proc); no request failed.
 */

import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { after, before } from "node:test";
import { CRASH_CATALOGUE } from "../../src/controller/crashPoints.ts";
import { CrashFleet, SettledOtherwise } from "../helpers/crashFleet.ts";
import { catalogueTests, describeRun, releaseFleetYaml, servesOnly } from "../helpers/crashScenarios.ts";
import { allInstances, demoRelease, environOf } from "../helpers/e2e.ts";

interface Progress {
  revision: number | null;
  state: string;
  error: string | null;
}

let fleet: CrashFleet;

before(async () => {
  fleet = await CrashFleet.start({
    yaml: (basePort, port) =>
      releaseFleetYaml("crash-apply", basePort, port, [demoRelease("v1", { MODE: "a" })]),
    slots: 4,
    instances: 2,
    rps: 40,
  });
});
after(async () => {
  await fleet?.stop();
});

/** Spec revisions, newest first. */
async function revisions(): Promise<{ number: number; state: string; error: string | null }[]> {
  return (
    await fleet.box.get<{ revisions: { number: number; state: string; error: string | null }[] }>(
      "/v1/revisions?limit=5",
    )
  ).revisions;
}

/** MODE of every running instance's process, by instance. */
async function modes(): Promise<Map<string, string | undefined>> {
  const instances = allInstances(await fleet.status());
  return new Map(instances.map((i) => [i.name, i.pid === null ? undefined : environOf(i.pid).MODE]));
}

catalogueTests("in-place apply", CRASH_CATALOGUE.apply, 5, async (n, armed, t) => {
  const text = readFileSync(fleet.file, "utf8");
  const from = /MODE: "(\w)"/.exec(text)![1]!;
  const to = from === "a" ? "b" : "a";
  const next = text.replace(`MODE: "${from}"`, `MODE: "${to}"`);
  const before = (await revisions())[0]!.number;
  const startedAt = Date.now();
  const run = await fleet.runOperation({
    what: `apply ${n} (MODE ${from} → ${to})`,
    armed,
    trigger: () =>
      fleet.box.api("POST", "/v1/apply", {
        text: next,
        file: fleet.file,
        allowInPlace: true,
        reason: "crash-safety test",
      }),
    settled: async () => {
      const [newest] = await revisions();
      if (newest!.state === "failed")
        throw new SettledOtherwise(`revision ${newest!.number} failed: ${newest!.error}`);
      if (newest!.number <= before || newest!.state !== "applied") return false;
      const all = allInstances(await fleet.status());
      if (all.length !== 2 || !all.every((i) => i.state === "ready")) return false;
      return [...(await modes()).values()].every((mode) => mode === to);
    },
  });
  const context = describeRun(run, t);
  // The file says what is applied now, for the next apply's text (and `homeostat diff`).
  writeFileSync(fleet.file, next);
  const [newest, previous] = await revisions();
  assert.equal(newest!.number, before + 1, `${context}: one revision recorded`);
  assert.equal(previous!.state, "applied", `${context}: the revision before stays applied`);
  // Where the last apply stands, as `homeostat apply` follows it, also after a restart.
  const progress = await fleet.box.get<Progress>("/v1/apply");
  assert.deepEqual([progress.revision, progress.state], [newest!.number, "applied"], context);
  assert.deepEqual([...(await modes()).entries()].sort(), [
    ["api-0", to],
    ["api-1", to],
  ]);
  await fleet.expectServed(servesOnly(["api-0", "api-1"], "v1"), `${context}: the data plane serving both`);
  await fleet.assertJournal(
    run.journalFrom,
    { starts: ["api-0", "api-1"], stops: ["api-0", "api-1"] },
    context,
  );
  await fleet.assertProcessesMatchStore(context);
  assert.deepEqual(fleet.failedSince(startedAt, run).slice(0, 5), [], `${context}: requests failed`);
});
