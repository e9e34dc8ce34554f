/**
 * The PostgreSQL store runs the same schema and the same queries as SQLite: a scripted history of
 * every kind of write is played on both, and everything read back must be equal. Then what only a
 * shared store has: migrations raced by several processes, the lease and its fencing token, and
 * clear errors for a bad address, a foreign schema and a server that is not there.
 */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { HomeostatError } from "../../src/errors.ts";
import { LATEST_VERSION, StateStore } from "../../src/store/index.ts";
import { PostgresDatabase } from "../../src/store/sql/postgresDatabase.ts";
import { pgQuery, pgStoreUrl } from "../helpers/postgres.ts";
import { tempStateDir } from "./tempStateDir.ts";

const LEADER = { holder: "host-a/1/1", pid: 1, host: "host-a", apiUrl: "http://127.0.0.1:1", startedAt: 1 };
const OTHER = { holder: "host-b/2/2", pid: 2, host: "host-b", apiUrl: "http://127.0.0.1:2", startedAt: 2 };

/** Every kind of write the controller makes, then every read, returned for comparison. */
function playHistory(store: StateStore): unknown {
  store.recordFleet("/f/fleet.yaml", '{"name":"shop"}', 10);
  store.recordFleet("/f/fleet.yaml", '{"name":"shop2"}', 11);
  store.upsertRelease({ service: "api", version: "v1", specJson: "{}", contentHash: "h1", at: 20 });
  store.upsertRelease({ service: "api", version: "v1", specJson: "{}", contentHash: "h1", at: 15 });
  store.upsertRelease({ service: "api", version: "v2", specJson: "{}", contentHash: "h2", at: 30 });
  const instance = {
    name: "api-0",
    service: "api",
    slot: 0,
    port: 7101,
    release: "v1",
    zone: "a",
    host: "h",
    pid: 123,
    startTime: "999",
    logPath: "/l",
    startedAt: 1_700_000_000_000,
    generation: 1,
    desired: "running" as const,
    lastExit: null,
    configHash: "c",
    secretVersions: { db: "3" },
  };
  store.putInstance(instance);
  store.putInstance({ ...instance, pid: 124, generation: 2, lastExit: { code: 1, signal: null, at: 5 } });
  store.putInstance({ ...instance, name: "api-1", slot: 1 });
  store.deleteInstance("api-1");
  store.putSlot({
    instance: "api-0",
    consecutiveFailures: 2,
    restartTimes: [1, 2],
    nextStartAt: 9,
    crashLoop: false,
    updatedAt: 3,
  } as never);
  const incident = store.openIncident({
    service: "api",
    instance: "api-0",
    kind: "crash",
    reason: "exited",
    detectedAt: 100,
    lastGoodAt: 90,
    ttdMs: 10,
  } as never);
  store.addIncidentEvent(incident.id, { at: 101, phase: "action", detail: "restart" } as never);
  store.updateIncident(incident.id, { status: "closed", closedAt: 150, ttrMs: 50 } as never);
  store.openIncident({
    service: "web",
    instance: "web-0",
    kind: "hang",
    reason: "probe",
    detectedAt: 200,
  } as never);
  for (let i = 0; i < 5; i++) {
    store.appendEvent({
      at: 300 + i,
      type: "t",
      reason: "r",
      message: `m${i}`,
      ...(i % 2 ? { service: "api" } : {}),
      data: { i },
    });
  }
  const intent = store.journalIntent({
    at: 400,
    action: "start",
    target: "api-0",
    reason: "r",
    data: { x: 1 },
  });
  store.journalResult(intent, { at: 401, ok: true, detail: "pid 1" });
  store.journalIntent({ at: 402, action: "stop", target: "api-0", reason: "r" });
  store.saveFailoverState('{"z":1}', 500);
  store.saveFailoverState('{"z":2}', 501);
  const token = store.tokens.insert({ name: "ci", role: "operator", hash: "abc", createdBy: "t", at: 600 });
  store.tokens.insert({ name: "admin", role: "admin", hash: "def", createdBy: "t", at: 601 });
  store.tokens.revoke(Number(token?.id), 602);
  store.tokens.touch(2, 603);
  store.audit.append({
    at: 700,
    tokenId: 2,
    tokenName: "admin",
    role: "admin",
    method: "POST",
    route: "/v1/x",
    url: "/v1/x",
    params: { a: 1 },
    body: null,
    reason: "why",
    status: 202,
    errorCode: null,
    durationMs: 1.25,
  });
  const revision = store.revisions.record({
    file: "/f",
    text: "name: shop",
    specJson: "{}",
    diffJson: null,
    who: "t",
    at: 800,
  });
  store.revisions.markApplied(revision.number, 801);
  store.revisions.record({
    file: "/f",
    text: "name: shop2",
    specJson: "{}",
    diffJson: "[]",
    who: "t",
    at: 802,
  });
  const spec = { version: "v1" } as never;
  store.ledger.recordRelease({ service: "api", spec, contentHash: "h1", status: "proven" as never, at: 900 });
  store.ledger.recordRelease({
    service: "api",
    spec: { version: "v2" } as never,
    contentHash: "h2",
    status: "deployed" as never,
    at: 901,
  });
  store.ledger.setServiceState({
    service: "api",
    activeRelease: "v2",
    activeBank: 1,
    specRelease: "v2",
    updatedAt: 902,
  } as never);
  const rollout = store.ledger.startRollout("api", "deploy" as never, (id) => ({ id, step: 1 }), 903);
  store.ledger.saveRollout(rollout.id, { id: rollout.id, step: 2 }, true, 904);
  store.ledger.setDatastoreVersion("db", 3, 905, "migration");
  store.ledger.prune("api", 1, "v2");
  return {
    fleet: store.lastFleet(),
    releases: store.listReleases(),
    instances: store.listInstances(),
    slots: store.listSlots(),
    incidents: store.listIncidents(),
    incident: store.getIncident(incident.id),
    open: store.openIncidentFor("web-0"),
    lastEvents: store.listEvents({ limit: 2 }),
    afterEvents: store.listEvents({ afterSeq: 1, limit: 10, service: "api" }),
    journal: store.listJournal(),
    pending: store.pendingIntents(),
    failover: store.failoverState(),
    tokens: store.tokens.list({ includeRevoked: true }),
    liveAdmins: store.tokens.countLive("admin"),
    audit: store.audit.list({ limit: 10 }),
    revisions: store.revisions.list(),
    pendingRevision: store.revisions.pending()?.number,
    history: store.ledger.history("api"),
    serviceState: store.ledger.serviceState("api"),
    rollouts: store.ledger.rollouts("api"),
    active: store.ledger.activeRollouts(),
    datastore: store.ledger.datastoreVersion("db"),
  };
}

