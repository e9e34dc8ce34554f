/**
 * Default probes (docs/fleet-spec.md#default-probes): a service whose fleet file declares no probe
 * gets TCP probes when it takes its port, none (its process) otherwise; anything declared, even
 * `off`, is taken as it is. And the startup budget the controller reports a slow start against.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { fleetOrThrow, parseFleet } from "../../src/spec/loadFleet.ts";
import { DEFAULT_TCP_PROBES, startupBudgetMs } from "../../src/spec/probes.ts";

function service(yaml: string, defaults = "") {
  const fleet = fleetOrThrow(
    parseFleet(
      `version: 1
name: t
${defaults}services:
  s:
    replicas: 1
    basePort: 20000
    release: v1
${yaml}`,
      "/tmp/t/fleet.yaml",
    ),
  );
  return fleet.services[0]!;
}

test("a release that passes {port} gets TCP startup, readiness and liveness probes on the instance port, marked as defaults", () => {
  const s = service(`    releases:
      v1: { command: python3, args: [-m, http.server, "{port}"] }
`);
  assert.equal(s.probeDefaults, "tcp");
  assert.deepEqual(s.probes, DEFAULT_TCP_PROBES);
  assert.equal(s.probes.readiness?.check.kind, "tcp");
  assert.deepEqual(s.probes.readiness?.check, { kind: "tcp" }, "on the instance's own port");
});

test("a front port alone is enough to take the port (the data plane sends traffic there)", () => {
  const s = service(`    port: 20100
    releases:
      v1: { command: ./server }
`);
  assert.equal(s.probeDefaults, "tcp");
});

test("a service that takes no port is judged by its process alone", () => {
  const s = service(`    releases:
      v1: { command: ./worker, env: { QUEUE: jobs } }
`);
  assert.equal(s.probeDefaults, "process");
  assert.deepEqual(s.probes, {});
  assert.equal(startupBudgetMs(s.probes), null);
});

test("a declared probe, in the service or in defaults, even off, means no defaults", () => {
  const own = service(`    releases:
      v1: { command: python3, args: ["{port}"] }
    probes:
      liveness: off
`);
  assert.equal(own.probeDefaults, undefined);
  assert.deepEqual(own.probes, {});
  const inherited = service(
    `    releases:
      v1: { command: python3, args: ["{port}"] }
`,
    "defaults:\n  probes:\n    readiness: { http: { path: /ready } }\n",
  );
  assert.equal(inherited.probeDefaults, undefined);
  assert.equal(inherited.probes.readiness?.check.kind, "http");
  assert.equal(inherited.probes.startup, undefined);
});

test("the startup budget adds the startup and readiness probes' thresholds", () => {
  // 500 ms × 120 + 500 ms, then 1 s × 3 + 1 s.
  assert.equal(startupBudgetMs(DEFAULT_TCP_PROBES), 60_500 + 4_000);
  const readinessOnly = { readiness: { ...DEFAULT_TCP_PROBES.readiness, initialDelayMs: 2_000 } };
  assert.equal(startupBudgetMs(readinessOnly), 2_000 + 3_000 + 1_000);
});
