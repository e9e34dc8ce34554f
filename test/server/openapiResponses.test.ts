/**
 * Every route's live answers match the OpenAPI document the controller serves: a real controller
 * (`homeostat up`, a three-instance service behind the data plane, a second release to deploy),
 * driven through each route — reads, faults, weights, a data-plane restart, an incident, a deploy
 * and a rollback, a failover and failback, tokens, shutdown — and each answer, errors included,
 * checked with ajv against the schema the document gives for its route and status.
 */

import assert from "node:assert/strict";
import { appendFileSync } from "node:fs";
import { test } from "node:test";
import type { OpenApiDocument } from "../../src/server/openapi.ts";
import { freePort, freePortRange, readyStatus, sandboxesCleanedAfter } from "../helpers/e2e.ts";
import { waitFor } from "../helpers/waitFor.ts";
import { fleetWithTwoReleases, type RawAnswer, ResponseChecker, rawRequest } from "./openapiHelpers.ts";

const newSandbox = sandboxesCleanedAfter();

/**
 * Routes not driven here, and why. Anything else the document lists must get a 2xx here.
 * - the event stream never ends (test/server/streamRoutes.test.ts reads it);
 * - a dashboard asset's name is content-hashed by the build (test/browser loads them).
 */
const NOT_DRIVEN: Record<string, string> = {
  "GET /v1/stream": "an endless text/event-stream",
  "GET /assets/{file}": "content-hashed file names",
};

