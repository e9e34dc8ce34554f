import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import { StateStore, specContentHash } from "../../src/store/index.ts";
import { tempStateDir } from "./tempStateDir.ts";

const FILE = "/srv/shop/fleet.yaml";

test("revisions are numbered from 1, hashed from their text and listed newest first; a reopen keeps them", (t) => {
  const dir = tempStateDir(t);
  const store = StateStore.open(dir);
  assert.equal(store.revisions.latestApplied(), null);
  assert.deepEqual(store.revisions.list(), []);
  const first = store.revisions.record({
    file: FILE,
    text: "version: 1\n",
    specJson: '{"name":"shop"}',
    diffJson: null,
    who: "homeostat up",
    at: 100,
    state: "applied",
  });
  assert.equal(first.number, 1);
  assert.equal(first.contentHash, createHash("sha256").update("version: 1\n").digest("hex"));
  assert.equal(first.contentHash, specContentHash("version: 1\n"));
  assert.equal(first.state, "applied");
  assert.equal(first.settledAt, 100);
  assert.equal(first.reason, null);
  const second = store.revisions.record({
    file: FILE,
    text: "version: 1\n# two\n",
    specJson: '{"name":"shop"}',
    diffJson: '{"changes":[],"empty":true}',
    who: "ops",
    reason: "more replicas",
    at: 200,
  });
  assert.equal(second.number, 2);
  assert.equal(second.state, "applying");
  assert.equal(second.settledAt, null);
  assert.notEqual(second.contentHash, first.contentHash);
  store.close();

  const reopened = StateStore.open(dir);
  t.after(() => reopened.close());
  assert.deepEqual(
    reopened.revisions.list().map((r) => [r.number, r.state, r.who, r.reason]),
    [
      [2, "applying", "ops", "more replicas"],
      [1, "applied", "homeostat up", null],
    ],
  );
  assert.deepEqual(
    reopened.revisions.list({ limit: 1 }).map((r) => r.number),
    [2],
  );
  assert.deepEqual(reopened.revisions.get(2), second);
  assert.equal(reopened.revisions.get(3), null);
});

test("latestApplied follows markApplied; a failed or still applying revision never counts", (t) => {
  const store = StateStore.open(tempStateDir(t));
  t.after(() => store.close());
  const base = { file: FILE, specJson: "{}", diffJson: null, who: "ops" };
  store.revisions.record({ ...base, text: "a", at: 1, state: "applied" });
  const b = store.revisions.record({ ...base, text: "b", at: 2 });
  assert.equal(store.revisions.latestApplied()?.number, 1);
  assert.equal(store.revisions.pending()?.number, b.number);

  const failed = store.revisions.markFailed(b.number, 3, "refused: a deploy holds api");
  assert.equal(failed?.state, "failed");
  assert.equal(failed?.error, "refused: a deploy holds api");
  assert.equal(failed?.settledAt, 3);
  assert.equal(store.revisions.latestApplied()?.number, 1);
  assert.equal(store.revisions.pending(), null);

  const c = store.revisions.record({ ...base, text: "c", at: 4 });
  assert.equal(c.number, 3);
  const applied = store.revisions.markApplied(c.number, 5);
  assert.equal(applied?.state, "applied");
  assert.equal(applied?.error, null);
  assert.equal(store.revisions.latestApplied()?.text, "c");
  assert.equal(store.revisions.markApplied(99, 6), null);
});

test("the table refuses a state outside applying, applied, failed", (t) => {
  const store = StateStore.open(tempStateDir(t));
  const path = store.path;
  store.close();
  const db = new DatabaseSync(path);
  t.after(() => db.close());
  assert.throws(
    () =>
      db.exec(
        "INSERT INTO spec_revisions (number, content_hash, file, text, spec_json, who, at, state) VALUES (1, 'h', 'f', 't', '{}', 'x', 1, 'done')",
      ),
    /CHECK constraint failed/,
  );
});
