import assert from "node:assert/strict";
import { test } from "node:test";
import { HomeostatError } from "../../src/errors.ts";
import { type InstanceRecord, StateStore } from "../../src/store/index.ts";
import { tempStateDir } from "./tempStateDir.ts";

function openStore(t: import("node:test").TestContext): StateStore {
  const store = StateStore.open(tempStateDir(t));
  t.after(() => store.close());
  return store;
}

const isCode = (code: string) => (error: unknown) => error instanceof HomeostatError && error.code === code;

test("the last recorded fleet is returned, and survives a reopen", (t) => {
  const dir = tempStateDir(t);
  const store = StateStore.open(dir);
  assert.equal(store.lastFleet(), null);
  store.recordFleet("/srv/a/fleet.yaml", '{"name":"a"}', 100);
  store.recordFleet("/srv/b/fleet.yaml", '{"name":"b"}', 200);
  store.close();
  const reopened = StateStore.open(dir);
  t.after(() => reopened.close());
  assert.deepEqual(reopened.lastFleet(), { file: "/srv/b/fleet.yaml", specJson: '{"name":"b"}', at: 200 });
});

test("upsertRelease is idempotent and keeps the first sighting", (t) => {
  const store = openStore(t);
  store.upsertRelease({ service: "web", version: "v1", specJson: "{}", contentHash: "h1", at: 10 });
  store.upsertRelease({ service: "web", version: "v1", specJson: "{}", contentHash: "h1", at: 20 });
  store.upsertRelease({ service: "web", version: "v2", specJson: '{"x":1}', contentHash: "h2", at: 30 });
  store.upsertRelease({ service: "api", version: "v1", specJson: "{}", contentHash: "h3", at: 40 });
  assert.deepEqual(store.listReleases("web"), [
    { service: "web", version: "v1", specJson: "{}", contentHash: "h1", firstSeen: 10, lastSeen: 20 },
    { service: "web", version: "v2", specJson: '{"x":1}', contentHash: "h2", firstSeen: 30, lastSeen: 30 },
  ]);
  assert.deepEqual(
    store.listReleases().map((r) => `${r.service}@${r.version}`),
    ["api@v1", "web@v1", "web@v2"],
  );
});

test("instances are upserted by name, listed by service and slot, and deleted", (t) => {
  const store = openStore(t);
  const web0: InstanceRecord = {
    name: "web-0",
    service: "web",
    slot: 0,
    port: 8100,
    release: "v1",
    zone: "a",
    host: "h1",
    pid: null,
    startTime: null,
    logPath: null,
    startedAt: null,
    generation: 0,
    desired: "running",
    lastExit: null,
    configHash: "3f2a9c41d0e8b7a6",
    secretVersions: { "db-password": "7" },
  };
  store.putInstance({ ...web0, name: "web-1", slot: 1, port: 8101 });
  store.putInstance(web0);
  store.putInstance({ ...web0, name: "api-0", service: "api", port: 9000 });
  assert.deepEqual(store.getInstance("web-0"), web0);

  const restarted: InstanceRecord = {
    ...web0,
    pid: 4242,
    startTime: "987654",
    logPath: "/state/logs/web-0.log",
    startedAt: 1_000,
    generation: 1,
    lastExit: { code: null, signal: "SIGKILL", at: 900 },
  };
  store.putInstance(restarted);
  assert.deepEqual(store.getInstance("web-0"), restarted);
  assert.deepEqual(
    store.listInstances().map((i) => i.name),
    ["api-0", "web-0", "web-1"],
  );

  store.deleteInstance("web-1");
  assert.equal(store.getInstance("web-1"), null);
  assert.equal(store.listInstances().length, 2);
});

test("slot bookkeeping round-trips, including restart times and the crash-loop flag", (t) => {
  const store = openStore(t);
  assert.equal(store.getSlot("web-0"), null);
  const slot = {
    instance: "web-0",
    consecutiveFailures: 3,
    restartTimes: [100, 200, 300],
    nextStartAt: 800,
    crashLoop: true,
    updatedAt: 300,
  };
  store.putSlot(slot);
  assert.deepEqual(store.getSlot("web-0"), slot);
  const reset = { ...slot, consecutiveFailures: 0, restartTimes: [], nextStartAt: null, crashLoop: false };
  store.putSlot(reset);
  store.putSlot({ ...reset, instance: "api-0" });
  assert.deepEqual(store.getSlot("web-0"), reset);
  assert.deepEqual(
    store.listSlots().map((s) => s.instance),
    ["api-0", "web-0"],
  );
});

