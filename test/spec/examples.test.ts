import assert from "node:assert/strict";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { satisfies } from "semver";
import { type FleetSpec, formatSpecError, loadFleetFile } from "../../src/spec/index.ts";

const examples = fileURLToPath(new URL("../../examples/", import.meta.url));

async function loadExample(name: string): Promise<FleetSpec> {
  const result = await loadFleetFile(path.join(examples, name, "fleet.yaml"));
  assert.ok(result.ok, result.ok ? "" : result.errors.map(formatSpecError).join("\n"));
  return result.fleet;
}

function service(fleet: FleetSpec, name: string) {
  const found = fleet.services.find((candidate) => candidate.name === name);
  assert.ok(found, `service ${name}`);
  return found;
}

describe("examples/shop/fleet.yaml", () => {
  it("loads with its name and absolute path", async () => {
    const fleet = await loadExample("shop");
    assert.equal(fleet.name, "shop");
    assert.equal(fleet.file, path.join(examples, "shop", "fleet.yaml"));
  });

  it("orders catalog before checkout, which depends on it", async () => {
    const fleet = await loadExample("shop");
    assert.deepEqual(
      fleet.services.map((s) => s.name),
      ["catalog", "checkout"],
    );
    assert.deepEqual(service(fleet, "checkout").dependsOn, ["catalog"]);
  });

  it("spreads each service across the three zones, one host each", async () => {
    const fleet = await loadExample("shop");
    for (const name of ["catalog", "checkout"]) {
      assert.deepEqual(service(fleet, name).placement, [
        { zone: "zone-a", host: "host-a" },
        { zone: "zone-b", host: "host-b" },
        { zone: "zone-c", host: "host-c" },
      ]);
    }
  });

  it("applies the default probes with durations in milliseconds", async () => {
    const { probes } = service(await loadExample("shop"), "catalog");
    assert.deepEqual(probes.startup, {
      check: { kind: "http", path: "/healthz", expectStatus: [200, 399] },
      intervalMs: 200,
      timeoutMs: 200,
      failureThreshold: 50,
      successThreshold: 1,
      initialDelayMs: 0,
    });
    assert.equal(probes.readiness?.intervalMs, 500);
    assert.equal(probes.readiness?.timeoutMs, 300);
    assert.equal(probes.readiness?.failureThreshold, 2);
    assert.deepEqual(probes.readiness?.check, { kind: "http", path: "/ready", expectStatus: [200, 399] });
    assert.equal(probes.liveness?.failureThreshold, 3);
  });

  it("merges the default restart settings over the built-in ones", async () => {
    const { restart } = service(await loadExample("shop"), "checkout");
    assert.deepEqual(restart, {
      policy: "always",
      backoff: { initialMs: 200, maxMs: 30_000, multiplier: 2, jitter: 0.2 },
      crashLoop: { failures: 5, windowMs: 60_000 },
      stopGracePeriodMs: 5_000,
      resetAfterMs: 10_000,
    });
  });

  it("prefers zone-a for both services' traffic, spilling to the other zones", async () => {
    const fleet = await loadExample("shop");
    for (const name of ["catalog", "checkout"]) {
      const { traffic } = service(fleet, name);
      assert.deepEqual(traffic.priorities, [["zone-a"], ["zone-b", "zone-c"]], name);
      assert.equal(traffic.weights, null);
      assert.equal(traffic.retries.maxAttempts, 3);
      assert.equal(traffic.requestTimeoutMs, 30_000);
    }
  });

  it("resolves releases with their version, env and working directory", async () => {
    const checkout = service(await loadExample("shop"), "checkout");
    assert.equal(checkout.release, "v1");
    assert.equal(checkout.replicas, 3);
    assert.equal(checkout.basePort, 17200);
    assert.equal(checkout.port, 7200);
    assert.deepEqual(Object.keys(checkout.releases).slice(0, 2), ["v1", "v2-crashy"]);
    for (const [version, release] of Object.entries(checkout.releases))
      assert.equal(release.version, version);
    const crashy = checkout.releases["v2-crashy"];
    assert.equal(crashy?.version, "v2-crashy");
    assert.equal(crashy?.command, "node");
    assert.equal(crashy?.env.FAULT_CRASH_AFTER_MS, "1500");
    assert.deepEqual(crashy?.config, { greeting: "checkout v2" });
    assert.equal(crashy?.cwd, path.join(examples, "shop"));
  });

  it("declares orders-db at schema 5 and the known-bad checkout v0 and db-password 3", async () => {
    const fleet = await loadExample("shop");
    assert.deepEqual(fleet.datastores, [{ name: "orders-db", initialVersion: 5 }]);
    assert.deepEqual(
      fleet.security.deniedReleases.map(({ service, version }) => [service, version]),
      [["checkout", "v0"]],
    );
    assert.deepEqual(
      fleet.security.revokedSecrets.map(({ name, version }) => [name, version]),
      [["db-password", "3"]],
    );
  });

  it("gives both services the short demo deploy and a 1 % / 500ms SLO", async () => {
    const fleet = await loadExample("shop");
    for (const name of ["catalog", "checkout"]) {
      const { deploy, slo } = service(fleet, name);
      assert.deepEqual(deploy.steps, [10, 50, 100], name);
      assert.equal(deploy.stepDurationMs, 10_000);
      assert.equal(deploy.stepDeadlineMs, 40_000);
      assert.equal(deploy.soakMs, 60_000);
      assert.deepEqual(slo, { errorRate: 0.01, p99Ms: 500 });
    }
  });

  it("records what each checkout release needs, serves and migrates", async () => {
    const fleet = await loadExample("shop");
    assert.deepEqual(service(fleet, "catalog").releases.v1?.provides, { api: "1.2.0" });
    const { releases } = service(fleet, "checkout");
    const record = (version: string) => {
      const release = releases[version];
      assert.ok(release, version);
      return { requires: release.requires, provides: release.provides, migrations: release.migrations };
    };
    assert.deepEqual(record("v1"), {
      requires: { schemas: { "orders-db": ">=5 <6" }, apis: { catalog: "^1" } },
      provides: { api: "1.4.0" },
      migrations: [],
    });
    assert.deepEqual(record("v2-errors"), record("v1"));
    assert.equal(releases["v2-errors"]?.env.FAULT_ERROR_RATE, "0.3");
    assert.deepEqual(record("v3-migrates"), {
      requires: { schemas: { "orders-db": ">=6" }, apis: { catalog: "^1" } },
      provides: { api: "1.5.0" },
      migrations: [{ datastore: "orders-db", from: 5, to: 6, reversible: false }],
    });
    assert.deepEqual(record("v4-needs-catalog-v2").requires.apis, { catalog: "^2" });
    assert.deepEqual(releases.v1?.secrets, [{ name: "db-password", version: "4" }]);
  });

  it("makes the demo refusals real: v1 cannot run on the schema v3 leaves, catalog v1 is not ^2", async () => {
    const fleet = await loadExample("shop");
    const { releases } = service(fleet, "checkout");
    const leftBehind = releases["v3-migrates"]?.migrations.at(-1)?.to;
    assert.equal(leftBehind, 6);
    assert.ok(!satisfies(`${leftBehind}.0.0`, releases.v1?.requires.schemas["orders-db"] ?? "*"));
    const catalogApi = service(fleet, "catalog").releases.v1?.provides.api ?? "";
    assert.ok(satisfies(catalogApi, releases.v1?.requires.apis.catalog ?? ""));
    assert.ok(!satisfies(catalogApi, releases["v4-needs-catalog-v2"]?.requires.apis.catalog ?? "*"));
  });

  it("keeps both port banks of each service apart from the other's", async () => {
    const fleet = await loadExample("shop");
    const [catalog, checkout] = [service(fleet, "catalog"), service(fleet, "checkout")];
    assert.ok(catalog.basePort + 2 * catalog.replicas <= checkout.basePort);
  });

  it("gives catalog and checkout their capacity, and the fleet the default failover", async () => {
    const fleet = await loadExample("shop");
    assert.deepEqual(service(fleet, "catalog").capacity, {
      rps: 300,
      concurrency: null,
      targetUtilization: 0.8,
      maxReplicas: 6,
    });
    assert.deepEqual(service(fleet, "checkout").capacity, {
      rps: 200,
      concurrency: null,
      targetUtilization: 0.8,
      maxReplicas: 6,
    });
    assert.equal(fleet.failover.automatic, false);
    assert.equal(fleet.failover.downShare, 0.5);
  });
});

