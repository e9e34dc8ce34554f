import assert from "node:assert/strict";
import { test } from "node:test";
import { StateStore, type StoreChange } from "../../src/store/index.ts";
import { tempStateDir } from "./tempStateDir.ts";

function openStore(t: import("node:test").TestContext): StateStore {
  const store = StateStore.open(tempStateDir(t));
  t.after(() => store.close());
  return store;
}

test("subscribers see each appended event, equal to the event as listed", (t) => {
  const store = openStore(t);
  const seen: StoreChange[] = [];
  store.subscribe((change) => seen.push(change));
  const a = store.appendEvent({ at: 1, type: "x.one", reason: "r", message: "m", service: "api" });
  const b = store.appendEvent({ at: 2, type: "x.two", reason: "r", message: "m", data: { n: 1 } });
  assert.deepEqual(seen, [
    { kind: "event", event: a },
    { kind: "event", event: b },
  ]);
  assert.deepEqual(
    seen.map((c) => (c.kind === "event" ? c.event : null)),
    store.listEvents(),
  );
});

test("subscribers see an incident opened, updated and given timeline steps, with its timeline", (t) => {
  const store = openStore(t);
  const seen: StoreChange[] = [];
  store.subscribe((change) => seen.push(change));
  const opened = store.openIncident({
    service: "api",
    instance: "api-0",
    kind: "exited",
    reason: "exited",
    detectedAt: 10,
  });
  store.addIncidentEvent(opened.id, { at: 10, phase: "detected", detail: "exited with code 1" });
  store.updateIncident(opened.id, { mitigatedAt: 20, ttrMs: 10 });
  const incidents = seen.map((c) => (c.kind === "incident" ? c.incident : null));
  assert.equal(incidents.length, 3);
  assert.ok(incidents.every((i) => i?.id === opened.id));
  assert.equal(incidents[0]?.timeline.length, 0);
  assert.deepEqual(incidents[1]?.timeline, [{ at: 10, phase: "detected", detail: "exited with code 1" }]);
  assert.equal(incidents[2]?.mitigatedAt, 20);
  assert.deepEqual(incidents[2], store.getIncident(opened.id));
});

test("a throwing listener does not undo the write nor starve the other listeners; unsubscribe stops delivery", (t) => {
  const store = openStore(t);
  const seen: number[] = [];
  store.subscribe(() => {
    throw new Error("listener bug");
  });
  const unsubscribe = store.subscribe((change) => {
    if (change.kind === "event") seen.push(change.event.seq);
  });
  const first = store.appendEvent({ at: 1, type: "x", reason: "r", message: "m" });
  assert.deepEqual(seen, [first.seq]);
  assert.equal(store.listEvents().length, 1);
  unsubscribe();
  store.appendEvent({ at: 2, type: "x", reason: "r", message: "m" });
  assert.deepEqual(seen, [first.seq]);
  assert.equal(store.listEvents().length, 2);
});
