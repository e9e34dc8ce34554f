import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { planRollback } from "../../../src/decide/rollback/planRollback.ts";
import type { RollbackPlan } from "../../../src/decide/rollback/types.ts";
import { HomeostatError } from "../../../src/errors.ts";
import { applied, record, SERVICE, type World, world } from "./fixtures.ts";

function plan(w: World, to?: string): RollbackPlan {
  return planRollback(to === undefined ? w : { ...w, to });
}

function severities(p: RollbackPlan): Record<string, string> {
  return Object.fromEntries(p.checks.map((check) => [check.name, check.severity]));
}

const secret = { name: "db-password", version: "5" };

describe("planRollback: target choice", () => {
  it("without `to`, takes the newest proven release other than the running one", () => {
    const w = world({
      history: [
        record("v1", { at: 0, status: "proven" }),
        record("v2", { at: 10, status: "proven" }),
        record("v3", { at: 20, status: "superseded" }),
        record("v4", { at: 30, status: "active" }),
      ],
    });
    const p = plan(w);
    assert.equal(p.from, "v4");
    assert.equal(p.to, "v2");
    assert.equal(p.decision, "rollback");
  });

  it("without `to` and nothing proven, takes the newest other release and warns it was never proven", () => {
    const w = world({
      history: [
        record("v1", { at: 0, status: "superseded" }),
        record("v2", { at: 10, status: "superseded" }),
        record("v3", { at: 20, status: "active" }),
      ],
    });
    const p = plan(w);
    assert.equal(p.to, "v2");
    assert.equal(p.decision, "rollback-with-warnings");
    assert.equal(severities(p).evidence, "warning");
  });

  it("orders by deploy time, not by position in the list", () => {
    const w = world({
      history: [
        record("v3", { at: 20, status: "active" }),
        record("v2", { at: 10, status: "proven" }),
        record("v1", { at: 0, status: "proven" }),
      ],
    });
    assert.equal(plan(w).to, "v2");
  });

  it("with `to`, takes that release even when a newer proven one exists", () => {
    const w = world({
      history: [
        record("v1", { at: 0, status: "proven" }),
        record("v2", { at: 10, status: "proven" }),
        record("v3", { at: 20, status: "active" }),
      ],
    });
    const p = plan(w, "v1");
    assert.equal(p.to, "v1");
    assert.equal(p.decision, "rollback");
  });

  it("refuses a `to` that is not in the history, and says which releases there are", () => {
    const w = world({
      history: [record("v1", { at: 0, status: "proven" }), record("v2", { at: 10, status: "active" })],
    });
    const p = plan(w, "v9");
    assert.equal(p.decision, "refuse");
    assert.equal(p.to, "v9");
    assert.equal(p.checks.length, 1);
    assert.equal(p.checks[0]!.severity, "blocking");
    assert.equal(p.checks[0]!.detail, "checkout has no release v9 in its history (its other releases: v1)");
    assert.deepEqual(p.steps, []);
    assert.equal(p.expectedDurationMs, 0);
    // v1 is proven and safe: offered instead of the unknown version.
    assert.equal(p.alternative?.kind, "older-proven");
    assert.equal(p.alternative?.version, "v1");
  });

  it("refuses a `to` declared in the fleet file but never deployed", () => {
    const w = world({
      history: [record("v1", { at: 0, status: "proven" }), record("v2", { at: 10, status: "active" })],
      service: { versions: ["v1", "v2", "v5"] },
    });
    const p = plan(w, "v5");
    assert.equal(p.decision, "refuse");
    assert.match(p.checks[0]!.detail, /v5 is declared in the fleet file but was never deployed/);
  });

  it("refuses a `to` naming the running release", () => {
    const w = world({
      history: [record("v1", { at: 0, status: "proven" }), record("v2", { at: 10, status: "active" })],
    });
    const p = plan(w, "v2");
    assert.equal(p.decision, "refuse");
    assert.equal(p.checks[0]!.detail, "checkout v2 is what runs now: there is nothing to roll back to");
  });

  it("refuses with no alternative when there is no other release at all", () => {
    const w = world({ history: [record("v1", { at: 0, status: "proven" })] });
    const p = plan(w);
    assert.equal(p.decision, "refuse");
    assert.equal(p.from, "v1");
    assert.equal(p.to, "");
    assert.equal(
      p.checks[0]!.detail,
      "checkout has no release to roll back to: v1 is the only one in its history",
    );
    assert.equal(p.alternative, undefined);
  });

  it("ignores records of other services", () => {
    const w = world({
      history: [
        record("v1", { at: 0, status: "proven" }),
        record("v9", { at: 5, status: "proven", service: "orders" }),
        record("v2", { at: 10, status: "active" }),
      ],
    });
    assert.equal(plan(w).to, "v1");
  });
});

