import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { diffValues } from "../../../src/decide/rollback/configDiff.ts";
import { driftCheck } from "../../../src/decide/rollback/driftCheck.ts";
import type { CheckResult } from "../../../src/decide/rollback/types.ts";
import { type RecordOptions, record } from "./fixtures.ts";

const noFacts = { servedApis: {}, schemas: {} };

function drift(
  then: Omit<RecordOptions, "at">,
  now: Omit<RecordOptions, "at">,
  facts = noFacts,
): CheckResult {
  return driftCheck(record("v1", { at: 0, ...then }), record("v2", { at: 10, ...now }), facts);
}

function byField(check: CheckResult): Record<string, CheckResult["findings"][number]> {
  return Object.fromEntries(check.findings.map((finding) => [finding.field, finding]));
}

describe("driftCheck", () => {
  it("is ok when the target's record matches today's", () => {
    const same = {
      env: { LOG_LEVEL: "info" },
      config: { pool: { size: 10 } },
      secrets: [{ name: "db-password", version: "3" }],
    };
    const check = drift(same, same);
    assert.equal(check.severity, "ok");
    assert.deepEqual(check.findings, []);
    assert.match(check.detail, /^v1's record matches what runs now \(v2\)/);
  });

  it("reports env keys added, removed and changed, with their values", () => {
    const check = drift(
      { env: { LOG_LEVEL: "info", OLD_FLAG: "1" } },
      { env: { LOG_LEVEL: "debug", NEW_FLAG: "on" } },
    );
    assert.equal(check.severity, "warning");
    const fields = byField(check);
    assert.deepEqual(Object.keys(fields).sort(), ["env.LOG_LEVEL", "env.NEW_FLAG", "env.OLD_FLAG"]);
    assert.deepEqual(fields["env.LOG_LEVEL"], {
      field: "env.LOG_LEVEL",
      expected: '"info"',
      actual: '"debug"',
      message: 'env.LOG_LEVEL: "debug" now, back to "info" with v1',
    });
    assert.equal(fields["env.NEW_FLAG"]!.message, 'env.NEW_FLAG: "on" now, unset with v1');
    assert.equal(fields["env.NEW_FLAG"]!.expected, "(absent)");
    assert.equal(fields["env.OLD_FLAG"]!.message, 'env.OLD_FLAG: unset now, back to "1" with v1');
  });

  it("diffs config by JSON path", () => {
    const check = drift(
      { config: { pool: { size: 10, idleMs: 500 }, hosts: ["a", "b"] } },
      { config: { pool: { size: 20, idleMs: 500 }, hosts: ["a"], "log level": "warn" } },
    );
    const fields = byField(check);
    assert.deepEqual(Object.keys(fields).sort(), [
      "config.hosts[1]",
      "config.pool.size",
      'config["log level"]',
    ]);
    assert.equal(fields["config.pool.size"]!.message, "config.pool.size: 20 now, back to 10 with v1");
    assert.equal(fields["config.hosts[1]"]!.message, 'config.hosts[1]: (absent) now, back to "b" with v1');
    assert.match(check.detail, /3 field\(s\) change back/);
  });

  it("reports secrets per name: version changed, only today, only in the target", () => {
    const check = drift(
      {
        secrets: [
          { name: "db-password", version: "5" },
          { name: "legacy-token", version: "1" },
        ],
      },
      {
        secrets: [
          { name: "db-password", version: "7" },
          { name: "api-key", version: "2" },
        ],
      },
    );
    const fields = byField(check);
    assert.deepEqual(fields["secrets.db-password"], {
      field: "secrets.db-password",
      expected: "5",
      actual: "7",
      message: "secret db-password: version 7 now, back to version 5 with v1",
    });
    assert.equal(
      fields["secrets.api-key"]!.message,
      "secret api-key (version 2) is used now; v1 does not get it",
    );
    assert.equal(
      fields["secrets.legacy-token"]!.message,
      "secret legacy-token is not used now; v1 gets its version 1 back",
    );
  });

  it("reports command, args and provided API changes", () => {
    const check = drift(
      { command: "/usr/bin/node", args: ["old.js"], provides: { api: "1.4.0" } },
      { command: "/usr/local/bin/node", args: ["new.js", "--fast"], provides: { api: "1.5.0" } },
    );
    const fields = byField(check);
    assert.equal(
      fields.command!.message,
      'command: "/usr/local/bin/node" now, back to "/usr/bin/node" with v1',
    );
    assert.equal(fields.args!.expected, '["old.js"]');
    assert.equal(fields.args!.actual, '["new.js","--fast"]');
    assert.equal(fields["provides.api"]!.message, 'provides.api: "1.5.0" now, back to "1.4.0" with v1');
  });

  it("reports requirement changes with what the dependency serves and the schema is now", () => {
    const check = drift(
      { requires: { apis: { catalog: "^2.1" }, schemas: { "orders-db": ">=5 <6" } } },
      { requires: { apis: { catalog: "^2.4", payments: "^1" }, schemas: { "orders-db": ">=6" } } },
      { servedApis: { catalog: "2.4.1" }, schemas: { "orders-db": 6 } },
    );
    const fields = byField(check);
    assert.equal(
      fields["requires.apis.catalog"]!.message,
      'requires.apis.catalog: "^2.4" now, back to "^2.1" with v1 (catalog serves 2.4.1 now)',
    );
    assert.equal(
      fields["requires.apis.payments"]!.message,
      'requires.apis.payments: "^1" now, not required by v1 (payments serves no declared API version now)',
    );
    assert.equal(
      fields["requires.schemas.orders-db"]!.message,
      'requires.schemas.orders-db: ">=6" now, back to ">=5 <6" with v1 (orders-db is at schema 6 now)',
    );
  });

  it("does not report a requirement both records share", () => {
    const same = { requires: { apis: { catalog: "^2" } } };
    assert.equal(drift(same, same, { servedApis: { catalog: "3.0.0" }, schemas: {} }).severity, "ok");
  });
});

describe("diffValues", () => {
  it("reports a change of shape once, at the path where it happens", () => {
    assert.deepEqual(diffValues({ pool: 5 }, { pool: { size: 5 } }, "config"), [
      { path: "config.pool", before: 5, after: { size: 5 } },
    ]);
  });

  it("treats null, absent and equal scalars precisely", () => {
    assert.deepEqual(diffValues({ a: null }, { a: null }, "c"), []);
    assert.deepEqual(diffValues({ a: null }, {}, "c"), [{ path: "c.a", before: null, after: undefined }]);
    assert.deepEqual(diffValues(undefined, undefined, "c"), []);
    assert.deepEqual(diffValues(1, "1", "c"), [{ path: "c", before: 1, after: "1" }]);
  });
});
