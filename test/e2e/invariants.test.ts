/**
 * Security invariants end to end, with a real controller, data plane and demo-app instances: a
 * release whose guard fails open is an incident of its own; a deploy that fixes it restores the
 * invariant and closes the incident; a rollback to that release breaks it again, during and after
 * the rollback; one instance drifting to another permission policy is named.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { freePort, freePortRange, type Sandbox, sandbox, waitForServing } from "../helpers/e2e.ts";
import { invariantFleetYaml } from "../helpers/invariantFleet.ts";
import { type SteadyLoad, steadyLoad } from "../helpers/steadyLoad.ts";
import { waitFor } from "../helpers/waitFor.ts";

interface Event {
  seq: number;
  at: number;
  type: string;
  service?: string;
  instance?: string;
  reason: string;
  message: string;
  data?: Record<string, unknown>;
}

interface Incident {
  id: number;
  service: string;
  instance: string;
  kind: string;
  status: "open" | "closed";
  reason: string;
  detail: string;
  mitigatedAt: number | null;
  closedAt: number | null;
  verifiedAt?: number | null;
  stabilizedAt?: number | null;
  detectedAt: number;
}

interface Verdict {
  ok: boolean;
  checked: boolean;
  broken: { invariant: string; kind: string; instance?: string; detail: string }[];
  lastCheckedAt: number | null;
}

interface Status {
  invariants?: Record<string, Verdict>;
  services: {
    name: string;
    instances: { name: string; state: string; release: string | null; port: number }[];
  }[];
}

interface Releases {
  active: string;
  history: { version: string; status: string }[];
  rollouts: { kind: string; finished: boolean }[];
}

/** No deploy or rollback under way. */
function settled(releases: Releases): boolean {
  return releases.rollouts.every((r) => r.finished);
}