test("each route's live answers match the document's schemas", async () => {
  const box = await newSandbox();
  const { file, port } = await fleetWithTwoReleases(box);
  // A replicated Redis store beside the service, for the store routes (docs/redis.md).
  const storeBase = await freePortRange(3);
  const storePort = await freePort();
  appendFileSync(
    file,
    `stores:\n  cache:\n    kind: redis\n    replicas: 2\n    basePort: ${storeBase}\n    port: ${storePort}\n`,
  );
  box.up(file);
  await readyStatus(box, 3, () => true, 60_000);
  const token = box.token();

  const send = (method: string, path: string, body?: unknown): Promise<RawAnswer> =>
    rawRequest(box.apiPort, {
      method,
      path,
      headers: {
        host: `127.0.0.1:${box.apiPort}`,
        authorization: `Bearer ${token}`,
        ...(method === "GET" ? {} : { "content-type": "application/json" }),
      },
      ...(method === "GET" ? {} : { body: JSON.stringify(body ?? {}) }),
    });

  const documentAnswer = await send("GET", "/openapi.json");
  assert.equal(documentAnswer.status, 200);
  const document = documentAnswer.json as OpenApiDocument;
  const checker = new ResponseChecker(document);
  const problems: string[] = [];
  /** `METHOD /documented/path` → statuses seen. */
  const seen = new Map<string, Set<number>>();

  /** Sends, checks the answer against the document, and returns it. */
  const call = async (method: string, path: string, body?: unknown): Promise<RawAnswer> => {
    const answer = await send(method, path, body);
    problems.push(...checker.check(method, path, answer));
    const documented = checker.pathOf(method, path) ?? path;
    const key = `${method} ${documented}`;
    seen.set(key, (seen.get(key) ?? new Set()).add(answer.status));
    return answer;
  };
  /** A call that must succeed with `status`: its body, parsed. */
  const ok = async <T>(status: number, method: string, path: string, body?: unknown): Promise<T> => {
    const answer = await call(method, path, body);
    assert.equal(answer.status, status, `${method} ${path}: ${answer.text.slice(0, 500)}`);
    return answer.json as T;
  };

  // Reads.
  await ok(200, "GET", "/healthz");
  await ok(200, "GET", "/openapi.json");
  await ok(200, "GET", "/v1/status");
  await ok(200, "GET", "/v1/events?after=0&limit=5&service=api");
  await ok(200, "GET", "/v1/incidents?status=open");
  await ok(200, "GET", "/v1/journal?pending=false");
  await ok(200, "GET", "/metrics");
  await ok(200, "GET", "/v1/traffic");
  await ok(200, "GET", "/v1/dataplane");
  await ok(200, "GET", "/v1/check");
  await ok(200, "GET", "/v1/failover");
  await ok(200, "GET", "/v1/failover-plan?domain=zone-a");
  await ok(200, "GET", "/v1/services/api/releases");
  await ok(200, "GET", "/v1/services/api/rollback-plan");
  await ok(200, "GET", "/v1/spec");
  await ok(200, "GET", "/v1/revisions?limit=10");
  await ok(200, "GET", "/v1/revisions/1");
  assert.equal((await call("GET", "/v1/revisions/999")).status, 404);
  // Apply: the plan of a change (dry run), then the change itself (a live restart setting), and its progress.
  const { readFileSync } = await import("node:fs");
  const fleetText = readFileSync(file, "utf8");
  await ok(200, "POST", "/v1/apply", { text: fleetText, file, dryRun: true });
  const changed = `${fleetText.trimEnd()}\n`.replace("resetAfter: 3s", "resetAfter: 2s");
  assert.notEqual(changed, fleetText, "the fleet file has the restart setting this changes");
  assert.equal((await call("POST", "/v1/apply", { text: "services: [", file })).status, 400);
  // A real apply of that live setting (recorded, converged), before the deploy below: a live
  // change must leave later deploys undisturbed.
  const applied = await ok<{ revision: number }>(202, "POST", "/v1/apply", {
    text: changed,
    file,
    reason: "openapi test",
  });
  await waitFor(
    async () => {
      const progress = await ok<{ revision: number; state: string }>(200, "GET", "/v1/apply");
      return progress.revision === applied.revision && progress.state === "applied";
    },
    { timeoutMs: 30_000, what: `revision ${applied.revision} applied` },
  );

  if (document.paths["/v1/whoami"] !== undefined) await ok(200, "GET", "/v1/whoami");
  // The dashboard's files, when ui/dist is built (npm install builds it); public.
  const page = await call("GET", "/");
  if (page.status === 200) {
    if (document.paths["/favicon.svg"] !== undefined) await ok(200, "GET", "/favicon.svg");
  } else {
    NOT_DRIVEN["GET /"] = NOT_DRIVEN["GET /favicon.svg"] =
      `ui/dist not built (GET / answered ${page.status})`;
  }

  // Faults and weights.
  const { fault } = await ok<{ fault: { id: string } }>(201, "POST", "/v1/faults", {
    service: "api",
    fault: { kind: "latency", ms: 1 },
  });
  await ok(200, "GET", "/v1/faults");
  await ok(200, "DELETE", `/v1/faults/${fault.id}`);
  await ok(201, "POST", "/v1/faults", { zone: "zone-b", fault: { kind: "error", status: 503, rate: 0.01 } });
  await ok(200, "DELETE", "/v1/faults");
  await ok(200, "PUT", "/v1/services/api/weights", { weights: { v1: 1 } });
  await ok(200, "PUT", "/v1/services/api/weights", { weights: null });

  // The data-plane process, restarted by plan.
  await ok(200, "POST", "/v1/dataplane/restart", { reason: "openapi test" });

  // An incident: one instance killed.
  const status = await ok<{ services: { instances: { name: string; pid: number | null }[] }[] }>(
    200,
    "GET",
    "/v1/status",
  );
  const victim = status.services[0]!.instances[0]!;
  process.kill(victim.pid!, "SIGKILL");
  const incident = await waitFor(
    async () => {
      const { incidents } = await ok<{ incidents: { id: number; instance: string }[] }>(
        200,
        "GET",
        "/v1/incidents",
      );
      return incidents.find((i) => i.instance === victim.name);
    },
    { timeoutMs: 20_000, what: `an incident for ${victim.name}` },
  );
  await ok(200, "GET", `/v1/incidents/${incident.id}`);
  await readyStatus(box, 3, () => true, 60_000);

  // The store: its state, then a planned switchover once it is healthy.
  await ok(200, "GET", "/v1/stores");
  await waitFor(
    async () => {
      const answer = await call("GET", "/v1/stores/cache");
      return answer.status === 200 && (answer.json as { phase: string }).phase === "healthy";
    },
    { timeoutMs: 30_000, what: "the store healthy" },
  );
  await ok(200, "POST", "/v1/stores/cache/switchover", { to: "cache-1", reason: "openapi test" });

  // Automation brakes: their state, a pause (a person's restart over it), a resume.
  await ok(200, "GET", "/v1/brakes");
  await ok(200, "POST", "/v1/pause", { reason: "openapi test" });
  await ok(202, "POST", `/v1/instances/${victim.name}/restart`, { override: true, reason: "openapi test" });
  await ok(200, "POST", "/v1/resume", { reason: "openapi test" });
  await readyStatus(box, 3, () => true, 60_000);

  // A deploy of v2, promoted on live traffic, then a rollback to v1 (a release this service ran).
  await ok(202, "POST", "/v1/services/api/deploy", { version: "v2" });
  await waitFor(
    async () => {
      await Promise.all(
        Array.from({ length: 10 }, () =>
          fetch(`http://127.0.0.1:${port}/`)
            .then((r) => r.arrayBuffer())
            .catch(() => undefined),
        ),
      );
      const releases = await ok<{ rollouts: { finished: boolean }[] }>(
        200,
        "GET",
        "/v1/services/api/releases",
      );
      return releases.rollouts.length > 0 && releases.rollouts.every((r) => r.finished);
    },
    { timeoutMs: 60_000, what: "the deploy of v2 to finish" },
  );
  // Promoted, not rolled back (the live apply above must not disturb it): the deploy's events say why otherwise.
  const afterDeploy = await ok<{ active: string }>(200, "GET", "/v1/services/api/releases");
  if (afterDeploy.active !== "v2") {
    const { events } = await ok<{ events: { type: string; reason: string; message: string }[] }>(
      200,
      "GET",
      "/v1/events?limit=500&service=api",
    );
    const deployEvents = events.filter((e) => /^(deploy|rollout|traffic)\./.test(e.type));
    assert.fail(
      `v2 was not promoted (${afterDeploy.active} active):\n${deployEvents.map((e) => `${e.type} ${e.reason}: ${e.message}`).join("\n")}`,
    );
  }
  await ok(200, "GET", "/v1/services/api/rollback-plan?to=v1");
  await ok(202, "POST", "/v1/services/api/rollback", { to: "v1", reason: "openapi test" });
  // A second one while the first runs: a 409 in the envelope, also as documented.
  const conflict = await call("POST", "/v1/services/api/rollback", { to: "v1", reason: "again" });
  assert.equal(conflict.status, 409, conflict.text);

  // A zone failed over by hand, then brought back.
  await ok(202, "POST", "/v1/failover", { domain: "zone-a", reason: "openapi test" });
  await waitFor(
    async () => (await call("POST", "/v1/failback", { domain: "zone-a", reason: "back" })).status === 202,
    {
      timeoutMs: 30_000,
      what: "failback of zone-a accepted",
    },
  );

  // Tokens and the audit trail (admin).
  if (document.paths["/v1/tokens"] !== undefined) {
    const created = await call("POST", "/v1/tokens", { name: "openapi-viewer", role: "viewer" });
    assert.ok(created.status === 200 || created.status === 201, created.text);
    const id = (created.json as { token: { id: number } }).token.id;
    await ok(200, "GET", "/v1/tokens");
    await ok(200, "DELETE", `/v1/tokens/${id}`);
  }
  if (document.paths["/v1/audit"] !== undefined) await ok(200, "GET", "/v1/audit");

  // Errors are documented answers too.
  assert.equal((await call("GET", "/v1/incidents/999999")).status, 404);
  assert.equal((await call("GET", "/v1/events?limit=0")).status, 400);
  assert.equal((await call("POST", "/v1/faults", { fault: { kind: "nope" } })).status, 400);
  assert.equal((await call("POST", "/v1/services/nope/deploy", { version: "v2" })).status, 404);

  // Apply during a failover (zone-a is still shifted): refused, in the documented envelope.
  const changedAgain = changed.replace("resetAfter: 2s", "resetAfter: 1s");
  assert.equal((await call("POST", "/v1/apply", { text: changedAgain, file })).status, 409);
  await ok(200, "GET", "/v1/apply");

  // Last: shutdown answers before it stops everything.
  await ok(202, "POST", "/v1/shutdown");

  assert.deepEqual(problems, [], problems.join("\n"));
  const notCovered = Object.entries(document.paths).flatMap(([path, item]) =>
    Object.keys(item)
      .map((method) => `${method.toUpperCase()} ${path}`)
      .filter((key) => NOT_DRIVEN[key] === undefined)
      .filter((key) => ![...(seen.get(key) ?? [])].some((s) => s >= 200 && s < 300)),
  );
  assert.deepEqual(notCovered, [], "every documented route answered 2xx at least once");
});
