/**
 * `npx homeostat …` in a clone prints no npm warnings when the system's Node is older than
 * `engines` (issue 13, item 10). npm checks `engines` against the Node that runs npm itself, and
 * `npx homeostat` in a clone installs this package into npm's npx cache: on a fresh machine (an
 * empty cache) that printed two EBADENGINE warnings, although the command then runs on the Node 24
 * of node_modules/.bin. The repository's .npmrc (loglevel=error) silences them: this test runs the
 * system's npx, as a user's shell would (no node_modules/.bin on PATH, no npm_* variables from
 * `npm test`), with an empty npm cache.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { REPO } from "../helpers/e2e.ts";
import { run } from "../helpers/run.ts";
import { systemTool, userEnv } from "./commands.ts";

const npx = systemTool("npx");
// A machine without npm cannot run `npx` at all; CI has npm (it installs with it), so there the
// test runs or fails, never skips.
const skip = npx === null && process.env.CI === undefined ? "no npx on PATH" : false;

test("npx homeostat --version with the system's npm and an empty npm cache prints no npm warning", {
  skip,
}, async (t) => {
  assert.ok(npx, "npx on PATH");
  const cache = mkdtempSync(join(tmpdir(), "homeostat-npm-cache-"));
  t.after(() => rmSync(cache, { recursive: true, force: true }));
  const env = { ...userEnv(), npm_config_cache: cache, npm_config_update_notifier: "false" };
  const systemNode = await run("node", ["--version"], { cwd: REPO, env }).catch(() => null);
  t.diagnostic(
    `system node: ${systemNode?.stdout.trim() ?? "none"} (the warning needs one older than 22.18)`,
  );

  const result = await run(npx, ["homeostat", "--version"], { cwd: REPO, env, timeoutMs: 60_000 });
  assert.equal(result.code, 0, `npx exited ${result.code}\n${result.stderr}`);
  assert.match(result.stdout, /^homeostat \d+\.\d+\.\d+/);
  assert.doesNotMatch(result.stderr, /EBADENGINE/);
  assert.doesNotMatch(result.stderr, /npm warn/i);
});
