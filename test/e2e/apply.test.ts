/**
 * `homeostat apply` end to end, under steady load through the service's front port: scaling up
 * and down without a failed request, a new release through the progressive deploy, a broken file
 * changing nothing, a service added after its dependency and removed by draining, apply refused
 * during a deploy, and a controller killed mid-apply resuming the recorded revision.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  allInstances,
  DEMO_PROBES,
  demoRelease,
  eventsSince,
  freePort,
  freePortRange,
  killController,
  type Sandbox,
  type StatusDoc,
  sandbox,
  waitForServing,
} from "../helpers/e2e.ts";
import { failures, type SteadyLoad, steadyLoad } from "../helpers/steadyLoad.ts";
import { waitFor } from "../helpers/waitFor.ts";

interface Ports {
  apiBase: number;
  apiPort: number;
  webBase: number;
  webPort: number;
}

/** The fleet: `api` (replicas, release) and, when `web` is set, `web` depending on it. */
function fleetYaml(
  p: Ports,
  o: { replicas: number; release?: string; web?: boolean; v1Env?: string },
): string {
  const web = o.web
    ? `
  web:
    replicas: 1
    basePort: ${p.webBase}
    port: ${p.webPort}
    placement: { zones: [zone-a] }
    dependsOn: [api]
    release: v1
    releases:
${demoRelease("v1")}`
    : "";
  return `version: 1
name: apply-e2e
defaults:
${DEMO_PROBES}
  restart: { stopGracePeriod: 2s, resetAfter: 1s }
  deploy:
    steps: [50, 100]
    stepDuration: 1s
    stepDeadline: 20s
    soak: 1s
    analysis: { minRequests: 5, maxErrorRateIncrease: 5%, maxP99Ratio: 5, minP99Increase: 500ms }
  slo: { errorRate: 5%, p99: 2s }
services:
  api:
    replicas: ${o.replicas}
    basePort: ${p.apiBase}
    port: ${p.apiPort}
    placement: { zones: [zone-a, zone-b] }
    release: ${o.release ?? "v1"}
    releases:
${demoRelease("v1", o.v1Env === undefined ? {} : { EXTRA: o.v1Env })}
${demoRelease("v2")}${web}
`;
}

interface Progress {
  revision: number | null;
  state: string;
  waiting: string[];
}

