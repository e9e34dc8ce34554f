import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, openSync, readFileSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import { HomeostatError } from "../../src/errors.ts";
import {
  HOMEOSTAT_APPLICATION_ID,
  LATEST_VERSION,
  MIGRATIONS,
  type Migration,
  migrate,
  STATE_FILE_NAME,
  StateStore,
} from "../../src/store/index.ts";
import { SqliteDatabase } from "../../src/store/sql/sqliteDatabase.ts";
import { tempStateDir } from "./tempStateDir.ts";

function pragma(path: string, name: string): unknown {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const row = db.prepare(`PRAGMA ${name}`).get() as Record<string, unknown>;
    return row[name];
  } finally {
    db.close();
  }
}

function assertRejectedUntouched(dir: string, code: string, messagePattern: RegExp): void {
  const path = join(dir, STATE_FILE_NAME);
  const before = readFileSync(path);
  assert.throws(
    () => StateStore.open(dir),
    (error: unknown) => {
      assert.ok(error instanceof HomeostatError, `expected a HomeostatError, got ${String(error)}`);
      assert.equal(error.code, code);
      assert.match(error.message, messagePattern);
      assert.ok(error.message.startsWith(path), `message names the file: ${error.message}`);
      return true;
    },
  );
  assert.deepEqual(readFileSync(path), before, "the file must be byte-for-byte unchanged");
}

test("a new state directory gets a WAL-mode database at the latest schema, tagged as Homeostat's", (t) => {
  const dir = join(tempStateDir(t), "nested", "state");
  const store = StateStore.open(dir);
  t.after(() => store.close());
  assert.equal(store.path, join(dir, STATE_FILE_NAME));
  store.appendEvent({ at: 1, type: "t", reason: "r", message: "m" });
  assert.equal(pragma(store.path, "user_version"), LATEST_VERSION);
  assert.equal(pragma(store.path, "application_id"), HOMEOSTAT_APPLICATION_ID);
  assert.equal(pragma(store.path, "journal_mode"), "wal");
});

test("reopening a database keeps its data", (t) => {
  const dir = tempStateDir(t);
  const first = StateStore.open(dir);
  first.appendEvent({ at: 1, type: "t", reason: "r", message: "kept" });
  first.close();
  const second = StateStore.open(dir);
  t.after(() => second.close());
  assert.deepEqual(
    second.listEvents().map((e) => e.message),
    ["kept"],
  );
});

test("an older database is migrated to the latest version with its data kept", (t) => {
  assert.ok(LATEST_VERSION >= 2, "this test needs at least two migrations");
  const dir = tempStateDir(t);
  const path = join(dir, STATE_FILE_NAME);
  const old = new DatabaseSync(path);
  migrate(new SqliteDatabase(old, path), MIGRATIONS.slice(0, 1), path);
  old.exec(
    "INSERT INTO events (at, type, service, reason, message) VALUES (5, 'instance.started', 'web', 'r', 'from v1')",
  );
  old.close();
  assert.equal(pragma(path, "user_version"), 1);

  const store = StateStore.open(dir);
  t.after(() => store.close());
  assert.equal(pragma(path, "user_version"), LATEST_VERSION);
  assert.deepEqual(
    store.listEvents({ service: "web" }).map((e) => e.message),
    ["from v1"],
  );
  const db = new DatabaseSync(path, { readOnly: true });
  t.after(() => db.close());
  const indexes = db
    .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND name = 'events_by_service'")
    .all();
  assert.equal(indexes.length, 1, "migration 2's index exists");
});

test("a migration that fails is rolled back whole and leaves the version where it was", (t) => {
  const dir = tempStateDir(t);
  const db = new DatabaseSync(join(dir, "m.db"));
  t.after(() => db.close());
  const migrations: Migration[] = [
    { version: 1, up: "CREATE TABLE a (x INTEGER)" },
    {
      version: 2,
      up: (conn) => {
        conn.exec("CREATE TABLE b (x INTEGER); INSERT INTO a VALUES (1);");
        throw new Error("boom half-way");
      },
    },
  ];
  assert.throws(() => migrate(new SqliteDatabase(db, "m.db"), migrations), /boom half-way/);
  const version = db.prepare("PRAGMA user_version").get() as { user_version: number };
  assert.equal(version.user_version, 1);
  const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").all();
  assert.deepEqual(
    tables.map((row) => row.name),
    ["a"],
  );
  assert.equal(db.prepare("SELECT count(*) AS n FROM a").get()?.n, 0);
});