test("PostgreSQL and SQLite stores read back the same history written the same way", (t) => {
  const sqlite = StateStore.open(tempStateDir(t));
  t.after(() => sqlite.close());
  const postgres = StateStore.open(tempStateDir(t), pgStoreUrl(t));
  t.after(() => postgres.close());
  assert.equal(postgres.dialect, "postgres");
  assert.equal(sqlite.dialect, "sqlite");
  const fromSqlite = playHistory(sqlite);
  const fromPostgres = playHistory(postgres);
  assert.deepEqual(fromPostgres, fromSqlite);
  // The history is not trivially empty on both sides.
  assert.equal((fromSqlite as { journal: unknown[] }).journal.length, 2);
});

test("a PostgreSQL store is migrated once when several controllers open it at the same moment", async (t) => {
  const url = pgStoreUrl(t);
  const script = `
    const { StateStore } = await import(${JSON.stringify(new URL("../../src/store/index.ts", import.meta.url).href)});
    const s = StateStore.open("/nonexistent-unused", process.argv[1]);
    process.stdout.write(String(s.dialect));
    s.close();`;
  const runs = await Promise.all(
    [0, 1, 2].map(
      () =>
        new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
          const child = spawn(process.execPath, ["--input-type=module", "-e", script, url], {
            stdio: ["ignore", "pipe", "pipe"],
          });
          let out = "";
          let err = "";
          child.stdout.on("data", (c) => {
            out += c;
          });
          child.stderr.on("data", (c) => {
            err += c;
          });
          child.on("exit", (code) => resolve({ code, out, err }));
        }),
    ),
  );
  for (const run of runs)
    assert.deepEqual({ code: run.code, out: run.out }, { code: 0, out: "postgres" }, run.err);
  const schema = new URL(url).searchParams.get("schema");
  const version = await pgQuery(`SELECT version FROM "${schema}".homeostat_schema`);
  assert.equal(Number(version.rows[0].version), LATEST_VERSION);
  const journals = await pgQuery(
    "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'journal'",
    [schema],
  );
  assert.equal(Number(journals.rows[0].n), 1);
});