describe("planRollback: decisions", () => {
  it("rolls back when every check is ok, with ordered steps and an estimated duration", () => {
    const w = world({
      history: [record("v1", { at: 0, status: "proven" }), record("v2", { at: 10, status: "active" })],
      service: { replicas: 3, port: 7200 },
    });
    const p = plan(w);
    assert.equal(p.decision, "rollback");
    assert.equal(p.alternative, undefined);
    assert.deepEqual(
      p.checks.map((check) => [check.name, check.severity]),
      [
        ["evidence", "ok"],
        ["drift", "ok"],
        ["compatibility", "ok"],
        ["migrations", "ok"],
        ["security", "ok"],
      ],
    );
    assert.deepEqual(p.steps, [
      "start 3 instances of v1 in the idle bank, beside the v2 instances",
      "wait for them to be ready (readiness probe, about 1 s)",
      "move 100 % of the traffic on port 7200 to v1",
      "stop the v2 instances (in-flight requests drain for up to 10 s, then SIGTERM, SIGKILL after 5 s)",
      "record v2 as rolled back and v1 as the running release",
    ]);
    // Readiness 1 s × successThreshold 1, no startup probe, + drain 10 s.
    assert.equal(p.expectedDurationMs, 11_000);
  });

  it("estimates startup × 3 + readiness × successThreshold + drain", () => {
    const probe = { timeoutMs: 100, failureThreshold: 3, initialDelayMs: 0 };
    const w = world({
      history: [record("v1", { at: 0, status: "proven" }), record("v2", { at: 10, status: "active" })],
      service: {
        probes: {
          startup: {
            ...probe,
            check: { kind: "tcp" },
            intervalMs: 200,
            successThreshold: 1,
            initialDelayMs: 100,
          },
          readiness: { ...probe, check: { kind: "tcp" }, intervalMs: 500, successThreshold: 2 },
        },
        traffic: { drainTimeoutMs: 4_000 },
      },
    });
    const p = plan(w);
    assert.equal(p.expectedDurationMs, 100 + 200 * 3 + 500 * 2 + 4_000);
    assert.equal(
      p.steps.some((step) => step.startsWith("move")),
      false,
      "no data-plane port: no traffic to move",
    );
  });

  it("rolls back with warnings on drift alone, and says which fields go back", () => {
    const w = world({
      history: [
        record("v1", { at: 0, status: "proven", env: { LOG_LEVEL: "info" } }),
        record("v2", { at: 10, status: "active", env: { LOG_LEVEL: "debug" } }),
      ],
    });
    const p = plan(w);
    assert.equal(p.decision, "rollback-with-warnings");
    assert.deepEqual(severities(p), {
      evidence: "ok",
      drift: "warning",
      compatibility: "ok",
      migrations: "ok",
      security: "ok",
    });
    assert.match(p.checks[1]!.detail, /1 field\(s\) change back \(env\.LOG_LEVEL\)/);
    assert.ok(p.steps.length > 0);
    assert.ok(p.expectedDurationMs > 0);
  });

  it("puts the down-migrations first in the steps when reversible migrations ran since", () => {
    const w = world({
      history: [record("v1", { at: 0, status: "proven" }), record("v2", { at: 10, status: "active" })],
      appliedMigrations: [applied("v2", 10, { datastore: "orders-db", from: 5, to: 6, reversible: true })],
      schemas: { "orders-db": 6 },
    });
    const p = plan(w);
    assert.equal(p.decision, "rollback-with-warnings");
    assert.equal(
      p.steps[0],
      "run the down-migrations yourself, in this order: orders-db 6→5 (Homeostat does not run them)",
    );
  });

  it("refuses when the target is incompatible with the world, with no steps", () => {
    const w = world({
      history: [
        record("v1", { at: 0, status: "proven", requires: { apis: { catalog: "^2" } } }),
        record("v2", { at: 10, status: "active", requires: { apis: { catalog: "^3" } } }),
      ],
      servedApis: { catalog: "3.0.0" },
    });
    const p = plan(w);
    assert.equal(p.decision, "refuse");
    assert.equal(severities(p).compatibility, "blocking");
    assert.deepEqual(p.steps, []);
    assert.equal(p.expectedDurationMs, 0);
  });

  it("refuses a target that failed here", () => {
    const w = world({
      history: [
        record("v1", { at: 0, status: "proven" }),
        record("v2", { at: 10, status: "failed" }),
        record("v3", { at: 20, status: "active" }),
      ],
    });
    const p = plan(w, "v2");
    assert.equal(p.decision, "refuse");
    assert.equal(severities(p).evidence, "blocking");
  });

  it("refuses a target whose secret was revoked, even when everything else is fine", () => {
    const w = world({
      history: [
        record("v1", { at: 0, status: "proven", secrets: [secret] }),
        record("v2", { at: 10, status: "active", secrets: [secret] }),
      ],
      security: { revokedSecrets: [{ ...secret, reason: "leaked" }] },
    });
    const p = plan(w);
    assert.equal(p.decision, "refuse");
    assert.deepEqual(severities(p), {
      evidence: "ok",
      drift: "ok",
      compatibility: "ok",
      migrations: "ok",
      security: "blocking",
    });
    assert.match(p.checks[4]!.detail, /a rollback never restores a revoked secret/);
  });

  it("refuses a release on the deny list, whether the live list or the fleet file denies it", () => {
    const history = [record("v1", { at: 0, status: "proven" }), record("v2", { at: 10, status: "active" })];
    const denied = { service: SERVICE, version: "v1", reason: "ships CVE-2025-1234" };
    for (const w of [
      world({ history, security: { deniedReleases: [denied] } }),
      world({ history, fleetSecurity: { deniedReleases: [denied] } }),
    ]) {
      const p = plan(w);
      assert.equal(p.decision, "refuse");
      assert.equal(severities(p).security, "blocking");
      assert.match(p.checks[4]!.detail, /checkout v1 is on the deny list: ships CVE-2025-1234/);
    }
  });

  it("is pure: the same input gives the same plan, and the input is left untouched", () => {
    const w = world({
      history: [
        record("v1", { at: 0, status: "proven", env: { A: "1" }, secrets: [secret] }),
        record("v2", { at: 10, status: "active", env: { A: "2" } }),
      ],
      security: { deniedReleases: [{ service: SERVICE, version: "v1", reason: "bad" }] },
    });
    const before = structuredClone(w);
    const first = plan(w);
    assert.deepEqual(plan(w), first);
    assert.deepEqual(w, before);
  });

  it("rejects a current record that belongs to another service", () => {
    const w = world({
      history: [record("v1", { at: 0, status: "proven" }), record("v2", { at: 10, status: "active" })],
    });
    const foreign = { ...w, facts: { ...w.facts, current: { ...w.facts.current, service: "orders" } } };
    assert.throws(
      () => planRollback(foreign),
      (error: unknown) => error instanceof HomeostatError && error.code === "HS_INTERNAL",
    );
  });
});
