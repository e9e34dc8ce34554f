/**
 * The fleet file changed while no controller ran, then `up` again (issue 13, Why (a) and (b)):
 * what used to go wrong silently is now either applied through the safe path or reported.
 * (a) The running release's env edited in place: drift — a `release.edited` event, status
 *     `partial`, new instances keep the recorded definition, `releases --json` says what runs.
 * (b) `release: v1` → `v2`: a progressive deploy with canary analysis, never a rolling replace;
 *     v2 `active` only once the rollout finished, `proven` only with evidence, and `status`
 *     counting ready instances right all along.
 * Each with a real controller stopped by `down --keep-fleet` (the fleet keeps running) and a new
 * one started on the edited file.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
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
  sandboxesCleanedAfter,
  waitForServing,
  withFastDeploys,
} from "../helpers/e2e.ts";
import { failures, steadyLoad } from "../helpers/steadyLoad.ts";
import { waitFor } from "../helpers/waitFor.ts";

const newSandbox = sandboxesCleanedAfter();

interface HistoryEntry {
  version: string;
  contentHash: string;
  status: string;
  spec: { env: Record<string, string> };
  evidence: { requests: number; windowMs: number; errorRate: number | null } | null;
}
interface Releases {
  active: string;
  history: HistoryEntry[];
  rollouts: { finished: boolean }[];
}
interface Status extends StatusDoc {
  services: (StatusDoc["services"][number] & { release: string })[];
  partial: { kind: string; service?: string; detail: string }[];
}

/** `api` ×3 behind a front port; v1 (with `v1Env`) and v2; deploys short enough for a test. */
function fleet(p: { basePort: number; port: number }, o: { release: string; v1Env: Record<string, string> }) {
  return withFastDeploys(
    demoFleetYaml({
      services: [
        {
          name: "api",
          replicas: 3,
          basePort: p.basePort,
          port: p.port,
          release: o.release,
          env: o.v1Env,
          releases: { v2: {} },
        },
      ],
    }),
  );
}

/** `down --keep-fleet` (the instances and the data plane keep running), then `up` on `file`. */
async function restartController(box: Sandbox, file: string): Promise<void> {
  const down = await box.cli(["down", "--keep-fleet", "--api-port", String(box.apiPort)]);
  assert.equal(down.code, 0, down.stderr + down.stdout);
  box.up(file);
  await waitFor(async () => (await box.get("/healthz").catch(() => null)) !== null, {
    timeoutMs: 30_000,
    what: "the new controller's API",
  });
}

