/**
 * The crash-point catalogue is complete: every `crashPoint(…)` / `crashPointAfter(…)` in the
 * source names a catalogued boundary, every catalogued boundary is crossed somewhere and belongs
 * to an operation the crash tests iterate over (test/e2e/crashSafety*.test.ts), and the hook is
 * off unless HOMEOSTAT_TEST_HOOKS=1.
 */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { CRASH_BOUNDARIES, CRASH_CATALOGUE, CRASH_MARKER } from "../../src/controller/crashPoints.ts";
import { NODE, REPO } from "../helpers/e2e.ts";

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** Boundary names crossed in src/, from the literal first argument of every call. */
function crossedInSource(): Map<string, string[]> {
  const crossed = new Map<string, string[]>();
  for (const file of sourceFiles(join(REPO, "src"))) {
    if (file.endsWith("crashPoints.ts")) continue;
    const text = readFileSync(file, "utf8");
    for (const match of text.matchAll(/crashPoint(?:After)?\(\s*"([^"]+)"/g)) {
      crossed.set(match[1]!, [...(crossed.get(match[1]!) ?? []), file.slice(REPO.length + 1)]);
    }
    // Names passed through a table (a rollout's transitions, a zone step's pair) are literals too.
    for (const match of text.matchAll(/(?:applied|saved|pushed): "([a-z-]+\.[a-z-]+)"/g)) {
      crossed.set(match[1]!, [...(crossed.get(match[1]!) ?? []), file.slice(REPO.length + 1)]);
    }
    for (const match of text.matchAll(/#crashPoints\("([^"]+)", "([^"]+)"\)/g)) {
      for (const name of [match[1]!, match[2]!])
        crossed.set(name, [...(crossed.get(name) ?? []), file.slice(REPO.length + 1)]);
    }
  }
  return crossed;
}

test("every crash point in the source is catalogued, and every catalogued one is crossed and tested", () => {
  const crossed = crossedInSource();
  const catalogued = new Set(Object.keys(CRASH_BOUNDARIES));
  const uncatalogued = [...crossed.keys()].filter((name) => !catalogued.has(name));
  assert.deepEqual(uncatalogued, [], "crash points without an entry in CRASH_BOUNDARIES");
  const unused = [...catalogued].filter((name) => !crossed.has(name));
  assert.deepEqual(unused, [], "catalogued boundaries no code crosses");
  const inOperations = new Set(Object.values(CRASH_CATALOGUE).flat());
  const untested = [...catalogued].filter((name) => !inOperations.has(name as never));
  assert.deepEqual(
    untested,
    [],
    "boundaries in no operation's catalogue (the crash tests iterate over those)",
  );
});

test("docs/operations.md lists every boundary, in the catalogue's own words", () => {
  const docs = readFileSync(join(REPO, "docs/operations.md"), "utf8");
  for (const [name, boundary] of Object.entries(CRASH_BOUNDARIES)) {
    assert.ok(docs.includes(`| \`${name}\` |`), `${name} is not in the Crash safety table`);
    assert.ok(
      docs.includes(boundary.recovery),
      `${name}: the docs do not say what recovery does as the code says it`,
    );
  }
});

test("the hook is off without HOMEOSTAT_TEST_HOOKS=1, and kills the process at the named crossing with it", () => {
  const script = `
    import { crashPoint } from ${JSON.stringify(join(REPO, "src/controller/crashPoints.ts"))};
    crashPoint("deploy.recorded");
    process.stdout.write("after 1\\n");
    crashPoint("deploy.recorded");
    process.stdout.write("after 2\\n");
  `;
  const run = (env: Record<string, string>) =>
    spawnSync(NODE, ["--input-type=module", "-e", script], {
      env: { ...process.env, HOMEOSTAT_TEST_HOOKS: "", HOMEOSTAT_CRASH_AT: "", ...env },
      encoding: "utf8",
    });
  const off = run({ HOMEOSTAT_CRASH_AT: "deploy.recorded" });
  assert.equal(off.status, 0, off.stderr);
  assert.equal(off.stdout, "after 1\nafter 2\n");

  const second = run({ HOMEOSTAT_TEST_HOOKS: "1", HOMEOSTAT_CRASH_AT: "deploy.recorded#2" });
  assert.equal(second.signal, "SIGKILL");
  assert.equal(second.stdout, "after 1\n");
  assert.match(second.stderr, new RegExp(`^${CRASH_MARKER} deploy\\.recorded#2 pid \\d+$`, "m"));

  const other = run({ HOMEOSTAT_TEST_HOOKS: "1", HOMEOSTAT_CRASH_AT: "deploy.started" });
  assert.equal(other.status, 0, other.stderr);
});