test("an incident is opened, updated, given a timeline, and closed", (t) => {
  const store = openStore(t);
  const opened = store.openIncident({
    service: "web",
    instance: "web-0",
    kind: "exited",
    reason: "process-exited",
    detectedAt: 1_500,
    lastGoodAt: 1_000,
  });
  assert.equal(typeof opened.id, "number");
  assert.deepEqual(
    { ...opened, id: 0 },
    {
      id: 0,
      service: "web",
      instance: "web-0",
      kind: "exited",
      status: "open",
      reason: "process-exited",
      detectedAt: 1_500,
      lastGoodAt: 1_000,
      actionStartedAt: null,
      mitigatedAt: null,
      closedAt: null,
      stabilizedAt: null,
      verifiedAt: null,
      ttdMs: null,
      ttrMs: null,
      detail: "",
    },
  );
  assert.deepEqual(store.openIncidentFor("web-0"), opened);
  assert.equal(store.openIncidentFor("web-1"), null);

  store.addIncidentEvent(opened.id, { at: 1_500, phase: "detected", detail: "exit code 1" });
  store.addIncidentEvent(opened.id, { at: 1_600, phase: "action", detail: "restart" });
  const acting = store.updateIncident(opened.id, { actionStartedAt: 1_600, ttdMs: 500 });
  assert.equal(acting.actionStartedAt, 1_600);
  assert.equal(acting.ttdMs, 500);
  assert.equal(acting.reason, "process-exited", "fields not in the patch are left alone");

  const closed = store.updateIncident(opened.id, {
    status: "closed",
    mitigatedAt: 2_500,
    closedAt: 2_600,
    stabilizedAt: 2_550,
    verifiedAt: 2_600,
    ttrMs: 1_000,
    detail: "recovered",
    reason: undefined,
  });
  assert.equal(closed.status, "closed");
  assert.equal(closed.verifiedAt, 2_600);
  assert.equal(closed.stabilizedAt, 2_550);
  assert.equal(closed.reason, "process-exited", "undefined means 'leave alone'");
  assert.equal(store.openIncidentFor("web-0"), null);

  const full = store.getIncident(opened.id);
  assert.deepEqual(full, {
    ...closed,
    timeline: [
      { at: 1_500, phase: "detected", detail: "exit code 1" },
      { at: 1_600, phase: "action", detail: "restart" },
    ],
  });
  assert.equal(store.getIncident(opened.id + 100), null);
});

test("updating or adding to an unknown incident is HS_NOT_FOUND and changes nothing", (t) => {
  const store = openStore(t);
  assert.throws(() => store.updateIncident(99, { status: "closed" }), isCode("HS_NOT_FOUND"));
  assert.throws(() => store.addIncidentEvent(99, { at: 1, phase: "x", detail: "" }), isCode("HS_NOT_FOUND"));
  assert.deepEqual(store.listIncidents(), []);
});

test("incidents are listed newest first, filtered by status and service, and limited", (t) => {
  const store = openStore(t);
  const base = { kind: "exited", reason: "process-exited" };
  const a = store.openIncident({ ...base, service: "web", instance: "web-0", detectedAt: 100 });
  const b = store.openIncident({ ...base, service: "api", instance: "api-0", detectedAt: 300 });
  const c = store.openIncident({ ...base, service: "web", instance: "web-1", detectedAt: 200 });
  store.updateIncident(a.id, { status: "closed", closedAt: 400 });

  const ids = (list: { id: number }[]) => list.map((i) => i.id);
  assert.deepEqual(ids(store.listIncidents()), [b.id, c.id, a.id]);
  assert.deepEqual(ids(store.listIncidents({ status: "open" })), [b.id, c.id]);
  assert.deepEqual(ids(store.listIncidents({ status: "closed" })), [a.id]);
  assert.deepEqual(ids(store.listIncidents({ service: "web" })), [c.id, a.id]);
  assert.deepEqual(ids(store.listIncidents({ service: "web", status: "open" })), [c.id]);
  assert.deepEqual(ids(store.listIncidents({ limit: 2 })), [b.id, c.id]);
  assert.throws(() => store.listIncidents({ limit: -1 }), isCode("HS_BAD_REQUEST"));
});

test("events get increasing seqs and list ascending, after a seq, by service, or the last N", (t) => {
  const store = openStore(t);
  const appended = [1, 2, 3, 4, 5].map((n) =>
    store.appendEvent({
      at: n * 10,
      type: "instance.started",
      service: n % 2 === 0 ? "api" : "web",
      ...(n === 1 ? {} : { instance: `x-${n}` }),
      reason: "spec",
      message: `m${n}`,
      ...(n === 3 ? { data: { pid: 7, tags: ["a"] } } : {}),
    }),
  );
  const seqs = appended.map((e) => e.seq);
  assert.deepEqual(
    seqs,
    [...seqs].sort((x, y) => x - y),
  );
  assert.equal(new Set(seqs).size, 5);

  const all = store.listEvents();
  assert.deepEqual(all, appended);
  assert.equal("instance" in all[0]!, false, "absent optional fields stay absent");
  assert.deepEqual(all[2]!.data, { pid: 7, tags: ["a"] });

  const messages = (list: { message: string }[]) => list.map((e) => e.message);
  assert.deepEqual(messages(store.listEvents({ afterSeq: seqs[1]! })), ["m3", "m4", "m5"]);
  assert.deepEqual(messages(store.listEvents({ afterSeq: seqs[1]!, limit: 2 })), ["m3", "m4"]);
  assert.deepEqual(messages(store.listEvents({ limit: 2 })), ["m4", "m5"]);
  assert.deepEqual(messages(store.listEvents({ service: "web" })), ["m1", "m3", "m5"]);
  assert.deepEqual(messages(store.listEvents({ service: "web", limit: 2 })), ["m3", "m5"]);
  assert.deepEqual(store.listEvents({ afterSeq: seqs[4]! }), []);
});

