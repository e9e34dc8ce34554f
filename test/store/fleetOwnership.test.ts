/**
 * One state directory per fleet: the owner recorded in the store, what counts as the same fleet,
 * and the per-fleet default state directory with its fallback to the shared `.homeostat/` of
 * earlier versions.
 */

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { defaultStateDir } from "../../src/cli/args.ts";
import { HomeostatError } from "../../src/errors.ts";
import { checkFleetOwnership, ownerOf, peekFleetFile } from "../../src/store/fleetOwnership.ts";
import { StateStore } from "../../src/store/index.ts";

const root = realpathSync(mkdtempSync(join(tmpdir(), "homeostat-ownership-")));
after(() => rmSync(root, { recursive: true, force: true }));

test("the same file is the same fleet; another file is refused with HS_STATE_OTHER_FLEET", () => {
  const shop = join(root, "shop.yaml");
  writeFileSync(shop, "");
  const owner = ownerOf({ file: shop, specJson: JSON.stringify({ name: "shop" }) });
  assert.deepEqual(owner, { file: shop, name: "shop" });
  checkFleetOwnership(null, { file: shop, name: "shop" }, "/s");
  checkFleetOwnership(owner, { file: shop, name: "renamed" }, "/s");
  assert.throws(
    () => checkFleetOwnership(owner, { file: join(root, "blog.yaml"), name: "shop" }, "/s"),
    (error: unknown) =>
      error instanceof HomeostatError &&
      error.code === "HS_STATE_OTHER_FLEET" &&
      /holds the state of fleet "shop"/.test(error.message) &&
      /give another --state-dir/.test(error.message),
  );
});

test("a moved fleet file keeps its state when its old path is gone and its name is the same", () => {
  const gone = ownerOf({ file: join(root, "old-place.yaml"), specJson: JSON.stringify({ name: "shop" }) });
  checkFleetOwnership(gone, { file: join(root, "new-place.yaml"), name: "shop" }, "/s");
  assert.throws(
    () => checkFleetOwnership(gone, { file: join(root, "new-place.yaml"), name: "blog" }, "/s"),
    /HS_STATE_OTHER_FLEET|holds the state/,
  );
});

test("the default state directory is per fleet file, except an old shared .homeostat/ of the same file", () => {
  const folder = join(root, "project");
  mkdirSync(folder);
  const fleet = join(folder, "fleet.yaml");
  const other = join(folder, "other.prod.yml");
  assert.equal(defaultStateDir(fleet), join(folder, ".homeostat", "fleet"));
  assert.equal(defaultStateDir(other), join(folder, ".homeostat", "other.prod"));

  // An earlier version's shared state, last run for fleet.yaml.
  const legacy = join(folder, ".homeostat");
  const store = StateStore.open(legacy);
  store.recordFleet(fleet, JSON.stringify({ name: "project" }), Date.now());
  store.close();
  assert.equal(peekFleetFile(legacy), fleet);
  assert.equal(defaultStateDir(fleet), legacy, "the fleet that ran there keeps it");
  assert.equal(defaultStateDir(other), join(folder, ".homeostat", "other.prod"), "another gets its own");
  assert.equal(peekFleetFile(join(root, "nowhere")), null);
});
