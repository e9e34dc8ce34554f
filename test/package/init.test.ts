/**
 * `homeostat init [DIR] [--name NAME] [--force]`: the starter fleet file validates as written,
 * takes its name from the directory or --name, and is never overwritten without --force.
 */

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { nameFromDir } from "../../src/cli/commands/init.ts";
import { loadFleetFile } from "../../src/spec/index.ts";
import { cli } from "../helpers/e2e.ts";

const root = mkdtempSync(join(tmpdir(), "homeostat-init-"));
after(() => rmSync(root, { recursive: true, force: true }));

test("init writes a commented fleet.yaml that validates, named after its directory", async () => {
  const result = await cli(["init", "My Shop"], { cwd: root });
  assert.equal(result.code, 0, result.stderr);
  const file = join(root, "My Shop", "fleet.yaml");
  assert.match(result.stdout, /wrote My Shop\/fleet\.yaml \(fleet "my-shop"/);
  assert.match(result.stdout, /homeostat validate My Shop\/fleet\.yaml/);
  assert.match(result.stdout, /homeostat up My Shop\/fleet\.yaml/);
  const text = readFileSync(file, "utf8");
  assert.match(text, /^# /, "commented");
  assert.match(text, /fleet-spec\.md/, "points to the reference");
  const loaded = await loadFleetFile(file);
  assert.ok(loaded.ok, JSON.stringify(loaded.ok ? null : loaded.errors));
  assert.equal(loaded.fleet.name, "my-shop");
  const web = loaded.fleet.services.find((s) => s.name === "web");
  assert.equal(web?.replicas, 2);
  const validated = await cli(["validate", file], { cwd: root });
  assert.equal(validated.code, 0, validated.stdout);
  assert.equal(validated.stdout.trim(), "ok");
});

test("init refuses to overwrite without --force, and overwrites with it", async () => {
  const dir = join(root, "taken");
  const first = await cli(["init", dir, "--name", "first"], { cwd: root });
  assert.equal(first.code, 0, first.stderr);
  const file = join(dir, "fleet.yaml");
  writeFileSync(file, "# mine\n");
  const refused = await cli(["init", dir], { cwd: root });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /already exists; nothing was written \(--force overwrites it\)/);
  assert.equal(readFileSync(file, "utf8"), "# mine\n");
  const forced = await cli(["init", dir, "--force", "--name", "second"], { cwd: root });
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(readFileSync(file, "utf8"), /^name: second$/m);
});

test("init refuses a --name that is not a valid name, writing nothing", async () => {
  const dir = join(root, "bad-name");
  const result = await cli(["init", dir, "--name", "Not Valid"], { cwd: root });
  assert.equal(result.code, 1);
  assert.match(result.stderr, /--name "Not Valid" is not a valid name/);
  assert.ok(!existsSync(join(dir, "fleet.yaml")));
});

test("a directory's name is made a valid fleet name", () => {
  assert.equal(nameFromDir("/x/My Shop"), "my-shop");
  assert.equal(nameFromDir("/x/2024_app!"), "app");
  assert.equal(nameFromDir("/x/___"), "my-fleet");
  assert.equal(nameFromDir("/x/a".padEnd(60, "b")).length, 40);
});
