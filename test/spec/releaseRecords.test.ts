import assert from "node:assert/strict";
import path from "node:path";
import { describe, it } from "node:test";
import { type FleetSpec, formatSpecError, type LoadResult, parseFleet } from "../../src/spec/index.ts";

const FILE = "/srv/fleets/shop/fleet.yaml";

/** `top` lines go at the top level; `catalog` and `checkout` lines under those services' `v1` release. */
function fleet(options: {
  top?: string[];
  catalog?: string[];
  checkout?: string[];
  checkoutService?: string[];
}) {
  const release = (lines: string[] | undefined) => (lines ?? []).map((line) => `        ${line}`);
  return `${[
    "version: 1",
    ...(options.top ?? []),
    "services:",
    "  catalog:",
    "    replicas: 1",
    "    basePort: 18000",
    "    release: v1",
    "    releases:",
    "      v1:",
    "        command: node",
    ...release(options.catalog),
    "  checkout:",
    "    replicas: 1",
    "    basePort: 18010",
    ...(options.checkoutService ?? ["    dependsOn: [catalog]"]),
    "    release: v1",
    "    releases:",
    "      v1:",
    "        command: node",
    ...release(options.checkout),
  ].join("\n")}\n`;
}

function ok(result: LoadResult): FleetSpec {
  assert.ok(result.ok, result.ok ? "" : result.errors.map(formatSpecError).join("\n"));
  return result.fleet;
}

function checkoutV1(text: string) {
  const release = ok(parseFleet(text, FILE)).services.find((s) => s.name === "checkout")?.releases.v1;
  assert.ok(release);
  return release;
}

/** Every error as `line:col path: message`. */
function errors(text: string): string[] {
  const result = parseFleet(text, FILE);
  assert.equal(result.ok, false, "expected the fleet to be rejected");
  return result.ok ? [] : result.errors.map((e) => `${e.line}:${e.col} ${e.path}: ${e.message}`);
}

const ORDERS_DB = ["datastores:", "  orders-db: { initialVersion: 5 }"];