describe("security invariants", () => {
  let box: Sandbox;
  let port: number;
  let load: SteadyLoad;
  const events = async (type?: string) =>
    (await box.get<{ events: Event[] }>("/v1/events?limit=1000")).events.filter(
      (e) => type === undefined || e.type === type,
    );
  const incidents = async () =>
    (await box.get<{ incidents: Incident[] }>("/v1/incidents?limit=100")).incidents.filter(
      (i) => i.kind === "invariant-broken",
    );
  const verdict = async () => (await box.get<Status>("/v1/status")).invariants?.api;
  const releases = async () => await box.get<Releases>("/v1/services/api/releases");
  const cli = (...args: string[]) => box.cli([...args, "--api-port", String(box.apiPort)]);

  before(async () => {
    box = await sandbox();
    port = await freePort();
    const basePort = await freePortRange(4);
    // The policy endpoint's live switch (POST /policy) needs the fault API.
    const yaml = invariantFleetYaml({
      name: "invariants-e2e",
      basePort,
      port,
      // A window reads whole seconds, the current one included: a 1 s soak judges a second that
      // has barely begun. 3 s gives 40 requests/s room to prove a release on a busy machine.
      stepDuration: "2s",
      soak: "3s",
      faultApi: true,
    });
    box.up(box.file("fleet.yaml", yaml));
    await waitForServing(port, "the proxy serving v1-open");
    // Deploy analysis and proof need traffic on both sides.
    load = steadyLoad({ port, rate: 40, connections: 4 });
  });
  after(async () => {
    await load?.stop();
    await box.cleanup();
  });

  test("a release whose /admin fails open: invariant.broken naming each instance, an incident, a broken verdict", async () => {
    // The first instance ready may be seen alone; then the event names both.
    const broken = await waitFor(
      async () =>
        (await events("invariant.broken")).find(
          (e) =>
            e.reason === "auth-not-enforced" && (e.data?.instances as string[] | undefined)?.length === 2,
        ),
      { timeoutMs: 30_000, what: "invariant.broken (auth-not-enforced) on both instances" },
    );
    assert.equal(broken.service, "api");
    assert.equal(broken.data?.invariant, "protected-path:GET /admin");
    assert.deepEqual(broken.data?.instances, ["api-0", "api-1"]);
    assert.match(broken.message, /GET \/admin answered 200 without credentials on api-0/);
    const [incident] = await incidents();
    assert.equal(incident?.status, "open");
    assert.equal(incident?.reason, "auth-not-enforced");
    assert.equal(incident?.instance, "api/protected-path:GET /admin");
    assert.equal(broken.data?.incident, incident?.id);
    const now = await verdict();
    assert.equal(now?.ok, false);
    assert.deepEqual(
      now?.broken.map((b) => [b.kind, b.instance]),
      [
        ["protected-path", "api-0"],
        ["protected-path", "api-1"],
      ],
    );
  });

  test("a deploy of the fixed release restores it: invariant.restored, the incident closed, the verdict ok", async () => {
    await waitFor(
      async () => (await releases()).history.some((h) => h.version === "v1-open" && h.status === "proven"),
      {
        timeoutMs: 30_000,
        what: "v1-open proven (a release to roll back to later)",
      },
    );
    const deploy = await cli("deploy", "api", "v2");
    assert.equal(deploy.code, 0, deploy.stderr);
    const done = await waitFor(
      async () => {
        const now = await releases();
        return now.rollouts.length > 0 && settled(now) ? now : null;
      },
      { timeoutMs: 90_000, what: "the v2 deploy to finish" },
    );
    const story = (await events())
      .filter((e) => e.type.startsWith("deploy.") || e.type.startsWith("rollback."))
      .map((e) => `${e.type}: ${e.message}`);
    assert.equal(done.active, "v2", `the deploy did not promote v2:\n${story.join("\n")}`);
    const restored = await waitFor(async () => (await events("invariant.restored"))[0], {
      timeoutMs: 15_000,
      what: "invariant.restored",
    });
    assert.equal(restored.reason, "invariant-restored");
    const closed = await waitFor(
      async () => (await incidents()).find((i) => i.status === "closed" && i.reason === "auth-not-enforced"),
      { timeoutMs: 15_000, what: "the auth incident closed after the stabilization window" },
    );
    assert.ok(closed.mitigatedAt !== null && closed.closedAt !== null);
    assert.ok(closed.closedAt - closed.mitigatedAt >= 2_000, "held restored for resetAfter before closing");
    assert.equal(closed.verifiedAt, closed.closedAt, "closed as verified");
    const ok = await waitFor(async () => ((await verdict())?.ok ? await verdict() : null), {
      what: "an ok verdict on v2",
    });
    assert.deepEqual(ok?.broken, []);
    assert.equal(ok?.checked, true);
  });

  test("a rollback to the release that fails open breaks the invariant during and after the rollback", async () => {
    const before = (await events()).at(-1)?.seq ?? 0;
    const askedAt = Date.now();
    const rollback = await cli(
      "rollback",
      "api",
      "--to",
      "v1-open",
      "--reason",
      "e2e: back to the open guard",
    );
    assert.equal(rollback.code, 0, rollback.stderr + rollback.stdout);
    const started = await waitFor(
      async () => (await events("rollback.started")).find((e) => e.seq > before),
      { what: "rollback.started" },
    );
    const broken = await waitFor(
      async () => (await events("invariant.broken")).find((e) => e.seq > started.seq),
      { timeoutMs: 30_000, what: "invariant.broken after the rollback started" },
    );
    assert.equal(broken.reason, "auth-not-enforced");
    // A new incident: the first one was closed.
    const open = (await incidents()).filter((i) => i.status === "open" && i.reason === "auth-not-enforced");
    assert.equal(open.length, 1);
    assert.equal(broken.data?.incident, open[0]?.id);
    // Seen while the rollback was still under way, or as it finished: either way never ok after it.
    await waitFor(async () => (await releases()).active === "v1-open" && settled(await releases()), {
      timeoutMs: 60_000,
      what: "the rollback to finish",
    });
    const after = await waitFor(
      async () => {
        const v = await verdict();
        return v?.checked && v.broken.length === 2 ? v : null;
      },
      { timeoutMs: 15_000, what: "a complete round on the rolled-back instances" },
    );
    assert.equal(after.ok, false);
    const status = await box.get<Status>("/v1/status");
    const running = status.services
      .find((s) => s.name === "api")
      ?.instances.filter((i) => i.state === "ready" && i.release === "v1-open")
      .map((i) => i.name)
      .sort();
    assert.deepEqual(after.broken.map((b) => b.instance).sort(), running);
    assert.ok(!(await events("invariant.restored")).some((e) => e.seq > started.seq));
    // The rollback's own incident served its stabilization window, but is not verified: the
    // broken invariant blocks the gate.
    const rollbackIncident = await waitFor(
      async () => {
        const all = (await box.get<{ incidents: Incident[] }>("/v1/incidents?limit=100")).incidents;
        const found = all.find((i) => i.kind === "rollback" && i.detectedAt >= askedAt);
        return found?.stabilizedAt ? found : null;
      },
      { timeoutMs: 20_000, what: "the rollback incident stabilized (waiting for the gate)" },
    );
    assert.equal(rollbackIncident.status, "open");
    assert.equal(rollbackIncident.verifiedAt, null);
    const { incident: withTimeline } = await box.get<{
      incident: Incident & { timeline: { phase: string; detail: string }[] };
    }>(`/v1/incidents/${rollbackIncident.id}`);
    const stabilized = withTimeline.timeline.find((e) => e.phase === "stabilized");
    assert.match(
      stabilized?.detail ?? "",
      /not verified: .*invariant broken: GET \/admin answered 200 without credentials/,
    );
    assert.ok(!withTimeline.timeline.some((e) => e.phase === "verified"));
  });

  test("one instance reporting another policy hash: policy-diverged naming it; restored when it agrees again", async () => {
    const status = await box.get<Status>("/v1/status");
    const instance = status.services
      .find((s) => s.name === "api")
      ?.instances.find((i) => i.state === "ready" && i.release === "v1-open");
    assert.ok(instance);
    const before = (await events()).at(-1)?.seq ?? 0;
    const set = (body: unknown) =>
      fetch(`http://127.0.0.1:${instance.port}/policy`, { method: "POST", body: JSON.stringify(body) });
    assert.equal((await set({ hash: "drifted-policy" })).status, 200);
    const diverged = await waitFor(
      async () =>
        (await events("invariant.broken")).find((e) => e.seq > before && e.reason === "policy-diverged"),
      { timeoutMs: 15_000, what: "invariant.broken (policy-diverged)" },
    );
    assert.deepEqual(diverged.data?.instances, [instance.name]);
    assert.match(diverged.message, new RegExp(`${instance.name} reports policy hash drifted-policy`));
    const incident = (await incidents()).find((i) => i.status === "open" && i.reason === "policy-diverged");
    assert.equal(incident?.instance, "api/policy-hash:/policy");
    assert.match(incident?.detail ?? "", new RegExp(instance.name));

    assert.equal((await set({ hash: null })).status, 200);
    const restored = await waitFor(
      async () =>
        (await events("invariant.restored")).find(
          (e) => e.seq > diverged.seq && e.data?.invariant === "policy-hash:/policy",
        ),
      { timeoutMs: 15_000, what: "the policy invariant restored" },
    );
    assert.equal(restored.data?.incident, incident?.id);
    // The open guard is still open: the service's verdict stays broken.
    assert.equal((await verdict())?.ok, false);
  });
});
