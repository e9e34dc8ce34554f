/**
 * `homeostat apply --allow-in-place` and `homeostat apply --revision N`, end to end with a real
 * controller under steady load through the service's front port:
 * - an edited release definition is refused without the flag (nothing changes) and with it rolls
 *   every instance one at a time behind readiness, without a failed request;
 * - going back to an earlier revision takes its release back through the rollback path (behind
 *   the rollback checks), and a revision whose release the checks refuse changes nothing;
 * - an edited definition that never gets ready fails its revision once the instance rolled is
 *   not ready within the service's step deadline: that instance goes back to the previous
 *   definition behind readiness, none is left on the failed one, no request fails.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  allInstances,
  demoFleetYaml,
  describeEvents,
  environOf,
  eventsSince,
  freePort,
  freePortRange,
  readyStatus,
  type Sandbox,
  type StatusDoc,
  sandbox,
  waitForServing,
  withFastDeploys,
} from "../helpers/e2e.ts";
import { failures, type SteadyLoad, steadyLoad } from "../helpers/steadyLoad.ts";
import { waitFor } from "../helpers/waitFor.ts";

interface Progress {
  revision: number | null;
  state: string;
  error: string | null;
}
interface Releases {
  active: string;
  history: { version: string; status: string; spec: { env: Record<string, string> } }[];
  rollouts: { kind?: string; finished: boolean }[];
}

/**
 * `api` ×3 on `release`, v1's env MODE = `mode` (plus `env`); v2, and v3-bad answering half its
 * requests 500. A step (and an instance rolled in place) gets 3 s to be ready.
 */
function fleet(
  p: { basePort: number; port: number },
  o: { release: string; mode: string; env?: Record<string, string> },
): string {
  return withFastDeploys(
    demoFleetYaml({
      name: "in-place",
      services: [
        {
          name: "api",
          replicas: 3,
          basePort: p.basePort,
          port: p.port,
          release: o.release,
          env: { MODE: o.mode, ...o.env },
          releases: { v2: {}, "v3-bad": { FAULT_ERROR_RATE: "0.5" } },
        },
      ],
    }),
    { stepDeadline: "3s" },
  );
}

