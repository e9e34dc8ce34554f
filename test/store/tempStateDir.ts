import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";

/** A fresh temporary directory, removed when the test ends (pass or fail). */
export function tempStateDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "homeostat-store-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
