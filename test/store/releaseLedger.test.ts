import assert from "node:assert/strict";
import { test } from "node:test";
import { HomeostatError } from "../../src/errors.ts";
import { StateStore } from "../../src/store/index.ts";
import { makeRelease } from "../helpers/fleetFixture.ts";
import { tempStateDir } from "./tempStateDir.ts";

test("release history keeps full records, statuses and evidence, newest first, and prunes", (t) => {
  const store = StateStore.open(tempStateDir(t));
  t.after(() => store.close());
  const ledger = store.ledger;
  for (const [i, version] of ["v1", "v2", "v3"].entries()) {
    ledger.recordRelease({
      service: "api",
      spec: makeRelease("api", version),
      contentHash: `h${i}`,
      status: "active",
      at: 1000 + i,
    });
  }
  const evidence = { windowMs: 60_000, requests: 600, errorRate: 0.001, p99Ms: 12, at: 5000 };
  ledger.setReleaseStatus("api", "v2", "proven", evidence);
  assert.deepEqual(
    ledger.history("api").map((h) => [h.version, h.status]),
    [
      ["v3", "active"],
      ["v2", "proven"],
      ["v1", "active"],
    ],
  );
  const v2 = ledger.release("api", "v2")!;
  assert.deepEqual(v2.evidence, evidence);
  assert.equal(v2.provenAt, 5000);
  assert.equal(v2.spec.version, "v2", "the full record comes back");
  assert.throws(
    () => ledger.setReleaseStatus("api", "v9", "failed"),
    (e: unknown) => e instanceof HomeostatError && e.code === "HS_NOT_FOUND",
  );
  // Keep 1, but never the active release even when it is the oldest.
  ledger.prune("api", 1, "v1");
  assert.deepEqual(
    ledger.history("api").map((h) => h.version),
    ["v3", "v1"],
  );
});

test("one rollout per service at a time; state survives a reopen", (t) => {
  const dir = tempStateDir(t);
  let store = StateStore.open(dir);
  const started = store.ledger.startRollout("api", "deploy", (id) => ({ id, phase: "starting" }), 1000);
  assert.throws(
    () => store.ledger.startRollout("api", "rollback", (id) => ({ id }), 1001),
    (e: unknown) => e instanceof HomeostatError && e.code === "HS_CONFLICT",
  );
  store.ledger.startRollout("web", "deploy", (id) => ({ id }), 1002);
  store.ledger.saveRollout(started.id, { id: started.id, phase: "stepping" }, false, 2000);
  store.close();
  store = StateStore.open(dir);
  t.after(() => store.close());
  const active = store.ledger.activeRollouts<{ id: number; phase?: string }>();
  assert.deepEqual(
    active.map((r) => [r.service, r.kind, r.state.phase ?? null]),
    [
      ["api", "deploy", "stepping"],
      ["web", "deploy", null],
    ],
  );
  store.ledger.saveRollout(started.id, { id: started.id, phase: "proven" }, true, 3000);
  assert.deepEqual(
    store.ledger.activeRollouts().map((r) => r.service),
    ["web"],
  );
  // Finished: a new rollout of api may start.
  assert.equal(store.ledger.startRollout("api", "deploy", (id) => ({ id }), 4000).service, "api");
});

test("migrations move the datastore's version and are remembered in order", (t) => {
  const store = StateStore.open(tempStateDir(t));
  t.after(() => store.close());
  const ledger = store.ledger;
  ledger.setDatastoreVersion("orders-db", 5, 100, "initial");
  ledger.recordMigration("api", "v3", { datastore: "orders-db", from: 5, to: 6, reversible: false }, 200);
  ledger.recordMigration("api", "v4", { datastore: "orders-db", from: 6, to: 7, reversible: true }, 300);
  assert.deepEqual(ledger.datastoreVersion("orders-db"), {
    version: 7,
    at: 300,
    source: "migration by api v4",
  });
  assert.deepEqual(
    ledger
      .appliedMigrations()
      .map((m) => [m.version, m.migration.from, m.migration.to, m.migration.reversible]),
    [
      ["v3", 5, 6, false],
      ["v4", 6, 7, true],
    ],
  );
  ledger.setServiceState({
    service: "api",
    activeRelease: "v4",
    activeBank: 1,
    specRelease: "v1",
    updatedAt: 300,
  });
  assert.deepEqual(ledger.serviceState("api"), {
    service: "api",
    activeRelease: "v4",
    activeBank: 1,
    specRelease: "v1",
    updatedAt: 300,
  });
  assert.equal(ledger.serviceState("web"), null);
});