describe("apply --allow-in-place and --revision", () => {
  let box: Sandbox;
  let p: { basePort: number; port: number };
  let load: SteadyLoad;
  let file: string;
  const cli = (...args: string[]) => box.cli([...args, "--api-port", String(box.apiPort)]);
  const events = (since: number) => eventsSince(box, since);
  const write = (o: { release: string; mode: string; env?: Record<string, string> }) =>
    box.file("fleet.yaml", fleet(p, o));
  const applied = async (): Promise<Progress> => box.get<Progress>("/v1/apply");
  const revisions = async () =>
    (
      await box.get<{ revisions: { number: number; state: string; error: string | null }[] }>(
        "/v1/revisions?limit=100",
      )
    ).revisions;

  before(async () => {
    box = await sandbox("homeostat-in-place-");
    p = { basePort: await freePortRange(6), port: await freePort() };
    file = write({ release: "v1", mode: "tested" });
    box.up(file, ["--state-dir", box.stateDir]);
    await readyStatus(box, 3);
    await waitForServing(p.port, "api serving");
    load = steadyLoad({ port: p.port, rate: 40, connections: 4 });
  });
  after(async () => {
    await load?.stop();
    await box?.cleanup();
  });

  test("an edited release definition: refused without --allow-in-place; with it, one instance at a time behind readiness, 0 failed requests", async () => {
    const before = await readyStatus(box, 3);
    const pids = allInstances(before).map((i) => i.pid);
    const revisionsBefore = (await revisions()).length;
    write({ release: "v1", mode: "edited" });

    const refused = await cli("apply", file);
    assert.equal(refused.code, 1, refused.stdout + refused.stderr);
    assert.match(refused.stdout + refused.stderr, /immutable.*--allow-in-place/s);
    assert.equal((await revisions()).length, revisionsBefore, "nothing recorded");
    assert.deepEqual(
      allInstances(await box.get<StatusDoc>("/v1/status")).map((i) => i.pid),
      pids,
    );

    const from = Date.now();
    // Watch readiness while it rolls: never more than one instance out at a time.
    const readySeen: number[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const s = await box.get<StatusDoc>("/v1/status").catch(() => null);
        if (s !== null) readySeen.push(allInstances(s).filter((i) => i.state === "ready").length);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const result = await cli("apply", file, "--allow-in-place", "--reason", "in place");
    watching = false;
    await watcher;
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /in place, one instance at a time/);
    assert.match(result.stdout, /revision \d+ applied/);

    const after = await readyStatus(box, 3);
    for (const instance of allInstances(after)) {
      assert.ok(!pids.includes(instance.pid), `${instance.name} was replaced`);
      assert.equal(environOf(instance.pid!).MODE, "edited", `${instance.name} runs the edited definition`);
    }
    // One at a time: each instance is stopped only once the one rolled before it is ready again.
    const seen = await events(from);
    const stops = seen.filter((e) => e.type === "instance.stopped" && e.reason === "release-edited");
    const line = describeEvents(
      seen.filter(
        (e) => e.type === "instance.stopped" || (e.type === "instance.health" && /→ ready/.test(e.message)),
      ),
      from,
    );
    assert.deepEqual(stops.map((e) => e.instance).sort(), ["api-0", "api-1", "api-2"], line);
    for (let k = 1; k < stops.length; k++) {
      const previous = stops[k - 1]!;
      const readyAgain = seen.find(
        (e) =>
          e.type === "instance.health" &&
          e.instance === previous.instance &&
          /→ ready/.test(e.message) &&
          e.at >= previous.at,
      );
      assert.ok(
        readyAgain && readyAgain.at <= stops[k]!.at,
        `${stops[k]!.instance} waited for ${previous.instance}:\n${line}`,
      );
    }
    assert.ok(
      readySeen.length > 0 && Math.min(...readySeen) >= 2,
      `ready counts seen: ${readySeen.join(",")}`,
    );
    // The edited definition is the record now.
    const releases = await box.get<Releases>("/v1/services/api/releases");
    assert.equal(releases.history.find((r) => r.version === "v1")?.spec.env.MODE, "edited");
    await new Promise((r) => setTimeout(r, 300)); // the last requests sent have ended
    const sent = load.between(from, Date.now() - 300);
    assert.ok(sent.length > 40, `${sent.length} requests`);
    assert.deepEqual(failures(sent), [], "no request failed while rolling in place");
  });

  test("apply --revision N: back to an earlier release through the rollback checks; a refused one changes nothing", async () => {
    const inPlace = (await applied()).revision!;
    // Forward: v2 through the progressive deploy.
    const forward = await cli("apply", write({ release: "v2", mode: "edited" }));
    assert.equal(forward.code, 0, forward.stdout + forward.stderr);
    assert.equal((await box.get<Releases>("/v1/services/api/releases")).active, "v2");

    // Back to the in-place revision: v2 → v1 is a rollback to a release this service ran.
    const plan = await cli("apply", "--revision", String(inPlace), "--dry-run");
    assert.equal(plan.code, 0, plan.stdout + plan.stderr);
    assert.match(plan.stdout, /as a rollback \(behind its safety checks\)/);
    const from = Date.now();
    const back = await cli("apply", "--revision", String(inPlace));
    assert.equal(back.code, 0, back.stdout + back.stderr);
    const seen = await events(from);
    assert.ok(
      seen.some((e) => e.type === "rollback.started"),
      seen.map((e) => `${e.type} ${e.reason}`).join("\n"),
    );
    assert.ok(!seen.some((e) => e.type === "deploy.started"), "a rollback, not a new deploy");
    const releases = await box.get<Releases>("/v1/services/api/releases");
    assert.equal(releases.active, "v1");
    const after = await readyStatus(box, 3);
    assert.ok(allInstances(after).every((i) => i.release === "v1"));
    const progress = await applied();
    assert.equal(progress.state, "applied");
    assert.ok(progress.revision! > inPlace, "a new revision, recorded from the earlier one's text");
    const spec = await box.get<{ revision: number; text: string }>("/v1/spec");
    assert.equal(spec.revision, progress.revision);
    assert.equal(spec.text, (await box.get<{ text: string }>(`/v1/revisions/${inPlace}`)).text);

    // v3-bad fails its canary: its revision is failed, v1 keeps running.
    const bad = await cli("apply", write({ release: "v3-bad", mode: "edited" }));
    assert.equal(bad.code, 1, bad.stdout + bad.stderr);
    const failed = await applied();
    assert.equal(failed.state, "failed");
    const badRevision = failed.revision!;
    await waitFor(
      async () => {
        const r = await box.get<Releases>("/v1/services/api/releases");
        return r.active === "v1" && r.rollouts.every((x) => x.finished);
      },
      { timeoutMs: 60_000, what: "v3-bad rolled back" },
    );
    const pids = allInstances(await readyStatus(box, 3)).map((i) => i.pid);
    const count = (await revisions()).length;

    // Going "back" to that revision would roll back to a release that already failed here: the
    // rollback checks refuse it, and nothing changes.
    const refused = await cli("apply", "--revision", String(badRevision));
    assert.equal(refused.code, 1, refused.stdout + refused.stderr);
    assert.match(refused.stdout + refused.stderr, /rollback checks refuse/);
    assert.equal((await revisions()).length, count, "no revision recorded");
    assert.equal((await box.get<Releases>("/v1/services/api/releases")).active, "v1");
    assert.deepEqual(
      allInstances(await box.get<StatusDoc>("/v1/status")).map((i) => i.pid),
      pids,
    );
    assert.equal((await box.get<{ revision: number }>("/v1/spec")).revision, progress.revision);
  });

  test("an in-place roll whose instance is not ready within stepDeadline: the revision fails, that instance goes back behind readiness, none left on the failed config, 0 failed requests", async () => {
    const before = await readyStatus(box, 3);
    const pids = new Map(allInstances(before).map((i) => [i.name, i.pid!]));
    const appliedBefore = (await box.get<{ revision: number }>("/v1/spec")).revision;
    const mode = environOf(pids.get("api-0")!).MODE!;
    // The same version name, an env whose /ready always answers 503.
    write({ release: "v1", mode, env: { FAULT_READY_FAIL: "1" } });

    const from = Date.now();
    const result = await cli("apply", file, "--allow-in-place", "--reason", "never ready");
    const took = Date.now() - from;
    const out = result.stdout + result.stderr;
    assert.equal(result.code, 1, out);
    assert.match(out, /waiting: api-0: rolling in place, waiting for it to be ready/);
    assert.match(
      result.stderr,
      /revision \d+ failed: api-0 did not get ready within 3s \(the service's deploy\.stepDeadline\) after it was rolled in place: unready: .*503/,
    );
    assert.match(result.stderr, /rolled back, no instance runs its definition/);
    assert.ok(took >= 3000, `failed after ${took}ms, not before the deadline`);

    // GET /v1/apply and the revision say so.
    const progress = await applied();
    assert.equal(progress.state, "failed");
    assert.deepEqual((progress as Progress & { waiting: string[] }).waiting, [], "nothing left to roll back");
    assert.match(progress.error ?? "", /api-0 did not get ready within 3s.*unready: .*503/);
    const revision = (await revisions()).find((r) => r.number === progress.revision);
    assert.equal(revision?.state, "failed");
    assert.equal(revision?.error, progress.error);
    assert.equal((await box.get<{ revision: number }>("/v1/spec")).revision, appliedBefore, "spec put back");

    // The fleet is back: api-0 replaced twice (rolled, then rolled back), the others never touched,
    // every one ready and on the previous definition.
    const after = await readyStatus(box, 3);
    const byName = new Map(allInstances(after).map((i) => [i.name, i]));
    assert.notEqual(byName.get("api-0")?.pid, pids.get("api-0"));
    assert.equal(byName.get("api-1")?.pid, pids.get("api-1"));
    assert.equal(byName.get("api-2")?.pid, pids.get("api-2"));
    for (const instance of allInstances(after)) {
      const env = environOf(instance.pid!);
      assert.equal(env.FAULT_READY_FAIL, undefined, `${instance.name} is not on the failed config`);
      assert.equal(env.MODE, mode);
    }
    assert.ok(
      !((await box.get<{ partial: { kind: string }[] }>("/v1/status")).partial ?? []).some(
        (x) => x.kind === "old-config",
      ),
      "nothing partial: no instance on another config",
    );
    const releases = await box.get<Releases>("/v1/services/api/releases");
    assert.equal(releases.history.find((r) => r.version === "v1")?.spec.env.FAULT_READY_FAIL, undefined);

    // Events: failed with its typed reason, then api-0 rolled back, then done rolling back.
    const seen = await events(from);
    const failed = seen.find((e) => e.type === "apply.failed");
    assert.equal(failed?.reason, "apply-not-ready", seen.map((e) => `${e.type} ${e.reason}`).join("\n"));
    assert.ok(failed!.at - from >= 3000);
    const stops = seen.filter((e) => e.type === "instance.stopped");
    assert.deepEqual(
      stops.map((e) => [e.instance, e.reason]),
      [
        ["api-0", "release-edited"],
        ["api-0", "apply-rolled-back"],
      ],
    );
    const back = seen.find((e) => e.type === "apply.rolled-back");
    assert.ok(back !== undefined && back.at >= stops[1]!.at && back.at >= failed!.at);

    await new Promise((r) => setTimeout(r, 300)); // the last requests sent have ended
    const sent = load.between(from, Date.now() - 300);
    assert.ok(sent.length > 40, `${sent.length} requests`);
    assert.deepEqual(failures(sent), [], "no request failed: the other instances kept serving");
  });
});