test("the lease: one leader, a follower takes it only after it expires, with a newer fencing token", async (t) => {
  const url = pgStoreUrl(t);
  const a = StateStore.open(tempStateDir(t), url);
  t.after(() => a.close());
  const b = StateStore.open(tempStateDir(t), url);
  t.after(() => b.close());
  const ttl = 300;
  const first = a.leadership.claim(LEADER, ttl);
  assert.equal(first.leader, true);
  assert.equal(first.lease.token, 1);
  const refused = b.leadership.claim(OTHER, ttl);
  assert.equal(refused.leader, false);
  assert.equal(refused.lease.holder, LEADER.holder);
  // The leader renews without a new token.
  const renewed = a.leadership.claim(LEADER, ttl);
  assert.deepEqual([renewed.leader, renewed.lease.token], [true, 1]);
  a.fenceJournal(1);
  assert.equal(typeof a.journalIntent({ at: 1, action: "start", target: "x", reason: "r" }), "number");

  // Taken over once expired, by the store's clock.
  let taken = b.leadership.claim(OTHER, ttl);
  const deadline = Date.now() + 5_000;
  while (!taken.leader && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    taken = b.leadership.claim(OTHER, ttl);
  }
  assert.equal(taken.leader, true);
  assert.equal(taken.lease.token, 2);
  assert.ok(taken.now >= first.lease.expiresAt, "taken only once the first lease had expired");

  // The deposed leader learns it, and can no longer journal nor pass the process check.
  const lost = a.leadership.claim(LEADER, ttl);
  assert.equal(lost.leader, false);
  assert.throws(
    () => a.journalIntent({ at: 2, action: "stop", target: "x", reason: "r" }),
    (e: unknown) =>
      e instanceof HomeostatError && e.code === "HS_FENCED" && /token 1.*token 2/.test(e.message),
  );
  assert.deepEqual(
    a
      .listEvents()
      .filter((e) => e.type === "journal.fenced")
      .map((e) => e.data),
    [{ token: 1, action: "stop", target: "x" }],
    "the refusal is an event",
  );
  assert.throws(() => a.leadership.assertCurrent(1, "start x"), /HS_FENCED|token 2/);
  // Every other write of the fleet's state is fenced too (an exit seen late must not overwrite the
  // new leader's record of the instance), while events stay open to both.
  b.fenceJournal(2);
  const record = {
    name: "api-0",
    service: "api",
    slot: 0,
    port: 1,
    release: "v1",
    zone: "a",
    host: "h",
    pid: 42,
    startTime: "1",
    logPath: null,
    startedAt: 1,
    generation: 2,
    desired: "running" as const,
    lastExit: null,
  };
  b.putInstance(record);
  assert.throws(
    () => a.putInstance({ ...record, pid: null, generation: 1 }),
    (e: unknown) =>
      e instanceof HomeostatError && e.code === "HS_FENCED" && /a write to instances/.test(e.message),
  );
  assert.equal(b.getInstance("api-0")?.pid, 42, "the new leader's record stands");
  assert.ok(
    a
      .listEvents()
      .some((e) => e.type === "store.fenced" && (e.data as { table?: string }).table === "instances"),
  );
  a.appendEvent({ at: 9, type: "note", reason: "r", message: "observations are not fenced" });
  b.leadership.assertCurrent(2, "start x");
  b.journalIntent({ at: 3, action: "start", target: "x", reason: "r" });
  assert.deepEqual(
    b.listJournal().map((j) => [j.action, j.token]),
    [
      ["start", 1],
      ["start", 2],
    ],
  );
  // Released on a clean shutdown: the next claimant need not wait.
  b.leadership.release(2);
  const next = a.leadership.claim(LEADER, ttl);
  assert.deepEqual([next.leader, next.lease.token], [true, 3]);
});

test("a bad address, a foreign schema and an absent server are refused with their reasons", async (t) => {
  const dir = tempStateDir(t);
  assert.throws(
    () => StateStore.open(dir, "postgres://127.0.0.1/test?schema=Bad-Name"),
    (e: unknown) =>
      e instanceof HomeostatError && e.code === "HS_USAGE" && /schema "Bad-Name"/.test(e.message),
  );
  const url = pgStoreUrl(t);
  const schema = new URL(url).searchParams.get("schema");
  await pgQuery(`CREATE SCHEMA "${schema}"`);
  await pgQuery(`CREATE TABLE "${schema}".orders (id int)`);
  assert.throws(
    () => StateStore.open(dir, url),
    (e: unknown) =>
      e instanceof HomeostatError && e.code === "HS_STATE_FOREIGN" && /not a Homeostat store/.test(e.message),
  );
  const orders = await pgQuery(`SELECT count(*) AS n FROM "${schema}".orders`);
  assert.equal(Number(orders.rows[0].n), 0, "the foreign schema was left alone");
  assert.throws(
    () => StateStore.open(dir, "postgres://postgres:secret@127.0.0.1:1/test"),
    (e: unknown) =>
      e instanceof HomeostatError &&
      e.code === "HS_STORE_UNAVAILABLE" &&
      !e.message.includes("secret") &&
      /127\.0\.0\.1:1/.test(e.message),
  );
});

test("a session the server ended inside a transaction (a controller frozen past idle_in_transaction) fails as HS_STORE_UNAVAILABLE, nothing committed; the next call reconnects", (t) => {
  const db = PostgresDatabase.connect(pgStoreUrl(t));
  t.after(() => db.close());
  db.exec("CREATE TABLE frozen (id INTEGER PRIMARY KEY)");
  const frozen = new Int32Array(new SharedArrayBuffer(4));
  assert.throws(
    () =>
      db.transaction(() => {
        db.run("INSERT INTO frozen (id) VALUES (1)");
        // Frozen as a SIGSTOPped process is: past the server's idle-in-transaction timeout (1 s).
        Atomics.wait(frozen, 0, 0, 1_600);
        db.run("INSERT INTO frozen (id) VALUES (2)");
      }),
    (e: unknown) =>
      e instanceof HomeostatError &&
      e.code === "HS_STORE_UNAVAILABLE" &&
      /the PostgreSQL store is unavailable/.test(e.message),
  );
  assert.deepEqual(db.all("SELECT id FROM frozen"), [], "nothing of the transaction committed");
  db.run("INSERT INTO frozen (id) VALUES (3)");
  assert.deepEqual(
    db.all("SELECT id FROM frozen").map((r) => Number(r.id)),
    [3],
  );
});