test("(a) the running release's env edited in place, then up: drift reported, new instances keep the recorded definition", async () => {
  const box = await newSandbox();
  const p = { basePort: await freePortRange(6), port: await freePort() };
  const file = box.file("fleet.yaml", fleet(p, { release: "v1", v1Env: { MODE: "tested" } }));
  box.up(file);
  const first = await readyStatus<Status>(box, 3);
  const pids = allInstances(first).map((i) => i.pid);
  for (const pid of pids) assert.equal(environOf(pid!).MODE, "tested");
  const recorded = (await box.get<Releases>("/v1/services/api/releases")).history.find(
    (r) => r.version === "v1",
  )!;

  // Edited under the same version name while no controller runs.
  box.file("fleet.yaml", fleet(p, { release: "v1", v1Env: { MODE: "edited" } }));
  const from = Date.now();
  await restartController(box, file);
  const adopted = await readyStatus<Status>(box, 3);
  assert.deepEqual(
    allInstances(adopted).map((i) => i.pid),
    pids,
    "the running instances are adopted, not replaced",
  );

  // Reported: an event naming the edited field, and a partial finding in status.
  const edited = (await eventsSince(box, from)).find((e) => e.type === "release.edited");
  assert.ok(edited, "a release.edited event");
  assert.equal(edited.reason, "release-edited");
  assert.match(edited.message, /api v1: .*under the same name \(env\)/);
  const finding = adopted.partial.find((f) => f.kind === "release-edited");
  assert.ok(finding, JSON.stringify(adopted.partial));
  assert.equal(finding.service, "api");
  assert.equal(adopted.services[0]!.state === "healthy" && adopted.partial.length === 0, false);
  const status = await box.cli(["status", "--api-port", String(box.apiPort)]);
  assert.match(status.stdout, /release-edited|edits this release's definition in place/, status.stdout);

  // A replacement instance runs the recorded definition, not the edited file.
  const victim = allInstances(adopted).find((i) => i.name === "api-1")!;
  process.kill(victim.pid!, "SIGKILL");
  const replaced = await waitFor(
    async () => {
      const s = await box.get<Status>("/v1/status");
      const i = allInstances(s).find((x) => x.name === "api-1");
      return i?.state === "ready" && i.pid !== victim.pid ? i : null;
    },
    { timeoutMs: 30_000, what: "api-1 replaced and ready" },
  );
  assert.equal(environOf(replaced.pid!).MODE, "tested", "the replacement keeps the recorded env");
  assert.equal(replaced.release, "v1");

  // `releases --json` says what runs: the recorded v1, unchanged.
  const releases = await box.cli(["releases", "api", "--json", "--api-port", String(box.apiPort)]);
  assert.equal(releases.code, 0, releases.stderr);
  const v1 = (JSON.parse(releases.stdout) as Releases).history.find((r) => r.version === "v1")!;
  assert.equal(v1.contentHash, recorded.contentHash);
  assert.equal(v1.spec.env.MODE, "tested");
});

test("(b) release: v1 → v2 in the file, then up: a progressive deploy with canary analysis; active once finished, proven with evidence", async () => {
  const box = await newSandbox();
  const p = { basePort: await freePortRange(6), port: await freePort() };
  const file = box.file("fleet.yaml", fleet(p, { release: "v1", v1Env: {} }));
  box.up(file);
  await readyStatus(box, 3);
  await waitForServing(p.port, "api serving v1");
  const load = steadyLoad({ port: p.port, rate: 30, connections: 3 });
  try {
    box.file("fleet.yaml", fleet(p, { release: "v2", v1Env: {} }));
    const from = Date.now();
    await restartController(box, file);

    // Watch the rollout from outside: what `releases` and `status` say at each moment.
    interface Sample {
      at: number;
      rolling: boolean;
      active: string;
      v1: string | undefined;
      v2: string | undefined;
      release: string;
      ready: number;
      replicas: number;
      readyOnRelease: number;
    }
    const samples: Sample[] = [];
    await waitFor(
      async () => {
        const [releases, status] = await Promise.all([
          box.get<Releases>("/v1/services/api/releases"),
          box.get<Status>("/v1/status"),
        ]);
        const api = status.services.find((s) => s.name === "api")!;
        samples.push({
          at: Date.now(),
          rolling: releases.rollouts.some((r) => !r.finished),
          active: releases.active,
          v1: releases.history.find((r) => r.version === "v1")?.status,
          v2: releases.history.find((r) => r.version === "v2")?.status,
          release: api.release,
          ready: api.ready,
          replicas: api.replicas,
          readyOnRelease: api.instances.filter((i) => i.state === "ready" && i.release === api.release)
            .length,
        });
        const last = samples.at(-1)!;
        return (
          !last.rolling && last.active === "v2" && last.readyOnRelease === 3 && api.instances.length === 3
        );
      },
      { timeoutMs: 90_000, intervalMs: 100, what: "v2 deployed and every instance on it" },
    );
    const seen = await eventsSince(box, from);
    const line = describeEvents(
      seen.filter((e) => /^(deploy|release|apply)\./.test(e.type) || e.type === "instance.stopped"),
      from,
    );
    const table = samples
      .map(
        (s) =>
          `+${s.at - from}ms rolling=${s.rolling} active=${s.active} v1=${s.v1} v2=${s.v2} ready=${s.ready}`,
      )
      .join("\n");

    // The progressive path: the switch found at up, a deploy with canary analysis on its steps,
    // v2 proven; no instance replaced in place, no silent rolling replace.
    const first = (type: string) => seen.find((e) => e.type === type);
    assert.ok(first("release.switch-pending"), line);
    assert.ok(first("deploy.started"), line);
    assert.ok(
      seen.some(
        (e) => e.type === "deploy.step" && e.reason === "canary-passed" && /v2=|baseline/.test(e.message),
      ),
      `a canary step judged against v1: ${line}`,
    );
    assert.ok(first("deploy.proven"), line);
    assert.equal(first("release.rolling"), undefined, line);
    assert.equal(first("release.changed"), undefined, line);
    assert.ok(!seen.some((e) => e.type === "instance.stopped" && e.reason === "release-changed"), line);

    // v2 active only once its rollout finished; v1 superseded only then.
    const during = samples.filter((s) => s.rolling);
    assert.ok(during.length >= 3, `the rollout was watched: ${table}`);
    for (const s of during) {
      assert.equal(s.active, "v1", `active while rolling:\n${table}`);
      assert.notEqual(s.v2, "active", table);
      assert.notEqual(s.v2, "proven", table);
      assert.notEqual(s.v1, "superseded", table);
    }
    // Status counts ready instances right throughout (it once said "1/4 ready" with 4 ready): the
    // instances of the release it names that are ready — and once the new controller's probes
    // have judged the adopted v1 instances, all of them, every moment of the deploy.
    for (const s of samples) assert.equal(s.ready, s.readyOnRelease, table);
    const judged = samples.findIndex((s) => s.ready === s.replicas);
    assert.ok(judged >= 0, `the adopted instances judged ready:\n${table}`);
    for (const s of samples.slice(judged)) {
      assert.equal(s.ready, s.replicas, `every sample: all ${s.replicas} ready on ${s.release}\n${table}`);
    }

    // Proven only with evidence: the soak's figures.
    const releases = await box.get<Releases>("/v1/services/api/releases");
    const v2 = releases.history.find((r) => r.version === "v2")!;
    assert.equal(v2.status, "proven", line);
    assert.ok(v2.evidence !== null && v2.evidence.requests >= 5, JSON.stringify(v2.evidence));
    assert.equal(releases.history.find((r) => r.version === "v1")?.status, "superseded");
    const status = await box.cli(["status", "--api-port", String(box.apiPort)]);
    assert.match(status.stdout, /api: .*3\/3 ready, release v2/, status.stdout);
  } finally {
    await load.stop();
  }
  assert.deepEqual(failures(load.outcomes), [], "no request failed across the restart and the deploy");
});