test("an event seq is never reused, even across a reopen", (t) => {
  const dir = tempStateDir(t);
  const first = StateStore.open(dir);
  const last = first.appendEvent({ at: 1, type: "t", reason: "r", message: "before" });
  first.close();
  const second = StateStore.open(dir);
  t.after(() => second.close());
  const next = second.appendEvent({ at: 2, type: "t", reason: "r", message: "after" });
  assert.ok(next.seq > last.seq);
});

test("the journal records intents before results and reports the ones left pending", (t) => {
  const store = openStore(t);
  const restart = store.journalIntent({
    at: 10,
    action: "restart",
    target: "web-0",
    reason: "liveness",
    data: { generation: 3 },
  });
  const stop = store.journalIntent({ at: 11, action: "stop", target: "api-0", reason: "down" });
  assert.ok(stop > restart);
  assert.deepEqual(
    store.pendingIntents().map((j) => j.id),
    [restart, stop],
  );

  store.journalResult(restart, { at: 20, ok: false, detail: "spawn ENOENT" });
  assert.deepEqual(store.listJournal(), [
    {
      id: restart,
      at: 10,
      action: "restart",
      target: "web-0",
      reason: "liveness",
      data: { generation: 3 },
      result: { at: 20, ok: false, detail: "spawn ENOENT" },
    },
    { id: stop, at: 11, action: "stop", target: "api-0", reason: "down", result: null },
  ]);
  assert.deepEqual(
    store.pendingIntents().map((j) => j.id),
    [stop],
  );
  assert.deepEqual(
    store.listJournal({ pendingOnly: true }).map((j) => j.id),
    [stop],
  );
  assert.deepEqual(
    store.listJournal({ limit: 1 }).map((j) => j.id),
    [stop],
  );

  assert.throws(
    () => store.journalResult(restart, { at: 30, ok: true, detail: "again" }),
    isCode("HS_INTERNAL"),
  );
  assert.equal(store.listJournal()[0]!.result?.detail, "spawn ENOENT", "the first result stands");
  assert.throws(
    () => store.journalResult(stop + 100, { at: 30, ok: true, detail: "" }),
    isCode("HS_NOT_FOUND"),
  );
});

test("close is idempotent", (t) => {
  const store = StateStore.open(tempStateDir(t));
  store.close();
  store.close();
});

test("the writer's open incidents are read again after each incident it writes, and only then", (t) => {
  const dir = tempStateDir(t);
  const store = StateStore.open(dir);
  t.after(() => store.close());
  const base = { kind: "exited", reason: "process-exited" };
  const ids = (list: readonly { id: number }[]) => list.map((i) => i.id);
  assert.deepEqual(store.listOpenIncidentsWrittenHere(), []);

  const a = store.openIncident({ ...base, service: "web", instance: "web-0", detectedAt: 100 });
  const b = store.openIncident({ ...base, service: "web", instance: "web-1", detectedAt: 200 });
  assert.deepEqual(ids(store.listOpenIncidentsWrittenHere()), [b.id, a.id]);
  const read = store.listOpenIncidentsWrittenHere();
  assert.equal(
    store.listOpenIncidentsWrittenHere(),
    read,
    "no write since: the same records, not a new read",
  );

  store.updateIncident(b.id, { mitigatedAt: 250 });
  assert.equal(store.listOpenIncidentsWrittenHere()[0]?.mitigatedAt, 250, "an update is seen");
  store.updateIncident(a.id, { status: "closed", closedAt: 300 });
  assert.deepEqual(ids(store.listOpenIncidentsWrittenHere()), [b.id], "a closed one is gone");
  store.addIncidentEvent(b.id, { at: 310, phase: "verified", detail: "stable" });
  assert.deepEqual(ids(store.listOpenIncidentsWrittenHere()), [b.id]);

  // What the name says: another writer's incident is not seen until this one writes (a process
  // that shares the store with a writer reads listIncidents instead).
  const other = StateStore.open(dir);
  const c = other.openIncident({ ...base, service: "api", instance: "api-0", detectedAt: 400 });
  other.close();
  assert.deepEqual(ids(store.listOpenIncidentsWrittenHere()), [b.id]);
  assert.deepEqual(ids(store.listIncidents({ status: "open" })), [c.id, b.id]);
  store.updateIncident(b.id, { detail: "noted" });
  assert.deepEqual(ids(store.listOpenIncidentsWrittenHere()), [c.id, b.id]);
});