describe("examples/any-command/fleet.yaml", () => {
  it("gives each zone a synthetic local host when the fleet declares none", async () => {
    const fleet = await loadExample("any-command");
    assert.equal(fleet.name, "any-command");
    assert.deepEqual(service(fleet, "static-files").placement, [
      { zone: "zone-a", host: "local-zone-a" },
      { zone: "zone-b", host: "local-zone-b" },
      { zone: "zone-c", host: "local-zone-c" },
    ]);
  });

  it("keeps only the probes it declares, with probe defaults filled in", async () => {
    const { probes } = service(await loadExample("any-command"), "static-files");
    assert.equal(probes.startup, undefined);
    assert.deepEqual(probes.liveness, {
      check: { kind: "tcp" },
      intervalMs: 1_000,
      timeoutMs: 500,
      failureThreshold: 3,
      successThreshold: 1,
      initialDelayMs: 0,
    });
    assert.equal(probes.readiness?.failureThreshold, 3);
    assert.deepEqual(probes.readiness?.check, { kind: "http", path: "/", expectStatus: [200, 399] });
  });

  it("runs any command with its arguments untouched and no env", async () => {
    const release = service(await loadExample("any-command"), "static-files").releases.py3;
    assert.equal(release?.command, "python3");
    assert.deepEqual(release?.args, ["-m", "http.server", "{port}", "--bind", "127.0.0.1"]);
    assert.deepEqual(release?.env, {});
    assert.deepEqual(release?.config, {});
  });
});