describe("release records", () => {
  it("default to no secrets, no requirements, nothing provided and no migrations", () => {
    const release = checkoutV1(fleet({}));
    assert.deepEqual(release.secrets, []);
    assert.deepEqual(release.requires, { schemas: {}, apis: {} });
    assert.deepEqual(release.provides, {});
    assert.deepEqual(release.migrations, []);
  });

  it("resolve secrets, requirements, the provided API and migrations, versions as strings", () => {
    const release = checkoutV1(
      fleet({
        top: ORDERS_DB,
        checkout: [
          "secrets: [{ name: db-password, version: 4 }, { name: api-key, version: 2024-06 }]",
          "requires:",
          '  schemas: { orders-db: ">=6 <8" }',
          '  apis: { catalog: "^1.2" }',
          "provides: { api: 2.3.0 }",
          "migrations:",
          "  - { datastore: orders-db, from: 5, to: 6, reversible: true }",
          "  - { datastore: orders-db, from: 6, to: 7, reversible: false }",
        ],
      }),
    );
    assert.deepEqual(release.secrets, [
      { name: "db-password", version: "4" },
      { name: "api-key", version: "2024-06" },
    ]);
    assert.deepEqual(release.requires, { schemas: { "orders-db": ">=6 <8" }, apis: { catalog: "^1.2" } });
    assert.deepEqual(release.provides, { api: "2.3.0" });
    assert.deepEqual(release.migrations, [
      { datastore: "orders-db", from: 5, to: 6, reversible: true },
      { datastore: "orders-db", from: 6, to: 7, reversible: false },
    ]);
  });

  it("read an integer range as that major version, stored as a string", () => {
    const release = checkoutV1(
      fleet({ top: ORDERS_DB, checkout: ["requires: { schemas: { orders-db: 5 } }"] }),
    );
    assert.deepEqual(release.requires.schemas, { "orders-db": "5" });
  });

  it("judge a migration by the highest version it leaves, against the release's own range", () => {
    const text = fleet({
      top: ORDERS_DB,
      checkout: [
        'requires: { schemas: { orders-db: ">=7" } }',
        "migrations:",
        "  - { datastore: orders-db, from: 5, to: 6, reversible: true }",
        "  - { datastore: orders-db, from: 6, to: 7, reversible: true }",
      ],
    });
    assert.equal(checkoutV1(text).migrations.length, 2);
  });

  it("reject requirements on undeclared datastores and APIs of non-dependencies", () => {
    assert.deepEqual(errors(fleet({ checkout: ['requires: { schemas: { orders-db: ">=5" } }'] })), [
      '18:32 services.checkout.releases.v1.requires.schemas.orders-db: unknown datastore "orders-db" (the fleet declares no datastores: add it under the top-level datastores)',
    ]);
    assert.deepEqual(
      errors(
        fleet({ checkoutService: [], checkout: ['requires: { apis: { catalog: "^1", checkout: "^1" } }'] }),
      ),
      [
        "17:29 services.checkout.releases.v1.requires.apis.catalog: requires an API of catalog but does not depend on it: add catalog to the dependsOn of checkout (an API is checked against the running release of a dependency)",
        "17:44 services.checkout.releases.v1.requires.apis.checkout: requires an API of checkout but does not depend on it: add checkout to the dependsOn of checkout (an API is checked against the running release of a dependency)",
      ],
    );
    assert.deepEqual(errors(fleet({ checkout: ['requires: { apis: { catalgo: "^1" } }'] })), [
      '18:29 services.checkout.releases.v1.requires.apis.catalgo: unknown service "catalgo" (did you mean "catalog"?)',
    ]);
  });

  it("reject malformed ranges, API versions, secrets and migrations", () => {
    const found = errors(
      fleet({
        top: ORDERS_DB,
        checkout: [
          "secrets: [{ name: db-password, version: 1.5 }, { name: db-password }]",
          'requires: { schemas: { orders-db: "five" }, apis: { catalog: "" } }',
          "provides: { api: 2.3 }",
          "migrations:",
          "  - { datastore: orders-db, from: 7, to: 6, reversible: true }",
          "  - { datastore: orders-db, from: 6, to: 7 }",
          "  - { datastore: orders-db, from: -1, to: 1.5, reversible: true }",
        ],
      }),
    );
    assert.deepEqual(found, [
      '20:49 services.checkout.releases.v1.secrets[0].version: expected a version string, e.g. "3", got 1.5 (quote it: "1.5")',
      '20:56 services.checkout.releases.v1.secrets[1]: missing required key "version"',
      '21:43 services.checkout.releases.v1.requires.schemas.orders-db: expected a semver range like ">=5 <7" or "^2", got "five"',
      '21:70 services.checkout.releases.v1.requires.apis.catalog: expected a semver range like ">=5 <7" or "^2", got ""',
      '22:26 services.checkout.releases.v1.provides.api: expected a semver version like "2.3.0", got 2.3',
      "24:50 services.checkout.releases.v1.migrations[0].to: migration goes from 7 to 6: to must be above from (migrations only go forward; a rollback is a new migration)",
      '25:13 services.checkout.releases.v1.migrations[1]: missing required key "reversible"',
      "26:43 services.checkout.releases.v1.migrations[2].from: expected a schema version (an integer ≥ 0), got -1",
      "26:51 services.checkout.releases.v1.migrations[2].to: expected a schema version (an integer ≥ 0), got 1.5",
    ]);
  });

  it("still judge requirements when another part of the file is invalid", () => {
    const text = fleet({
      top: ["datastores:", "  orders-db: { initialVersion: -1 }"],
      checkoutService: ["    replicas: two", "    dependsOn: [catalog]"],
      checkout: [
        'requires: { schemas: { orders-db: ">=5", users-db: ">=1" }, apis: { catalog: "^1" } }',
        "migrations: [{ datastore: users-db, from: 1, to: 2, reversible: true }]",
      ],
    }).replace("    replicas: 1\n    basePort: 18010", "    basePort: 18010");
    assert.deepEqual(
      errors(text).map((line) => line.split(": ").slice(0, 2).join(": ")),
      [
        "3:32 datastores.orders-db.initialVersion: expected a schema version (an integer ≥ 0), got -1",
        '14:15 services.checkout.replicas: expected a positive integer, got "two"',
        '20:50 services.checkout.releases.v1.requires.schemas.users-db: unknown datastore "users-db" (datastores',
        '21:35 services.checkout.releases.v1.migrations[0].datastore: unknown datastore "users-db" (datastores',
      ],
    );
  });

  it("do not blame a requirement on a dependency list that is itself invalid", () => {
    const text = fleet({
      checkoutService: ["    dependsOn: catalog"],
      checkout: ['requires: { apis: { catalog: "^1" } }'],
    });
    assert.deepEqual(errors(text), [
      '13:16 services.checkout.dependsOn: expected a list of service names, got "catalog"',
    ]);
  });
});

