import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { downMigrationsNeeded, migrationCheck } from "../../../src/decide/rollback/migrationCheck.ts";
import type { AppliedMigration, CheckResult } from "../../../src/decide/rollback/types.ts";
import type { MigrationSpec } from "../../../src/spec/model.ts";
import {
  applied,
  contextOf,
  type RecordOptions,
  record,
  type World,
  type WorldOptions,
  world,
} from "./fixtures.ts";

const m = (from: number, to: number, reversible: boolean, datastore = "orders-db"): MigrationSpec => ({
  datastore,
  from,
  to,
  reversible,
});

/** v1 deployed at 0 (the target), v3-migrates at 10 (running). */
function scene(
  migrations: AppliedMigration[],
  options: Omit<WorldOptions, "history" | "appliedMigrations"> & { v1?: Omit<RecordOptions, "at"> } = {},
): World {
  const { v1, ...rest } = options;
  return world({
    history: [
      record("v1", { at: 0, status: "proven", ...v1 }),
      record("v3-migrates", { at: 10, status: "active" }),
    ],
    appliedMigrations: migrations,
    ...rest,
  });
}

function check(w: World): CheckResult {
  return migrationCheck(contextOf(w), w.history[0]!);
}

describe("migrationCheck", () => {
  it("is ok when no migration ran since the target was deployed", () => {
    const result = check(scene([applied("v0", -5, m(4, 5, false))], { schemas: { "orders-db": 5 } }));
    assert.equal(result.severity, "ok");
    assert.deepEqual(result.findings, []);
    assert.equal(result.detail, "no schema migration ran since v1 was deployed");
  });

  it("blocks on an irreversible migration since the target", () => {
    const result = check(
      scene([applied("v3-migrates", 10, m(5, 6, false))], { schemas: { "orders-db": 6 } }),
    );
    assert.equal(result.severity, "blocking");
    assert.equal(
      result.findings[0]!.message,
      "orders-db 5→6 by v3-migrates is irreversible: v1 cannot run on schema 6",
    );
    assert.deepEqual(
      {
        field: result.findings[0]!.field,
        expected: result.findings[0]!.expected,
        actual: result.findings[0]!.actual,
      },
      { field: "migrations.orders-db", expected: "5", actual: "6" },
    );
  });

  it("warns on reversible migrations, listing the down-migrations newest first", () => {
    const w = scene([applied("v3-migrates", 10, m(5, 6, true)), applied("v3-migrates", 11, m(6, 7, true))], {
      schemas: { "orders-db": 7 },
    });
    const result = check(w);
    assert.equal(result.severity, "warning");
    assert.deepEqual(
      result.findings.map((finding) => finding.message),
      [
        "would need the down-migration of orders-db 7→6 (applied by checkout v3-migrates) first; Homeostat does not run it",
        "would need the down-migration of orders-db 6→5 (applied by checkout v3-migrates) first; Homeostat does not run it",
      ],
    );
    assert.equal(
      result.detail,
      "rolling back to v1 needs these down-migrations first, in this order: orders-db 7→6, orders-db 6→5; Homeostat does not run them",
    );
    assert.deepEqual(
      downMigrationsNeeded(contextOf(w), w.history[0]!).map((a) => `${a.migration.to}→${a.migration.from}`),
      ["7→6", "6→5"],
    );
  });

  it("needs no down-migration when an irreversible one is in the way (none could help)", () => {
    const w = scene([applied("v3-migrates", 10, m(5, 6, true)), applied("v3-migrates", 11, m(6, 7, false))], {
      schemas: { "orders-db": 7 },
    });
    assert.equal(check(w).severity, "blocking");
    assert.deepEqual(downMigrationsNeeded(contextOf(w), w.history[0]!), []);
  });

  it("ignores the target's own migrations, even when recorded after its deploy time", () => {
    const result = check(scene([applied("v1", 1, m(4, 5, false))], { schemas: { "orders-db": 5 } }));
    assert.equal(result.severity, "ok");
    assert.deepEqual(result.findings, []);
  });

  it("counts a migration by a later release even if its clock said earlier", () => {
    const result = check(
      scene([applied("v3-migrates", -1, m(5, 6, false))], { schemas: { "orders-db": 6 } }),
    );
    assert.equal(result.severity, "blocking");
  });

  it("counts a clock-skewed migration by the running release even when its record is not in the history", () => {
    const w = scene([applied("v3-migrates", -1, m(5, 6, false))], { schemas: { "orders-db": 6 } });
    const withoutCurrent = { ...w, history: [w.history[0]!] };
    assert.equal(check(withoutCurrent).severity, "blocking");
  });

  it("ignores other services' migrations on datastores checkout does not use", () => {
    const result = check(
      scene([applied("v9", 12, m(1, 2, false, "billing-db"), "billing")], { schemas: { "billing-db": 2 } }),
    );
    assert.equal(result.severity, "ok");
    assert.deepEqual(result.findings, []);
  });

  it("counts other services' migrations on a datastore the target requires", () => {
    const result = check(
      scene([applied("v9", 12, m(1, 2, false, "shared-db"), "billing")], {
        schemas: { "shared-db": 2 },
        v1: { requires: { schemas: { "shared-db": "^1" } } },
      }),
    );
    assert.equal(result.severity, "blocking");
    assert.equal(
      result.findings[0]!.message,
      "shared-db 1→2 by v9 is irreversible: v1 cannot run on schema 2",
    );
  });

  it("lets a target that declares it runs on the live schema through an irreversible migration", () => {
    const result = check(
      scene([applied("v3-migrates", 10, m(5, 6, false))], {
        schemas: { "orders-db": 6 },
        v1: { requires: { schemas: { "orders-db": ">=5 <7" } } },
      }),
    );
    assert.equal(result.severity, "ok");
    assert.equal(
      result.findings[0]!.message,
      "orders-db changed since v1 (5→6 by v3-migrates), but v1 declares it runs on schema >=5 <7 and orders-db is at schema 6",
    );
  });

  it("does not let a declared range that excludes the live schema through", () => {
    const result = check(
      scene([applied("v3-migrates", 10, m(5, 6, false))], {
        schemas: { "orders-db": 6 },
        v1: { requires: { schemas: { "orders-db": ">=5 <6" } } },
      }),
    );
    assert.equal(result.severity, "blocking");
  });

  it("is ok once the datastore is back where the target left it", () => {
    const result = check(scene([applied("v3-migrates", 10, m(5, 6, true))], { schemas: { "orders-db": 5 } }));
    assert.equal(result.severity, "ok");
    assert.match(result.findings[0]!.message, /orders-db is back at schema 5, where v1 left it$/);
  });
});
