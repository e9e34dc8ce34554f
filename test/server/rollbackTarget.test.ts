/**
 * A rollback goes back only to a release this service has run, even when forced: a release it
 * never ran (declared in the fleet file or not) is a deploy. Through the real API, release manager
 * and state store; the data plane is a recorder, so "traffic unchanged" means "not one call".
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { apiClient } from "../../src/cli/apiClient.ts";
import { ReleaseManager } from "../../src/controller/releaseManager.ts";
import { HomeostatError } from "../../src/errors.ts";
import { buildApi } from "../../src/server/api.ts";
import { issueToken } from "../../src/server/auth/tokens.ts";
import type { StatusDocument } from "../../src/server/statusView.ts";
import { StateStore } from "../../src/store/index.ts";
import type { DataPlaneControl } from "../../src/traffic/dataPlaneControl.ts";
import { makeFleet } from "../helpers/fleetFixture.ts";

const T0 = 1_700_000_000_000;

/**
 * api runs v2; it ran v1 before (in its ledger), and v3 is declared in the fleet file but was
 * never deployed. The API listens on loopback; every data-plane call and note is recorded.
 */
async function setUp(t: import("node:test").TestContext) {
  const dir = mkdtempSync(join(tmpdir(), "homeostat-rollback-"));
  const store = StateStore.open(dir);
  const fleet = makeFleet({ services: [{ name: "api", release: "v2", versions: ["v1", "v2", "v3"] }] });
  const api = fleet.services[0]!;
  store.ledger.recordRelease({
    service: "api",
    spec: api.releases.v1!,
    contentHash: "h1",
    status: "superseded",
    at: T0 - 60_000,
  });
  const dataPlaneCalls: string[] = [];
  const dataPlane = new Proxy({} as DataPlaneControl, {
    get: (_target, name) =>
      name === "hasProxy"
        ? () => true
        : (...args: unknown[]) => {
            dataPlaneCalls.push(`${String(name)}(${JSON.stringify(args)})`);
          },
  });
  const notes: string[] = [];
  let now = T0;
  const releases = new ReleaseManager({
    fleet,
    store,
    dataPlane,
    note: (type) => notes.push(type),
    now: () => now++,
  });
  releases.init();
  dataPlaneCalls.length = 0;
  // Forced rollbacks need the admin role: an admin token, made in the store.
  const token = issueToken(store.tokens, {
    name: "test-admin",
    role: "admin",
    createdBy: "test",
    at: T0,
  }).secret;
  const app = buildApi({
    store,
    auth: { store },
    status: () => ({}) as StatusDocument,
    shutdown: async () => {},
    releases: {
      deploy: (service, version) => releases.deploy(service, version),
      planRollback: (service, to) => releases.planRollback(service, to),
      rollback: (service, o) => releases.rollback(service, o),
      releases: (service) => releases.releases(service),
    },
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  t.after(async () => {
    await app.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const client = apiClient((app.server.address() as AddressInfo).port, { token });
  /** What must not move: the active release, history, rollouts, data plane, events. */
  const world = () => ({
    active: releases.activeRelease("api"),
    state: store.ledger.serviceState("api"),
    history: store.ledger.history("api"),
    rollouts: store.ledger.rollouts("api", 10),
    targets: [...releases.targets()],
    dataPlaneCalls: [...dataPlaneCalls],
    notes: [...notes],
  });
  return { client, world, releases, notes, token };
}

const refusedNotRun = (version: string) => (error: unknown) => {
  assert.ok(error instanceof HomeostatError, String(error));
  assert.equal(error.code, "HS_ROLLBACK_NOT_RUN", error.message);
  assert.match(
    error.message,
    new RegExp(`never run ${version}.*even when forced.*homeostat deploy api ${version}`),
  );
  return true;
};

test("a forced rollback to a release declared but never deployed is refused, and nothing moves", async (t) => {
  const { client, world } = await setUp(t);
  const before = world();
  assert.equal(before.active, "v2");
  await assert.rejects(
    client.post("/v1/services/api/rollback", { to: "v3", force: true, reason: "the issue's drill" }),
    refusedNotRun("v3"),
  );
  // The same without --force, and to a version the fleet file does not know at all.
  await assert.rejects(client.post("/v1/services/api/rollback", { to: "v3" }), refusedNotRun("v3"));
  await assert.rejects(
    client.post("/v1/services/api/rollback", { to: "v9", force: true, reason: "drill" }),
    refusedNotRun("v9"),
  );
  assert.deepEqual(world(), before, "no rollout, no weights, no event, the release as it was");
});

test("the answer is a 409 with the catalogued code, and a forced rollback to what runs now is refused too", async (t) => {
  const { client, world, token } = await setUp(t);
  const before = world();
  const response = await fetch(`${client.base}/v1/services/api/rollback`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ to: "v3", force: true, reason: "drill" }),
  });
  assert.equal(response.status, 409);
  const { error } = (await response.json()) as { error: { code: string; message: string } };
  assert.equal(error.code, "HS_ROLLBACK_NOT_RUN");
  assert.match(error.message, /releases it has run: v1/);
  await assert.rejects(
    client.post("/v1/services/api/rollback", { to: "v2", force: true, reason: "drill" }),
    (e: unknown) =>
      e instanceof HomeostatError && e.code === "HS_ROLLBACK_NOT_RUN" && /what runs now/.test(e.message),
  );
  assert.deepEqual(world(), before);
});

test("a forced rollback to a release the service has run still overrides the safety checks", async (t) => {
  const { client, releases, notes } = await setUp(t);
  // v1 was never proven here: the evidence check warns; forced, it goes ahead and is audited.
  const result = await client.post<{ rollout: { from: string; to: string; forced: boolean } }>(
    "/v1/services/api/rollback",
    { to: "v1", force: true, reason: "drill" },
  );
  assert.deepEqual(
    { from: result.rollout.from, to: result.rollout.to, forced: result.rollout.forced },
    { from: "v2", to: "v1", forced: true },
  );
  assert.deepEqual(notes, ["rollback.started"]);
  assert.equal(
    (releases.releases("api").rollouts as { kind: string }[]).filter((r) => r.kind === "rollback").length,
    1,
  );
});