describe("datastores", () => {
  it("resolve in file order with an initial version of 0 and a version command run in the fleet's directory", () => {
    const { datastores } = ok(
      parseFleet(
        fleet({
          top: [
            "datastores:",
            "  orders-db:",
            "    initialVersion: 5",
            "    versionCommand: { command: sh, args: [-c, cat schema-version] }",
            "  users-db:",
            "    versionCommand: { command: ./schema-version, cwd: ../db }",
            "  audit-db: {}",
          ],
        }),
        FILE,
      ),
    );
    assert.deepEqual(datastores, [
      {
        name: "orders-db",
        initialVersion: 5,
        versionCommand: { command: "sh", args: ["-c", "cat schema-version"], cwd: path.dirname(FILE) },
      },
      {
        name: "users-db",
        initialVersion: 0,
        versionCommand: { command: "./schema-version", args: [], cwd: "/srv/fleets/db" },
      },
      { name: "audit-db", initialVersion: 0 },
    ]);
  });

  it("default to none", () => {
    assert.deepEqual(ok(parseFleet(fleet({}), FILE)).datastores, []);
  });

  it("reject bad names, versions and commands", () => {
    assert.deepEqual(
      errors(
        fleet({
          top: [
            "datastores:",
            "  Orders: {}",
            "  orders-db: { initialVersion: 5.5, versionCommand: { args: [-c] } }",
          ],
        }),
      ),
      [
        '3:3 datastores.Orders: invalid name "Orders": use lowercase letters, digits and "-", starting with a letter, at most 40 characters',
        "4:32 datastores.orders-db.initialVersion: expected a schema version (an integer ≥ 0), got 5.5",
        '4:53 datastores.orders-db.versionCommand: missing required key "command"',
      ],
    );
  });
});

describe("security", () => {
  it("defaults to nothing denied or revoked", () => {
    assert.deepEqual(ok(parseFleet(fleet({}), FILE)).security, { deniedReleases: [], revokedSecrets: [] });
  });

  it("resolves denied releases (versions not in the file allowed) and revoked secrets, versions as strings", () => {
    const { security } = ok(
      parseFleet(
        fleet({
          top: [
            "security:",
            '  deniedReleases: [{ service: checkout, version: v0, reason: "CVE-2026-1234" }]',
            "  revokedSecrets: [{ name: db-password, version: 3, reason: leaked }]",
          ],
        }),
        FILE,
      ),
    );
    assert.deepEqual(security, {
      deniedReleases: [{ service: "checkout", version: "v0", reason: "CVE-2026-1234" }],
      revokedSecrets: [{ name: "db-password", version: "3", reason: "leaked" }],
    });
  });

  it("rejects unknown services, missing reasons and unknown keys", () => {
    assert.deepEqual(
      errors(
        fleet({
          top: [
            "security:",
            "  deniedReleases:",
            "    - { service: chekout, version: v0, reason: CVE }",
            "    - { service: checkout, version: v1 }",
            '    - { service: catalog, version: 1.0, reason: "" }',
            "  revokedSecret: []",
          ],
        }),
      ),
      [
        '4:18 security.deniedReleases[0].service: unknown service "chekout" (did you mean "checkout"?)',
        '5:7 security.deniedReleases[1]: missing required key "reason"',
        '6:36 security.deniedReleases[2].version: expected a release version, got 1 (quote it: "1")',
        '6:49 security.deniedReleases[2].reason: expected a non-empty reason, got ""',
        '7:3 security.revokedSecret: unknown key "revokedSecret" (did you mean "revokedSecrets"?)',
      ],
    );
  });
});
