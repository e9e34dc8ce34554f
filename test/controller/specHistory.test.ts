import assert from "node:assert/strict";
import { chmodSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { recordUpRevision, SpecDriftCheck } from "../../src/controller/specHistory.ts";
import { parseFleet } from "../../src/spec/index.ts";
import { StateStore, specContentHash } from "../../src/store/index.ts";
import { tempStateDir } from "../store/tempStateDir.ts";

const TEXT = `version: 1
services:
  api:
    replicas: 1
    basePort: 18400
    release: v1
    releases: { v1: { command: node } }
`;

function setUp(t: import("node:test").TestContext) {
  const dir = tempStateDir(t);
  const file = join(dir, "fleet.yaml");
  writeFileSync(file, TEXT);
  const parsed = parseFleet(TEXT, file);
  assert.ok(parsed.ok);
  const store = StateStore.open(join(dir, "state"));
  t.after(() => store.close());
  return { file, fleet: parsed.fleet, store };
}

test("up records revision 1 once: by homeostat up, applied, with the file's text and resolved spec", (t) => {
  const { file, fleet, store } = setUp(t);
  const first = recordUpRevision(store, fleet, 1000);
  assert.ok(first);
  assert.deepEqual(
    [first.number, first.who, first.state, first.text, first.file, first.diffJson],
    [1, "homeostat up", "applied", TEXT, file, null],
  );
  assert.deepEqual(JSON.parse(first.specJson), JSON.parse(JSON.stringify(fleet)));
  // A second up with the same file records nothing.
  assert.equal(recordUpRevision(store, fleet, 2000), null);
  assert.equal(store.revisions.list().length, 1);
});

test("up with a file edited since the applied revision records it (by homeostat up, with its diff); not while one is applying, nor over an in-place release edit", (t) => {
  const { file, fleet, store } = setUp(t);
  recordUpRevision(store, fleet, 1000);
  const edited = TEXT.replace("replicas: 1", "replicas: 2");
  writeFileSync(file, edited);
  const parsed = parseFleet(edited, file);
  assert.ok(parsed.ok);
  // A release definition edited under its recorded name is kept as recorded: the file is not
  // what runs, so it stays drift until applied.
  assert.equal(recordUpRevision(store, parsed.fleet, 2000, 1), null);
  const second = recordUpRevision(store, parsed.fleet, 3000);
  assert.ok(second);
  assert.deepEqual(
    [second.number, second.who, second.state, second.text],
    [2, "homeostat up", "applied", edited],
  );
  assert.match(second.reason ?? "", /changed since revision 1/);
  const diff = JSON.parse(second.diffJson ?? "null") as { changes: { class: string; path: string }[] };
  // maxReplicas defaults to 2 × replicas: it follows.
  assert.deepEqual(
    diff.changes.map((c) => [c.class, c.path]),
    [
      ["scale", "services.api.replicas"],
      ["live", "services.api.capacity.maxReplicas"],
    ],
  );
  assert.equal(new SpecDriftCheck(store).status()?.fileOnDisk, "same");
  // A revision still applying is resumed by the next controller: up records nothing over it.
  store.revisions.record({ ...second, diffJson: null, reason: null, at: 4000, state: "applying" });
  writeFileSync(file, `${edited}# again\n`);
  assert.equal(recordUpRevision(store, parsed.fleet, 5000), null);
});

test("a fleet with no readable file (built by hand) records no revision and reports no spec", (t) => {
  const { fleet, store } = setUp(t);
  assert.equal(recordUpRevision(store, { ...fleet, file: "/nonexistent/fleet.yaml" }, 1), null);
  assert.equal(new SpecDriftCheck(store).status(), undefined);
});

test("the drift check compares the file on disk with the applied revision: same, differs, missing, unreadable", (t) => {
  const { file, fleet, store } = setUp(t);
  recordUpRevision(store, fleet, 1000);
  const check = new SpecDriftCheck(store);
  const same = check.status();
  assert.deepEqual(same, {
    revision: 1,
    hash: specContentHash(TEXT),
    file,
    at: 1000,
    who: "homeostat up",
    fileOnDisk: "same",
    fileHash: specContentHash(TEXT),
    applying: null,
  });

  writeFileSync(file, TEXT.replace("replicas: 1", "replicas: 2"));
  // Same size, and an mtime forced to the old one would hide it; a real edit moves the mtime.
  utimesSync(file, new Date(), new Date(Date.now() + 5_000));
  const differs = check.status();
  assert.equal(differs?.fileOnDisk, "differs");
  assert.equal(differs?.fileHash, specContentHash(TEXT.replace("replicas: 1", "replicas: 2")));

  writeFileSync(file, TEXT);
  utimesSync(file, new Date(), new Date(Date.now() + 10_000));
  assert.equal(check.status()?.fileOnDisk, "same");

  if (process.getuid?.() !== 0) {
    // root reads whatever the mode says: this case only holds for an ordinary user.
    chmodSync(file, 0o000);
    utimesSync(file, new Date(), new Date(Date.now() + 15_000));
    assert.equal(check.status()?.fileOnDisk, "unreadable");
    chmodSync(file, 0o644);
  }

  rmSync(file);
  const missing = check.status();
  assert.equal(missing?.fileOnDisk, "missing");
  assert.equal(missing?.fileHash, null);
});

test("the drift check follows the newest applied revision and names one still applying", (t) => {
  const { file, fleet, store } = setUp(t);
  recordUpRevision(store, fleet, 1000);
  const edited = `${TEXT}# two\n`;
  const second = store.revisions.record({
    file,
    text: edited,
    specJson: "{}",
    diffJson: null,
    who: "ops",
    at: 2000,
  });
  const check = new SpecDriftCheck(store);
  assert.equal(check.status()?.applying, second.number);
  assert.equal(check.status()?.revision, 1);
  writeFileSync(file, edited);
  utimesSync(file, new Date(), new Date(Date.now() + 5_000));
  assert.equal(check.status()?.fileOnDisk, "differs");
  store.revisions.markApplied(second.number, 3000);
  assert.deepEqual(
    [check.status()?.revision, check.status()?.fileOnDisk, check.status()?.applying],
    [2, "same", null],
  );
});
