/**
 * The one-service fleet of the invariant monitor's tests: `api`, one replica on `port`, v1, with
 * the given `invariants:` lines (YAML under the service, indented four spaces) or none.
 */

import assert from "node:assert/strict";
import { parseFleet } from "../../src/spec/index.ts";
import type { FleetSpec } from "../../src/spec/model.ts";

export function apiFleet(port: number, invariants: string[] | null): FleetSpec {
  const block =
    invariants === null ? "" : `    invariants:\n${invariants.map((l) => `      ${l}\n`).join("")}`;
  const parsed = parseFleet(
    `version: 1
services:
  api:
    replicas: 1
    basePort: ${port}
    release: v1
${block}    releases:
      v1: { command: node }
`,
    "/tmp/fleet.yaml",
  );
  assert.ok(parsed.ok, parsed.ok ? "" : JSON.stringify(parsed));
  return parsed.fleet;
}