test("migrations must be numbered 1, 2, 3 … in order", (t) => {
  const db = new DatabaseSync(":memory:");
  t.after(() => db.close());
  assert.throws(
    () =>
      migrate(new SqliteDatabase(db, ":memory:"), [
        { version: 1, up: "CREATE TABLE a (x)" },
        { version: 3, up: "CREATE TABLE b (x)" },
      ]),
    (error: unknown) => error instanceof HomeostatError && error.code === "HS_INTERNAL",
  );
  assert.equal(db.prepare("SELECT count(*) AS n FROM sqlite_schema").get()?.n, 0, "nothing ran");
});

test("a database written by a newer Homeostat is refused and left untouched", (t) => {
  const dir = tempStateDir(t);
  StateStore.open(dir).close();
  const path = join(dir, STATE_FILE_NAME);
  const db = new DatabaseSync(path);
  db.exec(`PRAGMA user_version = ${LATEST_VERSION + 1}`);
  db.close();
  assertRejectedUntouched(dir, "HS_STATE_TOO_NEW", new RegExp(`version ${LATEST_VERSION + 1}.*not modified`));
});

test("a newer version still sitting in the WAL after a crash is refused too", (t) => {
  const dir = tempStateDir(t);
  StateStore.open(dir).close();
  const path = join(dir, STATE_FILE_NAME);
  // Keep a second connection open so the bump stays in the WAL, as after a SIGKILL; the header
  // in the main file still says the old version.
  const holder = new DatabaseSync(path);
  t.after(() => holder.close());
  holder.exec("PRAGMA wal_autocheckpoint = 0");
  holder.exec(`PRAGMA user_version = ${LATEST_VERSION + 7}`);
  assert.ok(statSync(`${path}-wal`).size > 0);
  assertRejectedUntouched(dir, "HS_STATE_TOO_NEW", /not modified/);
});

test("a file of random bytes is refused as corrupt and left untouched", (t) => {
  const dir = tempStateDir(t);
  writeFileSync(join(dir, STATE_FILE_NAME), randomBytes(64 * 1024));
  assertRejectedUntouched(
    dir,
    "HS_STATE_CORRUPT",
    /not a SQLite database; it was not modified\. Move it aside to start fresh, or restore a backup$/,
  );
  assert.equal(existsSync(join(dir, `${STATE_FILE_NAME}-wal`)), false, "SQLite never opened it");
});

test("a real state database with a page overwritten by garbage is refused as corrupt and left untouched", (t) => {
  const dir = tempStateDir(t);
  const store = StateStore.open(dir);
  for (let i = 0; i < 2_000; i++) {
    store.appendEvent({ at: i, type: "t", reason: "r", message: `event ${i} ${"x".repeat(150)}` });
  }
  store.close(); // checkpoints the WAL into the main file
  const path = join(dir, STATE_FILE_NAME);
  const pageSize = pragma(path, "page_size") as number;
  const pages = statSync(path).size / pageSize;
  assert.ok(pages > 20, `expected a multi-page file, got ${pages} pages`);
  const fd = openSync(path, "r+");
  try {
    writeSync(fd, randomBytes(pageSize), 0, pageSize, Math.floor(pages / 2) * pageSize);
  } finally {
    closeSync(fd);
  }
  assertRejectedUntouched(
    dir,
    "HS_STATE_CORRUPT",
    /not modified\. Move it aside to start fresh, or restore a backup$/,
  );
});

test("another program's SQLite database is refused, not migrated", (t) => {
  const dir = tempStateDir(t);
  const db = new DatabaseSync(join(dir, STATE_FILE_NAME));
  db.exec(
    "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers (name) VALUES ('ada');",
  );
  db.close();
  assertRejectedUntouched(dir, "HS_STATE_FOREIGN", /not a Homeostat state database/);
});

test("a SQLite database with another application_id is refused, not migrated", (t) => {
  const dir = tempStateDir(t);
  const db = new DatabaseSync(join(dir, STATE_FILE_NAME));
  db.exec("PRAGMA application_id = 1234; PRAGMA user_version = 1;");
  db.close();
  assertRejectedUntouched(dir, "HS_STATE_FOREIGN", /application_id 1234/);
});

test("an empty file becomes a new database", (t) => {
  const dir = tempStateDir(t);
  writeFileSync(join(dir, STATE_FILE_NAME), "");
  const store = StateStore.open(dir);
  t.after(() => store.close());
  assert.equal(pragma(store.path, "user_version"), LATEST_VERSION);
});