describe("homeostat apply", () => {
  let box: Sandbox;
  let ports: Ports;
  let load: SteadyLoad;
  const cli = (...args: string[]) => box.cli([...args, "--api-port", String(box.apiPort)]);
  const readyApi = async (release = "v1") =>
    allInstances(await box.get<StatusDoc>("/v1/status")).filter(
      (i) => i.service === "api" && i.state === "ready" && i.release === release,
    ).length;
  const events = () => eventsSince(box, 0);

  before(async () => {
    box = await sandbox("homeostat-apply-");
    ports = {
      apiBase: await freePortRange(10),
      apiPort: await freePort(),
      webBase: await freePortRange(2),
      webPort: await freePort(),
    };
    box.up(box.file("fleet.yaml", fleetYaml(ports, { replicas: 3 })), ["--state-dir", box.stateDir]);
    await waitForServing(ports.apiPort, "api serving v1");
    await waitFor(async () => (await readyApi()) === 3, { timeoutMs: 30_000, what: "3 api instances ready" });
    load = steadyLoad({ port: ports.apiPort, rate: 40, connections: 4 });
  });
  after(async () => {
    await load?.stop();
    await box?.cleanup();
  });

  test("scale 3 → 5 → 2 under load: no failed request, scale-down drains first", async () => {
    const from = Date.now();
    const up = await cli(
      "apply",
      box.file("fleet.yaml", fleetYaml(ports, { replicas: 5 })),
      "--reason",
      "more",
    );
    assert.equal(up.code, 0, up.stderr + up.stdout);
    assert.match(up.stdout, /scale:\n {2}api: .*3.*5/);
    assert.match(up.stdout, /revision \d+ applied/);
    assert.equal(await readyApi(), 5);
    const down = await cli("apply", box.file("fleet.yaml", fleetYaml(ports, { replicas: 2 })));
    assert.equal(down.code, 0, down.stderr + down.stdout);
    await waitFor(async () => (await readyApi()) === 2, { what: "2 api instances" });
    // Settle: the last requests sent before the stops have ended.
    await new Promise((r) => setTimeout(r, 500));
    const seen = load.between(from, Date.now() - 500);
    assert.ok(seen.length > 40, `only ${seen.length} requests sent`);
    assert.deepEqual(failures(seen), []);
    const stopped = (await events()).filter((e) => e.type === "instance.stopped" && e.at >= from);
    assert.deepEqual(stopped.map((e) => e.instance).sort(), ["api-2", "api-3", "api-4"]);
    assert.ok(stopped.every((e) => e.reason === "scaled-down"));
  });

  test("a broken file changes nothing: exit 1 with file:line:col", async () => {
    const before = await box.get<Progress>("/v1/apply");
    const broken = box.file(
      "broken.yaml",
      fleetYaml(ports, { replicas: 2 }).replace("replicas: 2", "replicas: two"),
    );
    const result = await cli("apply", broken);
    assert.equal(result.code, 1);
    assert.match(result.stdout, /broken\.yaml:\d+:\d+: services\.api\.replicas/);
    assert.deepEqual((await box.get<Progress>("/v1/apply")).revision, before.revision);
    // The server validates too: the same text posted directly is a 400 with positions.
    const { readFileSync } = await import("node:fs");
    const response = await box.api("POST", "/v1/apply", { text: readFileSync(broken, "utf8"), file: broken });
    assert.equal(response.status, 400);
    const body = (await response.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, "HS_SPEC_INVALID");
    assert.match(body.error.message, /broken\.yaml:\d+:\d+/);
    assert.equal(await readyApi(), 2);
  });

  test("a new release goes through the progressive deploy; apply meanwhile is refused", async () => {
    const from = Date.now();
    const result = await cli(
      "apply",
      box.file("fleet.yaml", fleetYaml(ports, { replicas: 2, release: "v2" })),
      "--no-wait",
    );
    assert.equal(result.code, 0, result.stderr + result.stdout);
    assert.match(result.stdout, /release-switch:\n {2}api: release v1 → v2/);
    // While the deploy holds api, another change to api is refused, naming it.
    await waitFor(async () => (await events()).some((e) => e.type === "deploy.started" && e.at >= from), {
      what: "the deploy started",
    });
    const refused = await box.api("POST", "/v1/apply", {
      text: fleetYaml(ports, { replicas: 3, release: "v2" }),
      file: `${box.dir}/fleet.yaml`,
    });
    assert.equal(refused.status, 409);
    const body = (await refused.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, "HS_CONFLICT");
    assert.match(body.error.message, /deploy of api/);
    await waitFor(async () => (await box.get<Progress>("/v1/apply")).state === "applied", {
      timeoutMs: 60_000,
      what: "the release switch converged",
    });
    const seen = await events();
    const weights = seen.filter((e) => e.type === "traffic.weights" && e.at >= from).map((e) => e.message);
    assert.ok(
      weights.some((m) => /v2=50%/.test(m)),
      `canary step 50 % seen: ${weights.join(" | ")}`,
    );
    assert.equal(await readyApi("v2"), 2);
    const releases = await box.get<{ active: string }>("/v1/services/api/releases");
    assert.equal(releases.active, "v2");
    assert.deepEqual(failures(load.between(from, Date.now() - 500)), []);
  });

  test("a service added with dependsOn starts after its dependency; removing it drains it first", async () => {
    const added = await cli(
      "apply",
      box.file("fleet.yaml", fleetYaml(ports, { replicas: 2, release: "v2", web: true })),
    );
    assert.equal(added.code, 0, added.stderr + added.stdout);
    assert.match(added.stdout, /add-service:\n {2}web/);
    await waitForServing(ports.webPort, "web serving");
    const from = Date.now();
    const webLoad = steadyLoad({ port: ports.webPort, rate: 20, connections: 2, path: "/work?ms=300" });
    await waitFor(() => webLoad.outcomes.filter((o) => o.status === 200).length >= 3, {
      what: "web answering",
    });
    const removed = await cli(
      "apply",
      box.file("fleet.yaml", fleetYaml(ports, { replicas: 2, release: "v2" })),
    );
    assert.equal(removed.code, 0, removed.stderr + removed.stdout);
    assert.match(removed.stdout, /remove-service:\n {2}web/);
    await webLoad.stop();
    const seen = await events();
    const stop = seen.find((e) => e.type === "instance.stopped" && e.instance === "web-0" && e.at >= from);
    assert.ok(stop, "web-0 stopped");
    assert.equal(stop.reason, "service-removed");
    // Drained: every request web had accepted before it was taken out finished with a 200.
    const accepted = webLoad.outcomes.filter((o) => o.status !== 0 && o.status !== 503);
    assert.ok(
      accepted.every((o) => o.status === 200),
      JSON.stringify(failures(accepted)),
    );
    // Its listener is closed once its instance is gone.
    await waitFor(
      async () => (await fetch(`http://127.0.0.1:${ports.webPort}/`).catch(() => null)) === null,
      { what: "web's port closed" },
    );
    assert.equal((await box.get<Progress>("/v1/apply")).state, "applied");
  });

  test("a controller killed mid-apply resumes converging to the recorded revision", async () => {
    const file = box.file("fleet.yaml", fleetYaml(ports, { replicas: 4, release: "v2" }));
    const result = await cli("apply", file, "--no-wait");
    assert.equal(result.code, 0, result.stderr + result.stdout);
    const revision = Number(/revision (\d+) recorded/.exec(result.stdout)?.[1]);
    assert.ok(revision > 0);
    await killController(box, "the controller gone");
    box.up(file, ["--state-dir", box.stateDir]);
    const progress = await waitFor(
      async () => {
        const p = await box.get<Progress>("/v1/apply").catch(() => null);
        return p?.state === "applied" ? p : null;
      },
      { timeoutMs: 60_000, what: "the resumed apply converged" },
    );
    assert.equal(progress.revision, revision);
    assert.equal(await readyApi("v2"), 4);
    assert.ok((await events()).some((e) => e.type === "apply.resumed"));
  });
});
