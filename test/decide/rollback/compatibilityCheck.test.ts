import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compatibilityCheck } from "../../../src/decide/rollback/compatibilityCheck.ts";
import type { CheckResult } from "../../../src/decide/rollback/types.ts";
import { applied, contextOf, type RecordOptions, record, type WorldOptions, world } from "./fixtures.ts";

/** The compatibility of v1 (deployed at 0) while v2 (deployed at 10) runs. */
function compatibility(
  target: Omit<RecordOptions, "at">,
  options: Omit<WorldOptions, "history"> = {},
): CheckResult {
  const v1 = record("v1", { at: 0, status: "proven", ...target });
  const w = world({ history: [v1, record("v2", { at: 10, status: "active" })], ...options });
  return compatibilityCheck(contextOf(w), v1.spec, "v1");
}

describe("compatibilityCheck: schemas", () => {
  it("is ok when the live schema is within the target's range", () => {
    const check = compatibility(
      { requires: { schemas: { "orders-db": ">=5 <7" } } },
      { schemas: { "orders-db": 6 } },
    );
    assert.equal(check.severity, "ok");
    assert.equal(check.findings[0]!.message, "orders-db is at schema 6, within v1's >=5 <7");
  });

  it("blocks when the live schema is outside the range, naming both sides", () => {
    const check = compatibility(
      { requires: { schemas: { "orders-db": ">=5 <6" } } },
      { schemas: { "orders-db": 6 } },
    );
    assert.equal(check.severity, "blocking");
    assert.deepEqual(check.findings[0], {
      field: "requires.schemas.orders-db",
      expected: ">=5 <6",
      actual: "6",
      message: "v1 requires orders-db schema >=5 <6; orders-db is at schema 6",
    });
    assert.match(check.detail, /^v1 does not fit the world as it is now: v1 requires orders-db schema/);
  });

  it("blocks when nothing tells the datastore's schema", () => {
    const check = compatibility({ requires: { schemas: { "orders-db": "^5" } } });
    assert.equal(check.severity, "blocking");
    assert.equal(
      check.findings[0]!.message,
      "unknown: orders-db has no known schema version; v1 requires ^5",
    );
  });

  it("falls back to the last applied migration, then to the declared initial version", () => {
    const fromMigration = compatibility(
      { requires: { schemas: { "orders-db": "^5" } } },
      {
        appliedMigrations: [applied("v0", -10, { datastore: "orders-db", from: 4, to: 5, reversible: true })],
      },
    );
    assert.equal(fromMigration.severity, "ok");
    assert.match(
      fromMigration.findings[0]!.message,
      /schema 5 \(from the last migration applied; no live reading\)/,
    );
    const fromSpec = compatibility(
      { requires: { schemas: { "orders-db": "^5" } } },
      { datastores: [{ name: "orders-db", initialVersion: 4 }] },
    );
    assert.equal(fromSpec.severity, "blocking");
    assert.match(fromSpec.findings[0]!.message, /schema 4 \(its declared initial version; no live reading\)/);
  });

  it("blocks on a range it cannot read rather than guessing", () => {
    const check = compatibility(
      { requires: { schemas: { "orders-db": "five-ish" } } },
      { schemas: { "orders-db": 5 } },
    );
    assert.equal(check.severity, "blocking");
    assert.match(check.findings[0]!.message, /cannot be judged: "five-ish" is not a semver range/);
  });
});

describe("compatibilityCheck: dependencies", () => {
  it("is ok when each dependency serves an API within the range", () => {
    const check = compatibility(
      { requires: { apis: { catalog: "^2" } } },
      { servedApis: { catalog: "2.7.0" } },
    );
    assert.equal(check.severity, "ok");
    assert.equal(check.detail, "all 1 requirement(s) around v1 hold today");
  });

  it("blocks when a dependency moved past the target's range", () => {
    const check = compatibility(
      { requires: { apis: { catalog: "^2" } } },
      { servedApis: { catalog: "3.0.0" } },
    );
    assert.equal(check.severity, "blocking");
    assert.deepEqual(check.findings[0], {
      field: "requires.apis.catalog",
      expected: "^2",
      actual: "3.0.0",
      message: "v1 requires catalog API ^2; catalog serves 3.0.0 now",
    });
  });

  it("blocks when the dependency serves no declared API version", () => {
    const check = compatibility(
      { requires: { apis: { catalog: "^2" } } },
      { servedApis: { catalog: undefined } },
    );
    assert.equal(check.severity, "blocking");
    assert.equal(
      check.findings[0]!.message,
      "unknown: catalog serves no declared API version; v1 requires ^2",
    );
  });

  it("reads a loosely written served version as semver", () => {
    const check = compatibility({ requires: { apis: { catalog: "^2" } } }, { servedApis: { catalog: "2" } });
    assert.equal(check.severity, "ok");
  });
});

describe("compatibilityCheck: dependents", () => {
  const orders = { service: "orders", version: "v7", requires: "^1.5" };

  it("blocks when a dependent needs more than the target provides", () => {
    const check = compatibility({ provides: { api: "1.4.0" } }, { dependents: [orders] });
    assert.equal(check.severity, "blocking");
    assert.deepEqual(check.findings[0], {
      field: "dependents.orders",
      expected: "^1.5",
      actual: "1.4.0",
      message: "orders v7 requires checkout API ^1.5; v1 provides 1.4.0, so orders would break",
    });
  });

  it("is ok when the target provides what every dependent needs", () => {
    const check = compatibility({ provides: { api: "1.6.2" } }, { dependents: [orders] });
    assert.equal(check.severity, "ok");
  });

  it("blocks when the target declares no API but something depends on it", () => {
    const check = compatibility({}, { dependents: [orders] });
    assert.equal(check.severity, "blocking");
    assert.equal(
      check.findings[0]!.message,
      "unknown: v1 serves no declared API version; orders v7 requires checkout API ^1.5",
    );
  });

  it("is ok, and says so, when there is nothing to check", () => {
    const check = compatibility({});
    assert.equal(check.severity, "ok");
    assert.deepEqual(check.findings, []);
    assert.equal(
      check.detail,
      "v1 declares no schema or API requirements and no running service requires its API",
    );
  });

  it("lists every failure, blocking ones first", () => {
    const check = compatibility(
      { requires: { apis: { catalog: "^2", payments: "^1" } }, provides: { api: "1.4.0" } },
      { servedApis: { catalog: "3.1.0", payments: "1.2.0" }, dependents: [orders] },
    );
    assert.equal(check.severity, "blocking");
    assert.deepEqual(
      check.findings.map((finding) => finding.field),
      ["requires.apis.catalog", "dependents.orders", "requires.apis.payments"],
    );
  });
});
