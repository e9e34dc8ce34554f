import assert from "node:assert/strict";
import { globSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Ajv2020, type ErrorObject } from "ajv/dist/2020.js";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { fleetJsonSchema, parseFleet } from "../../src/spec/index.ts";
import { demoFleetYaml, REPO } from "../helpers/e2e.ts";

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
      "brakes",
      "dataPlane",
      "notifications",
      "services",
      "stores",
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
      "policyHash",
    ]);
    assert.deepEqual(keys(release.properties?.requires), ["schemas", "apis"]);
    for (const invariants of [
      service.properties?.invariants,
      schema.properties?.defaults?.properties?.invariants,
    ]) {
      assert.deepEqual(keys(invariants), ["protectedPaths", "policyHash", "interval", "timeout"]);
      assert.deepEqual(keys(invariants?.properties?.protectedPaths?.items), ["path", "method", "expect"]);
    }
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
      "engine",
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

/** A fleet as the YAML parser gives it: plain JSON data. */
type FleetData = Record<string, unknown> & { services: Record<string, Record<string, unknown>> };

/**
 * The exported schema, checked by a real JSON Schema validator: every real fleet the project
 * ships or runs must pass it, and fleets broken in ways a schema can see must fail it (at the
 * place that is broken) — and the fleet parser must agree with the schema on both.
 */
describe("fleetJsonSchema validates real fleets (ajv, draft 2020-12)", () => {
  // strict: an unknown keyword or a malformed schema is an error here, not silently ignored.
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  const validate = ajv.compile(fleetJsonSchema());
  const errorsOf = (data: unknown) => (validate(data) ? [] : [...(validate.errors ?? [])]);
  const show = (errors: ErrorObject[]) =>
    errors.map((e) => `${e.instancePath || "/"} ${e.message ?? e.keyword}`).join("; ");

  const exampleFiles = globSync("examples/**/fleet.yaml", { cwd: REPO }).sort();
  const port = 20_000;
  const demoFleets: Record<string, string> = {
    "demo: one service (recovery, controllerCrash)": demoFleetYaml({
      services: [{ name: "api", replicas: 3, basePort: port }],
    }),
    "demo: front port, traffic block, a second release (dataPlane)": demoFleetYaml({
      services: [
        {
          name: "api",
          replicas: 3,
          basePort: port,
          port: port + 10,
          traffic: "      localZone: zone-a\n      drainTimeout: 10s\n      retries: { perTryTimeout: 10s }",
          releases: { v2: {} },
        },
      ],
    }),
    "demo: env faults and a custom restart block (recovery)": demoFleetYaml({
      services: [{ name: "flaky", replicas: 1, basePort: port, env: { FAULT_CRASH_AFTER_MS: "150" } }],
      restart:
        "    backoff: { initial: 300ms, max: 4s, multiplier: 2, jitter: 0 }\n    crashLoop: { failures: 4, window: 60s }\n    stopGracePeriod: 1s",
    }),
    "demo: two services with a dependency": demoFleetYaml({
      name: "two",
      services: [
        { name: "db", replicas: 1, basePort: port },
        { name: "web", replicas: 2, basePort: port + 10, port: port + 20, dependsOn: ["db"] },
      ],
    }),
  };

  it("finds the example fleets", () => {
    assert.deepEqual(exampleFiles, ["examples/any-command/fleet.yaml", "examples/shop/fleet.yaml"]);
  });

  for (const file of exampleFiles) {
    it(`accepts ${file}, which the fleet parser accepts too`, () => {
      const text = readFileSync(join(REPO, file), "utf8");
      const errors = errorsOf(parseYaml(text));
      assert.deepEqual(errors, [], `${file}: ${show(errors)}`);
      const parsed = parseFleet(text, file);
      assert.ok(parsed.ok, `${file}: the parser rejects it`);
    });
  }

  for (const [what, text] of Object.entries(demoFleets)) {
    it(`accepts the e2e ${what}, which the fleet parser accepts too`, () => {
      const errors = errorsOf(parseYaml(text));
      assert.deepEqual(errors, [], show(errors));
      assert.ok(parseFleet(text, "demo.yaml").ok, `${what}: the parser rejects it`);
    });
  }

  const shop = (): FleetData =>
    parseYaml(readFileSync(join(REPO, "examples/shop/fleet.yaml"), "utf8")) as FleetData;
  const catalog = (fleet: FleetData) => fleet.services.catalog as Record<string, unknown>;
  /** Broken copies of the shop fleet: what is wrong, and where the schema must say so. */
  const invalid: { what: string; at: string; keyword: string; breakIt: (fleet: FleetData) => void }[] = [
    {
      what: "an unknown top-level key",
      at: "",
      keyword: "additionalProperties",
      breakIt: (f) => {
        f.colour = "red";
      },
    },
    {
      what: "no services",
      at: "",
      keyword: "required",
      breakIt: (f) => {
        delete (f as Partial<FleetData>).services;
      },
    },
    {
      what: "an unsupported version",
      at: "/version",
      keyword: "const",
      breakIt: (f) => {
        f.version = 2;
      },
    },
    {
      what: "a service name with capitals and an underscore",
      at: "/services",
      keyword: "pattern",
      breakIt: (f) => {
        f.services.Bad_Name = f.services.catalog!;
        delete f.services.catalog;
      },
    },
    {
      what: "replicas as a word",
      at: "/services/catalog/replicas",
      keyword: "type",
      breakIt: (f) => {
        catalog(f).replicas = "three";
      },
    },
    {
      what: "an unknown service key",
      at: "/services/catalog",
      keyword: "additionalProperties",
      breakIt: (f) => {
        catalog(f).replica = 3;
      },
    },
    {
      what: "a release without its required keys",
      at: "/services/catalog/releases/v1",
      keyword: "required",
      breakIt: (f) => {
        (catalog(f).releases as Record<string, unknown>).v1 = {};
      },
    },
    {
      what: "a duration with no unit it knows",
      at: "/defaults/probes/liveness",
      keyword: "pattern",
      breakIt: (f) => {
        const probes = (f.defaults as { probes: { liveness: Record<string, unknown> } }).probes;
        probes.liveness.interval = "soon";
      },
    },
    {
      what: "an error rate that is neither a fraction nor a percentage",
      at: "/defaults/slo/errorRate",
      keyword: "pattern",
      breakIt: (f) => {
        (f.defaults as { slo: Record<string, unknown> }).slo.errorRate = "one%";
      },
    },
    {
      what: "a port out of range",
      at: "/services/catalog/port",
      keyword: "maximum",
      breakIt: (f) => {
        catalog(f).port = 70_000;
      },
    },
  ];

  it("the untouched shop fleet passes (so each rejection below is the break's doing)", () => {
    assert.deepEqual(errorsOf(shop()), []);
  });

  for (const { what, at, keyword, breakIt } of invalid) {
    it(`rejects ${what} at ${at || "the top level"}, as the parser does`, () => {
      const fleet = shop();
      breakIt(fleet);
      const errors = errorsOf(fleet);
      assert.ok(errors.length > 0, `${what}: the schema accepted it`);
      assert.ok(
        errors.some((e) => e.instancePath.startsWith(at) && e.keyword === keyword),
        `${what}: expected a ${keyword} error at ${at || "/"}, got ${show(errors)}`,
      );
      assert.equal(
        parseFleet(stringifyYaml(fleet), "broken.yaml").ok,
        false,
        `${what}: the parser accepted it`,
      );
    });
  }
});
