import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { rollForwardRelease } from "../../../src/decide/rollback/alternatives.ts";
import { planRollback } from "../../../src/decide/rollback/planRollback.ts";
import type { RollbackPlan } from "../../../src/decide/rollback/types.ts";
import { applied, record, SERVICE, type World, world } from "./fixtures.ts";

function plan(w: World, to?: string): RollbackPlan {
  return planRollback(to === undefined ? w : { ...w, to });
}

const denied = (version: string) => ({ service: SERVICE, version, reason: `${version} is a bad build` });
const oldSecret = { name: "db-password", version: "5" };
const newSecret = { name: "db-password", version: "7" };

describe("rollback alternatives", () => {
  it("offers an older proven release whose own checks pass", () => {
    const w = world({
      history: [
        record("v0", { at: 0, status: "proven" }),
        record("v1", { at: 10, status: "proven" }),
        record("v2", { at: 20, status: "active" }),
      ],
      security: { deniedReleases: [denied("v1")] },
    });
    const p = plan(w);
    assert.equal(p.to, "v1");
    assert.equal(p.decision, "refuse");
    const alternative = p.alternative!;
    assert.equal(alternative.kind, "older-proven");
    assert.equal(alternative.version, "v0");
    assert.equal(alternative.baseVersion, "v0");
    assert.match(alternative.description, /^go to v0 instead: .*, older than v1; every check passes$/);
    assert.ok(alternative.checks.every((check) => check.severity !== "blocking"));
    assert.equal(alternative.checks.length, 5);
  });

  it("may offer a proven release newer than the requested target, and says so", () => {
    const w = world({
      history: [
        record("v1", { at: 0, status: "proven" }),
        record("v2", { at: 10, status: "proven", env: { MODE: "x" } }),
        record("v3", { at: 20, status: "active" }),
      ],
      security: { deniedReleases: [denied("v1")] },
    });
    const alternative = plan(w, "v1").alternative!;
    assert.equal(alternative.kind, "older-proven");
    assert.equal(alternative.version, "v2");
    assert.match(
      alternative.description,
      /newer than v1; no check blocks it, but mind the warnings \(drift\)$/,
    );
  });

  it("skips proven releases that are blocked themselves", () => {
    const w = world({
      history: [
        record("v0", { at: 0, status: "proven", secrets: [oldSecret] }),
        record("v1", { at: 10, status: "proven", secrets: [oldSecret] }),
        record("v2", { at: 20, status: "active", secrets: [newSecret] }),
      ],
      security: { revokedSecrets: [{ ...oldSecret, reason: "leaked" }] },
    });
    assert.equal(plan(w).alternative?.kind, "roll-forward");
  });

  it("rolls forward when no proven release is safe: the target's code with today's config", () => {
    const w = world({
      history: [
        record("v1", {
          at: 0,
          status: "proven",
          args: ["server-v1.js"],
          env: { POOL: "5" },
          secrets: [oldSecret],
          config: { pool: 5 },
        }),
        record("v2", {
          at: 10,
          status: "active",
          args: ["server-v2.js"],
          env: { POOL: "20" },
          secrets: [newSecret],
          config: { pool: 20 },
        }),
      ],
      security: { revokedSecrets: [{ ...oldSecret, reason: "rotated after a leak" }] },
    });
    const p = plan(w);
    assert.equal(p.decision, "refuse");
    const alternative = p.alternative!;
    assert.equal(alternative.kind, "roll-forward");
    assert.equal(alternative.version, "v1+config-v2");
    assert.equal(alternative.baseVersion, "v1");
    assert.match(
      alternative.description,
      /^roll forward instead: deploy v1\+config-v2, a new release with the code of v1 .*today's env \(1 variable\(s\)\), config and secrets \(db-password@7\) from v2; nothing in today's config goes back$/,
    );
    const bySeverity = Object.fromEntries(alternative.checks.map((check) => [check.name, check.severity]));
    assert.deepEqual(bySeverity, {
      evidence: "warning",
      drift: "warning",
      compatibility: "ok",
      migrations: "ok",
      security: "ok",
    });
    // Only the artifact goes back: args, nothing of the env, config or secrets.
    const drift = alternative.checks.find((check) => check.name === "drift")!;
    assert.deepEqual(
      drift.findings.map((finding) => finding.field),
      ["args"],
    );
    assert.match(alternative.checks[0]!.detail, /never proven as a whole: its code is v1's/);
  });

  it("builds the roll-forward release from the artifact and today's settings", () => {
    const base = record("v1", {
      at: 0,
      args: ["a.js"],
      env: { A: "1" },
      secrets: [oldSecret],
      requires: { apis: { catalog: "^2" } },
      provides: { api: "1.4.0" },
      migrations: [{ datastore: "orders-db", from: 4, to: 5, reversible: true }],
    }).spec;
    const today = record("v2", {
      at: 10,
      args: ["b.js"],
      env: { A: "2" },
      secrets: [newSecret],
      config: { nested: { x: 1 } },
      requires: { apis: { catalog: "^3" } },
      provides: { api: "1.5.0" },
    }).spec;
    const release = rollForwardRelease(base, today);
    assert.deepEqual(release, {
      version: "v1+config-v2",
      command: base.command,
      args: ["a.js"],
      cwd: base.cwd,
      env: { A: "2" },
      config: { nested: { x: 1 } },
      secrets: [newSecret],
      requires: { schemas: {}, apis: { catalog: "^2" } },
      provides: { api: "1.4.0" },
      migrations: [],
    });
    assert.notEqual(release.config, today.config, "today's config is copied, not shared");
  });

  it("returns a roll-forward that is unsafe too, with its failing checks and a description that says so", () => {
    const w = world({
      history: [
        record("v1", { at: 0, status: "proven", requires: { schemas: { "orders-db": ">=5 <6" } } }),
        record("v2", { at: 10, status: "active", requires: { schemas: { "orders-db": ">=6" } } }),
      ],
      appliedMigrations: [applied("v2", 10, { datastore: "orders-db", from: 5, to: 6, reversible: false })],
      schemas: { "orders-db": 6 },
    });
    const p = plan(w);
    assert.equal(p.decision, "refuse");
    const alternative = p.alternative!;
    assert.equal(alternative.kind, "roll-forward");
    const blocking = alternative.checks
      .filter((check) => check.severity === "blocking")
      .map((check) => check.name);
    assert.deepEqual(blocking, ["compatibility", "migrations"]);
    assert.match(alternative.description, /It is not safe either \(compatibility: .*orders-db schema >=5 <6/);
    assert.match(alternative.description, /; migrations: v1 cannot run on the schemas as they are now/);
  });

  it("bases the roll-forward on the newest proven release, not on an unproven target", () => {
    const w = world({
      history: [
        record("v1", { at: 0, status: "proven", args: ["v1.js"] }),
        record("v2", { at: 10, status: "superseded", args: ["v2.js"] }),
        record("v3", { at: 20, status: "active", args: ["v3.js"] }),
      ],
      security: { deniedReleases: [denied("v1"), denied("v2")] },
    });
    const alternative = plan(w, "v2").alternative!;
    assert.equal(alternative.kind, "roll-forward");
    assert.equal(alternative.baseVersion, "v1");
    // The deny list follows the artifact into the roll-forward.
    assert.equal(alternative.checks.find((check) => check.name === "security")!.severity, "blocking");
  });

  it("bases the roll-forward on the target when no release was ever proven", () => {
    const w = world({
      history: [
        record("v1", { at: 0, status: "superseded", secrets: [oldSecret] }),
        record("v2", { at: 10, status: "active" }),
      ],
      security: { revokedSecrets: [{ ...oldSecret, reason: "leaked" }] },
    });
    const alternative = plan(w).alternative!;
    assert.equal(alternative.kind, "roll-forward");
    assert.equal(alternative.version, "v1+config-v2");
    assert.equal(
      alternative.checks.some((check) => check.severity === "blocking"),
      false,
    );
  });
});
