import assert from "node:assert/strict";
import { test } from "node:test";
import { liveSchemaVersion } from "../../src/controller/liveSchema.ts";
import type { DatastoreSpec } from "../../src/spec/model.ts";
import { StateStore } from "../../src/store/index.ts";
import { tempStateDir } from "../store/tempStateDir.ts";

function datastore(command?: { command: string; args: string[] }): DatastoreSpec {
  return {
    name: "orders-db",
    initialVersion: 5,
    ...(command ? { versionCommand: { ...command, cwd: process.cwd() } } : {}),
  };
}

test("without a command: the recorded version, else the initial one", (t) => {
  const store = StateStore.open(tempStateDir(t));
  t.after(() => store.close());
  assert.deepEqual(liveSchemaVersion(datastore(), store.ledger, 1), {
    version: 5,
    source: "initial version from the fleet file",
  });
  store.ledger.recordMigration("api", "v3", { datastore: "orders-db", from: 5, to: 6, reversible: false }, 2);
  assert.equal(liveSchemaVersion(datastore(), store.ledger, 3).version, 6);
});

test("a version command is the authority, and what it reads is recorded", (t) => {
  const store = StateStore.open(tempStateDir(t));
  t.after(() => store.close());
  store.ledger.setDatastoreVersion("orders-db", 6, 1, "migration by api v3");
  const live = liveSchemaVersion(datastore({ command: "sh", args: ["-c", "echo 7"] }), store.ledger, 2);
  assert.deepEqual(live, { version: 7, source: "versionCommand" });
  assert.deepEqual(store.ledger.datastoreVersion("orders-db"), {
    version: 7,
    at: 2,
    source: "versionCommand",
  });
});

test("a failing or garbled command falls back to the recorded version and says why", (t) => {
  const store = StateStore.open(tempStateDir(t));
  t.after(() => store.close());
  store.ledger.setDatastoreVersion("orders-db", 6, 1, "migration by api v3");
  const failed = liveSchemaVersion(datastore({ command: "sh", args: ["-c", "exit 3"] }), store.ledger, 2);
  assert.equal(failed.version, 6);
  assert.match(failed.source, /versionCommand failed: exit 3/);
  const garbled = liveSchemaVersion(datastore({ command: "sh", args: ["-c", "echo six"] }), store.ledger, 3);
  assert.equal(garbled.version, 6);
  assert.match(garbled.source, /printed "six"/);
  const missing = liveSchemaVersion(
    datastore({ command: "no-such-command-here", args: [] }),
    store.ledger,
    4,
  );
  assert.equal(missing.version, 6);
  assert.match(missing.source, /versionCommand failed: .*ENOENT/);
});
