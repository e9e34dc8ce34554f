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
      "services",
    ]);
  });

  it("describes services with their required keys, closed, and constrains their names", () => {
    assert.deepEqual(service.required, ["replicas", "basePort", "release", "releases"]);
    assert.equal(service.additionalProperties, false);
    assert.equal(schema.properties?.services?.propertyNames?.pattern, "^[a-z][a-z0-9-]{0,39}$");
    assert.match(service.properties?.basePort?.description ?? "", /basePort \+ i/);
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
