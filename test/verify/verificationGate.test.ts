/**
 * The verification gate and convergence, pure: each condition alone blocks `verified`, all
 * together pass; a release edited under the same version key is an old config.
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ReleaseSpec } from "../../src/spec/model.ts";
import { configHashOf, driftOf, launchFactsOf } from "../../src/verify/convergence.ts";
import { NO_INVARIANTS, uncheckedVerdict } from "../../src/verify/invariants.ts";
import { evaluateGate, type GateInput } from "../../src/verify/verificationGate.ts";

const release: ReleaseSpec = {
  version: "v1",
  command: "/usr/bin/node",
  args: ["server.js", "--port", "{port}"],
  env: { APP_VERSION: "v1", MODE: "a" },
  config: { pool: 4 },
  cwd: "/srv/app",
  secrets: [{ name: "db-password", version: "3" }],
  requires: { schemas: {}, apis: {} },
  provides: {},
  migrations: [],
};

const converged = (name: string) => ({ name, ready: true, state: "ready", drift: [] });

function input(overrides: Partial<GateInput> = {}): GateInput {
  return {
    service: "api",
    instances: [converged("api-0"), converged("api-1")],
    wanted: 2,
    slo: { errorRate: 0.01, p99Ms: 250 },
    window: { requests: 400, errors: 1, errorRate: 0.0025, p50Ms: 4, p99Ms: 40, rps: 40 },
    windowMs: 10_000,
    invariants: NO_INVARIANTS,
    ...overrides,
  };
}

describe("convergence", () => {
  it("the config hash ignores key order and changes with env, args, config and command", () => {
    const reordered: ReleaseSpec = { ...release, env: { MODE: "a", APP_VERSION: "v1" } };
    assert.equal(configHashOf(reordered), configHashOf(release));
    for (const changed of [
      { ...release, env: { ...release.env, MODE: "b" } },
      { ...release, args: [...release.args, "--verbose"] },
      { ...release, config: { pool: 8 } },
      { ...release, command: "/usr/local/bin/node" },
    ]) {
      assert.notEqual(configHashOf(changed), configHashOf(release));
    }
  });

  it("names an old config under the same version key, old secrets, another release, and unknown facts", () => {
    const desired = launchFactsOf({ ...release, env: { ...release.env, MODE: "b" } });
    const launched = launchFactsOf(release);
    assert.deepEqual(
      driftOf(launched, desired).map((d) => d.kind),
      ["config"],
    );
    const rotated = launchFactsOf({ ...release, secrets: [{ name: "db-password", version: "4" }] });
    assert.deepEqual(driftOf(launched, rotated), [
      { kind: "secrets", changed: [{ name: "db-password", launched: "3", desired: "4" }] },
    ]);
    assert.deepEqual(driftOf({ ...launched, release: "v0" }, launched), [
      { kind: "release", launched: "v0", desired: "v1" },
    ]);
    assert.deepEqual(driftOf(null, launched), [{ kind: "unknown" }]);
    assert.deepEqual(driftOf({ release: "v1", configHash: null, secretVersions: null }, launched), [
      { kind: "unknown" },
    ]);
    assert.deepEqual(driftOf(launched, launchFactsOf(release)), []);
  });
});

describe("verification gate", () => {
  it("passes when converged, within SLO and the invariants hold", () => {
    const verdict = evaluateGate(input());
    assert.equal(verdict.passed, true);
    assert.deepEqual(verdict.blocking, []);
    assert.match(verdict.slo.detail, /^SLO held: error rate 0\.25%, p99 40ms \(400 requests in 10s\)$/);
  });

  it("an instance on an old config alone blocks", () => {
    const drift = driftOf(launchFactsOf(release), launchFactsOf({ ...release, config: { pool: 8 } }));
    const verdict = evaluateGate(
      input({ instances: [converged("api-0"), { name: "api-1", ready: true, state: "ready", drift }] }),
    );
    assert.equal(verdict.passed, false);
    assert.equal(verdict.slo.ok && verdict.invariants.ok, true);
    assert.match(verdict.converged.detail, /api-1 on an old config of v1/);
  });

  it("an instance not ready, or missing, alone blocks", () => {
    const notReady = evaluateGate(
      input({
        instances: [converged("api-0"), { name: "api-1", ready: false, state: "starting", drift: [] }],
      }),
    );
    assert.equal(notReady.passed, false);
    assert.match(notReady.converged.detail, /api-1 not ready \(starting\)/);
    const missing = evaluateGate(input({ instances: [converged("api-0")] }));
    assert.equal(missing.passed, false);
    assert.match(missing.converged.detail, /1 of 2 instances exist/);
  });

  it("an SLO breach alone blocks: error rate or p99", () => {
    const errors = evaluateGate(
      input({ window: { requests: 100, errors: 5, errorRate: 0.05, p50Ms: 3, p99Ms: 30, rps: 10 } }),
    );
    assert.equal(errors.passed, false);
    assert.deepEqual(errors.blocking, ["SLO not held: error rate 5% > SLO 1% (100 requests in 10s)"]);
    const slow = evaluateGate(
      input({ window: { requests: 100, errors: 0, errorRate: 0, p50Ms: 3, p99Ms: 900, rps: 10 } }),
    );
    assert.equal(slow.passed, false);
    assert.match(slow.slo.detail, /p99 900ms > SLO 250ms/);
  });

  it("no traffic, or no front port, is not a breach: verified on readiness alone, and it says so", () => {
    const idle = evaluateGate(
      input({ window: { requests: 0, errors: 0, errorRate: null, p50Ms: null, p99Ms: null, rps: 0 } }),
    );
    assert.equal(idle.passed, true);
    assert.equal(idle.slo.detail, "no traffic seen in the last 10s: verified on readiness alone");
    const noPort = evaluateGate(input({ window: null }));
    assert.equal(noPort.passed, true);
    assert.match(noPort.slo.detail, /no front port/);
  });

  it("a broken invariant alone blocks, and so do invariants not checked yet", () => {
    const broken = evaluateGate(
      input({
        invariants: {
          ok: false,
          checked: true,
          lastCheckedAt: 1,
          broken: [
            {
              invariant: "protected-path:GET /admin",
              kind: "protected-path",
              instance: "api-1",
              detail: "GET /admin answered 200 without credentials on api-1 (expected 401 or 403)",
              since: 1,
            },
          ],
        },
      }),
    );
    assert.equal(broken.passed, false);
    assert.equal(broken.converged.ok && broken.slo.ok, true);
    assert.match(broken.invariants.detail, /^invariant broken: GET \/admin answered 200/);
    const unchecked = evaluateGate(input({ invariants: uncheckedVerdict() }));
    assert.equal(unchecked.passed, false);
    assert.match(unchecked.invariants.detail, /not checked yet/);
  });
});
