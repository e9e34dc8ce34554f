/**
 * runController itself, not only `homeostat up`, refuses to serve the API beyond loopback over
 * plain HTTP: a token would cross the network in clear. Refused before anything starts (no state
 * database, no lock, no listener).
 */

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { runController } from "../../src/controller/runController.ts";
import { HomeostatError } from "../../src/errors.ts";
import { makeFleet } from "../helpers/fleetFixture.ts";

test("a non-loopback bind without TLS is refused before anything starts", async (t) => {
  const root = mkdtempSync(join(tmpdir(), "homeostat-bind-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const stateDir = join(root, "state");
  for (const bind of ["0.0.0.0", "::", "10.1.2.3", "::ffff:10.1.2.3"]) {
    await assert.rejects(
      runController({ fleet: makeFleet({ services: [] }), stateDir, apiPort: 0, bind }),
      (error: unknown) =>
        error instanceof HomeostatError &&
        error.code === "HS_USAGE" &&
        error.message.includes(`--bind ${bind}`) &&
        /--tls-cert FILE and --tls-key FILE/.test(error.message),
      bind,
    );
  }
  assert.ok(!existsSync(stateDir) || readdirSync(stateDir).length === 0, "nothing was created");
});
