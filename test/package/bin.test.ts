/**
 * bin/homeostat.js picks what to run: the TypeScript in src/ in a clone (a dist/ left there by
 * `npm pack` is never used, so an edit always takes effect), the JavaScript in dist/ in the
 * installed package (Node does not strip types under node_modules), and says so clearly when the
 * package was packed without its build. Each layout here is a copy of the real bin beside stub
 * entry points that say which one ran.
 */

import assert from "node:assert/strict";
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { BIN } from "../helpers/e2e.ts";
import { run } from "../helpers/run.ts";

const root = mkdtempSync(join(tmpdir(), "homeostat-bin-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** A package folder at `dir` with the real bin and stub entries for `layouts`. */
function layout(dir: string, entries: ("src" | "dist")[]): string {
  mkdirSync(join(dir, "bin"), { recursive: true });
  cpSync(BIN, join(dir, "bin", "homeostat.js"));
  writeFileSync(join(dir, "package.json"), '{ "type": "module" }\n');
  for (const entry of entries) {
    const file = entry === "src" ? "src/cli/main.ts" : "dist/cli/main.js";
    mkdirSync(join(dir, file, ".."), { recursive: true });
    writeFileSync(
      join(dir, file),
      `export async function main(argv, io) { io.out("ran ${entry} " + argv.join(" ")); return 0; }\n`,
    );
  }
  return join(dir, "bin", "homeostat.js");
}

async function homeostat(bin: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return await run(process.execPath, [bin, "status", "--json"], { cwd: root });
}

test("in a clone the source runs, even beside a dist/ that npm pack left", async () => {
  const result = await homeostat(layout(join(root, "clone"), ["src", "dist"]));
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, "ran src status --json\n");
});

test("the installed package runs dist/, never TypeScript under node_modules", async () => {
  const result = await homeostat(layout(join(root, "project", "node_modules", "homeostat"), ["src", "dist"]));
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, "ran dist status --json\n");
  const packed = await homeostat(layout(join(root, "packed"), ["dist"]));
  assert.equal(packed.stdout, "ran dist status --json\n");
});

test("a package without its build says what is missing and exits 2", async () => {
  const result = await homeostat(layout(join(root, "unbuilt", "node_modules", "homeostat"), []));
  assert.equal(result.code, 2);
  assert.match(result.stderr, /dist\/cli\/main\.js is missing: .*npm run build/);
});
