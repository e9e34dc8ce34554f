import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fleetJsonSchema } from "../../src/spec/index.ts";

type Schema = {
  $schema?: string;
  type?: string;
  required?: string[];
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  propertyNames?: Schema;
  anyOf?: Schema[];
  items?: Schema;
  pattern?: string;
  description?: string;
};

describe("fleetJsonSchema", () => {
  const schema = JSON.parse(JSON.stringify(fleetJsonSchema())) as Schema;
  const service = schema.properties?.services?.additionalProperties as Schema;

  it("is a draft 2020-12 schema of a closed top-level mapping", () => {
    assert.equal(schema.$schema, "https://json-schema.org/draft/2020-12/schema");
    assert.deepEqual(schema.required, ["version", "services"]);
    assert.equal(schema.additionalProperties, false);
    assert.deepEqual(Object.keys(schema.properties ?? {}), [
      "version",
      "name",
      "hosts",
      "defaults",
      "datastores",
      "security",
      "failover",
      "dataPlane",
      "services",
    ]);
  });

  it("describes services with their required keys, closed, and constrains their names", () => {
    assert.deepEqual(service.required, ["replicas", "basePort", "release", "releases"]);
    assert.equal(service.additionalProperties, false);
    assert.equal(schema.properties?.services?.propertyNames?.pattern, "^[a-z][a-z0-9-]{0,39}$");
    assert.match(service.properties?.basePort?.description ?? "", /basePort \+ i/);
    assert.match(service.properties?.basePort?.description ?? "", /2 × replicas/);
  });

  it("describes every key of releases, deploys, SLOs, datastores and security", () => {
    const keys = (node: Schema | undefined) => Object.keys(node?.properties ?? {});
    const release = service.properties?.releases?.additionalProperties as Schema;
    assert.deepEqual(keys(release), [
      "command",
      "args",
      "env",
      "config",
      "cwd",
      "secrets",
      "requires",
      "provides",
      "migrations",
    ]);
    assert.deepEqual(keys(release.properties?.requires), ["schemas", "apis"]);
    assert.deepEqual(keys(release.properties?.provides), ["api"]);
    const migration = release.properties?.migrations?.items;
    assert.deepEqual(migration?.required, ["datastore", "from", "to", "reversible"]);
    const deployKeys = [
      "steps",
      "stepDuration",
      "stepDeadline",
      "soak",
      "keepStableWarm",
      "historyLimit",
      "analysis",
    ];
    for (const deploy of [service.properties?.deploy, schema.properties?.defaults?.properties?.deploy]) {
      assert.deepEqual(keys(deploy), deployKeys);
      assert.deepEqual(keys(deploy?.properties?.analysis), [
        "minRequests",
        "maxErrorRateIncrease",
        "maxP99Ratio",
        "minP99Increase",
      ]);
    }
    for (const slo of [service.properties?.slo, schema.properties?.defaults?.properties?.slo]) {
      assert.deepEqual(keys(slo), ["errorRate", "p99"]);
    }
    const datastore = schema.properties?.datastores?.additionalProperties as Schema;
    assert.deepEqual(keys(datastore), ["initialVersion", "versionCommand"]);
    assert.deepEqual(keys(schema.properties?.security), ["deniedReleases", "revokedSecrets"]);
  });

  it("describes capacity (per service and in defaults) and the top-level failover, closed", () => {
    const keys = (node: Schema | undefined) => Object.keys(node?.properties ?? {});
    for (const capacity of [
      service.properties?.capacity,
      schema.properties?.defaults?.properties?.capacity,
    ]) {
      assert.equal(capacity?.additionalProperties, false);
      assert.deepEqual(keys(capacity), ["rps", "concurrency", "targetUtilization", "maxReplicas"]);
      assert.match(capacity?.properties?.maxReplicas?.description ?? "", /2 × replicas/);
    }
    const failover = schema.properties?.failover;
    assert.equal(failover?.additionalProperties, false);
    assert.deepEqual(keys(failover), [
      "downShare",
      "degradedShare",
      "stepPercent",
      "stepInterval",
      "stabilization",
      "minInterval",
      "confirm",
      "automatic",
    ]);
  });

  it('accepts an error rate as a fraction or a percentage string like "1%"', () => {
    const errorRate = service.properties?.slo?.properties?.errorRate?.anyOf ?? [];
    assert.deepEqual(
      errorRate.map((option) => option.type),
      ["number", "string"],
    );
    const percent = new RegExp(errorRate[1]?.pattern ?? "^$");
    assert.ok(percent.test("1%") && percent.test("0.5%"));
    assert.ok(!percent.test("1") && !percent.test("one%"));
  });

  it("describes the traffic keys of a service and of defaults (weights only per service)", () => {
    const trafficKeys = [
      "localZone",
      "priorities",
      "overprovisioningFactor",
      "outlierDetection",
      "panic",
      "retries",
      "limits",
      "hedging",
      "stallDetection",
      "drainTimeout",
      "requestTimeout",
    ];
    const traffic = service.properties?.traffic;
    assert.equal(traffic?.additionalProperties, false);
    assert.deepEqual(Object.keys(traffic?.properties ?? {}), [...trafficKeys, "weights"]);
    const defaults = schema.properties?.defaults?.properties?.traffic;
    assert.deepEqual(Object.keys(defaults?.properties ?? {}), trafficKeys);
    const retries = traffic?.properties?.retries?.properties ?? {};
    assert.deepEqual(Object.keys(retries), ["attempts", "perTryTimeout", "backoff", "budget"]);
    const hedging = traffic?.properties?.hedging;
    assert.equal(hedging?.additionalProperties, false);
    assert.deepEqual(Object.keys(hedging?.properties ?? {}), [
      "enabled",
      "delay",
      "minDelay",
      "maxDelay",
      "maxPerRequest",
    ]);
    assert.deepEqual(Object.keys(traffic?.properties?.stallDetection?.properties ?? {}), [
      "enabled",
      "multiplier",
      "minTime",
    ]);
  });

  it("accepts durations as strings with a unit or integers", () => {
    const probes = service.properties?.probes;
    const liveness = probes?.properties?.liveness?.anyOf?.find((option) => option.type === "object");
    const interval = liveness?.properties?.interval?.anyOf ?? [];
    assert.deepEqual(
      interval.map((option) => option.type),
      ["string", "integer"],
    );
    assert.ok(new RegExp(interval[0]?.pattern ?? "^$").test("1.5s"));
    assert.ok(!new RegExp(interval[0]?.pattern ?? "^$").test("soon"));
  });
});
