import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type FleetSpec,
  formatSpecError,
  type LoadResult,
  parseFleet,
  type ServiceSpec,
} from "../../src/spec/index.ts";
import { makeTraffic } from "../helpers/fleetFixture.ts";

const HOSTS = [
  "hosts:",
  "  host-a: { zone: zone-a }",
  "  host-b: { zone: zone-b }",
  "  host-c: { zone: zone-c }",
];

/** A fleet over three zones; `services` are YAML lines under `services:`. */
function fleet(options: { defaults?: string[]; services: string[] }): string {
  const defaults =
    options.defaults === undefined ? [] : ["defaults:", ...options.defaults.map((l) => `  ${l}`)];
  return `${["version: 1", ...HOSTS, ...defaults, "services:", ...options.services].join("\n")}\n`;
}

/** A service with a front port; `extra` lines go under it (indented by 4). */
function service(
  name: string,
  basePort: number,
  extra: string[] = [],
  port: number | null = basePort - 10_000,
) {
  return [
    `  ${name}:`,
    "    replicas: 3",
    `    basePort: ${basePort}`,
    ...(port === null ? [] : [`    port: ${port}`]),
    "    release: v1",
    "    releases:",
    "      v1: { command: node }",
    "      v2: { command: node }",
    ...extra.map((line) => `    ${line}`),
  ];
}

function ok(result: LoadResult): FleetSpec {
  assert.ok(result.ok, result.ok ? "" : result.errors.map(formatSpecError).join("\n"));
  return result.fleet;
}

function resolved(text: string, name = "api"): ServiceSpec {
  const found = ok(parseFleet(text, "fleet.yaml")).services.find((s) => s.name === name);
  assert.ok(found, name);
  return found;
}

function messages(text: string): string[] {
  const result = parseFleet(text, "fleet.yaml");
  assert.equal(result.ok, false, "expected the fleet to be rejected");
  return result.ok ? [] : result.errors.map(formatSpecError);
}

describe("traffic settings", () => {
  it("defaults to one priority with every placement zone, and the built-in values", () => {
    const api = resolved(fleet({ services: service("api", 18000) }));
    assert.deepEqual(api.traffic, makeTraffic({ priorities: [["zone-a", "zone-b", "zone-c"]] }));
    assert.equal(api.traffic.weights, null);
    assert.equal(api.traffic.retries.maxAttempts, 3);
    assert.equal(api.traffic.outlier.maxEjectionMs, 300_000);
  });

  it("reads localZone as [[localZone], the other zones in placement order]", () => {
    const api = resolved(
      fleet({
        services: service("api", 18000, [
          "placement: { zones: [zone-c, zone-a, zone-b] }",
          "traffic: { localZone: zone-a }",
        ]),
      }),
    );
    assert.deepEqual(api.traffic.priorities, [["zone-a"], ["zone-c", "zone-b"]]);
    const inOrder = resolved(fleet({ services: service("api", 18000, ["traffic: { localZone: zone-a }"]) }));
    assert.deepEqual(inOrder.traffic.priorities, [["zone-a"], ["zone-b", "zone-c"]]);
  });

  it("appends the zones priorities leave out as one last priority", () => {
    const partial = resolved(
      fleet({ services: service("api", 18000, ["traffic: { priorities: [[zone-b]] }"]) }),
    );
    assert.deepEqual(partial.traffic.priorities, [["zone-b"], ["zone-a", "zone-c"]]);
    const full = resolved(
      fleet({ services: service("api", 18000, ["traffic: { priorities: [[zone-c, zone-b], [zone-a]] }"]) }),
    );
    assert.deepEqual(full.traffic.priorities, [["zone-c", "zone-b"], ["zone-a"]]);
  });

  it("resolves every field, durations in milliseconds", () => {
    const api = resolved(
      fleet({
        services: service("api", 18000, [
          "traffic:",
          "  engine: haproxy",
          "  overprovisioningFactor: 1.2",
          "  outlierDetection: { consecutiveFailures: 3, baseEjectionTime: 1.5s, maxEjectionTime: 1m, maxEjectionPercent: 30 }",
          "  panic: { threshold: 40, mode: fail-closed }",
          "  retries:",
          "    attempts: 2",
          "    perTryTimeout: 750",
          "    backoff: { initial: 10ms, max: 100ms }",
          "    budget: { ratio: 0.1, window: 20s, minPerSecond: 0 }",
          "  limits: { maxConcurrentPerInstance: 8, adaptive: false, queueSize: 0, queueTimeout: 0 }",
          "  hedging: { enabled: false, delay: 40ms, minDelay: 5ms, maxDelay: 500ms, maxPerRequest: 2 }",
          "  stallDetection: { enabled: false, multiplier: 3, minTime: 100ms }",
          "  drainTimeout: 3s",
          "  requestTimeout: 5s",
          "  weights: { v1: 75, v2: 25 }",
        ]),
      }),
    );
    assert.deepEqual(api.traffic, {
      engine: "haproxy",
      priorities: [["zone-a", "zone-b", "zone-c"]],
      overprovisioningFactor: 1.2,
      outlier: {
        consecutiveFailures: 3,
        baseEjectionMs: 1_500,
        maxEjectionMs: 60_000,
        maxEjectionPercent: 30,
      },
      panic: { thresholdPercent: 40, mode: "fail-closed" },
      retries: {
        maxAttempts: 2,
        perTryTimeoutMs: 750,
        backoff: { initialMs: 10, maxMs: 100 },
        budget: { ratio: 0.1, windowMs: 20_000, minPerSecond: 0 },
      },
      limits: { maxConcurrentPerInstance: 8, adaptive: false, queueSize: 0, queueTimeoutMs: 0 },
      hedging: { enabled: false, delayMs: 40, minDelayMs: 5, maxDelayMs: 500, maxPerRequest: 2 },
      stallDetection: { enabled: false, multiplier: 3, minTimeMs: 100 },
      drainTimeoutMs: 3_000,
      requestTimeoutMs: 5_000,
      weights: { v1: 75, v2: 25 },
    });
  });

  it("merges a service's settings field by field over defaults.traffic", () => {
    const text = fleet({
      defaults: [
        "traffic:",
        "  priorities: [[zone-b]]",
        "  retries: { attempts: 5, budget: { ratio: 0.5 } }",
        "  panic: { mode: fail-closed }",
      ],
      services: [
        ...service("api", 18000, [
          "traffic:",
          "  localZone: zone-c",
          "  retries: { budget: { window: 1m } }",
        ]),
        ...service("web", 19000),
      ],
    });
    const api = resolved(text, "api");
    assert.deepEqual(
      api.traffic.priorities,
      [["zone-c"], ["zone-a", "zone-b"]],
      "the service's locality wins",
    );
    assert.equal(api.traffic.retries.maxAttempts, 5);
    assert.deepEqual(api.traffic.retries.budget, { ratio: 0.5, windowMs: 60_000, minPerSecond: 5 });
    assert.deepEqual(api.traffic.panic, { thresholdPercent: 50, mode: "fail-closed" });
    const web = resolved(text, "web");
    assert.deepEqual(web.traffic.priorities, [["zone-b"], ["zone-a", "zone-c"]]);
    assert.equal(web.traffic.retries.budget.windowMs, 10_000);
  });

  it("caps the built-in shorter durations at the longer ones that are set", () => {
    const api = resolved(
      fleet({
        services: service("api", 18000, [
          "traffic:",
          "  requestTimeout: 1s",
          "  outlierDetection: { maxEjectionTime: 2s }",
          "  retries: { backoff: { max: 10ms } }",
        ]),
      }),
    );
    assert.equal(api.traffic.retries.perTryTimeoutMs, 1_000);
    assert.equal(api.traffic.outlier.baseEjectionMs, 2_000);
    assert.equal(api.traffic.retries.backoff.initialMs, 10);
  });

  it("resolves hedging and stall detection: on by default, delay auto, merged over defaults.traffic", () => {
    const plain = resolved(fleet({ services: service("api", 18000) }));
    assert.deepEqual(plain.traffic.hedging, {
      enabled: true,
      delayMs: null,
      minDelayMs: 20,
      maxDelayMs: 1_000,
      maxPerRequest: 1,
    });
    assert.deepEqual(plain.traffic.stallDetection, { enabled: true, multiplier: 4, minTimeMs: 250 });
    const merged = resolved(
      fleet({
        defaults: [
          "traffic: { hedging: { delay: 30ms, maxPerRequest: 2 }, stallDetection: { minTime: 1s } }",
        ],
        services: service("api", 18000, [
          "traffic: { hedging: { delay: auto, maxDelay: 10ms }, stallDetection: { multiplier: 2 } }",
        ]),
      }),
    );
    assert.deepEqual(merged.traffic.hedging, {
      enabled: true,
      delayMs: null,
      // The built-in 20ms minimum is capped at the maximum set.
      minDelayMs: 10,
      maxDelayMs: 10,
      maxPerRequest: 2,
    });
    assert.deepEqual(merged.traffic.stallDetection, { enabled: true, multiplier: 2, minTimeMs: 1_000 });
  });

  it("reports bad hedging and stall detection settings with their position, unknown keys included", () => {
    const found = messages(
      fleet({
        services: service("api", 18000, [
          "traffic:",
          "  hedging: { delay: soon, maxPerRequest: -1, enable: true }",
          "  stallDetection: { multiplier: 0.5, minTime: 0, floor: 1s }",
        ]),
      }),
    );
    assert.deepEqual(found, [
      'fleet.yaml:16:25: services.api.traffic.hedging.delay: expected "auto" or a positive duration like "50ms", got "soon"',
      "fleet.yaml:16:46: services.api.traffic.hedging.maxPerRequest: expected an integer ≥ 0, got -1",
      'fleet.yaml:16:50: services.api.traffic.hedging.enable: unknown key "enable" (did you mean "enabled"?)',
      "fleet.yaml:17:37: services.api.traffic.stallDetection.multiplier: expected a number ≥ 1, got 0.5",
      'fleet.yaml:17:51: services.api.traffic.stallDetection.minTime: expected a positive duration like "500ms" or "2s", got 0',
      'fleet.yaml:17:54: services.api.traffic.stallDetection.floor: unknown key "floor"',
    ]);
    const order = messages(
      fleet({ services: service("api", 18000, ["traffic: { hedging: { minDelay: 2s } }"]) }),
    );
    assert.deepEqual(order, [
      "fleet.yaml:15:37: services.api.traffic.hedging.minDelay: hedging.minDelay 2000ms is longer than hedging.maxDelay 1000ms (the default): the automatic hedge delay is kept between min and max",
    ]);
  });

  it("accepts traffic without a port, unused, and does not judge an inherited locality there", () => {
    const text = fleet({
      defaults: ["traffic: { localZone: zone-a }"],
      services: service(
        "batch",
        18000,
        ["placement: { zones: [zone-b] }", "traffic: { retries: { attempts: 1 } }"],
        null,
      ),
    });
    const batch = resolved(text, "batch");
    assert.equal(batch.port, undefined);
    assert.deepEqual(batch.traffic.priorities, [["zone-b"]]);
    assert.equal(batch.traffic.retries.maxAttempts, 1);
  });

  it("judges a service's own locality even without a port", () => {
    const found = messages(
      fleet({
        services: service(
          "batch",
          18000,
          ["placement: { zones: [zone-b] }", "traffic: { localZone: zone-a }"],
          null,
        ),
      }),
    );
    assert.equal(found.length, 1);
    assert.match(found[0]!, /services\.batch\.traffic\.localZone: zone "zone-a" is not a placement zone/);
  });

  it("reports each bad value with its position", () => {
    const found = messages(
      fleet({
        defaults: ["traffic: { weights: { v1: 1 } }"],
        services: service("api", 18000, [
          "traffic:",
          "  overprovisioningFactor: 0.9",
          "  panic: { threshold: 101, mode: fail-open }",
          "  limits: { queueSize: -1, adaptive: yes }",
          "  outlierDetection: { baseEjectionTime: 10s, maxEjectionTime: 5s }",
          "  retries: { perTryTimeout: 1m, backoff: { initial: 1s } }",
          '  weights: { "v1 beta": 1 }',
        ]),
      }),
    );
    assert.deepEqual(found, [
      'fleet.yaml:7:14: defaults.traffic.weights: unknown key "weights"',
      "fleet.yaml:18:31: services.api.traffic.overprovisioningFactor: expected a number ≥ 1, got 0.9",
      "fleet.yaml:19:27: services.api.traffic.panic.threshold: expected a number between 0 and 100, got 101",
      'fleet.yaml:19:38: services.api.traffic.panic.mode: expected one of "send-to-all", "fail-closed", got "fail-open"',
      "fleet.yaml:20:28: services.api.traffic.limits.queueSize: expected an integer ≥ 0, got -1",
      'fleet.yaml:20:42: services.api.traffic.limits.adaptive: expected true or false, got "yes"',
      "fleet.yaml:21:45: services.api.traffic.outlierDetection.baseEjectionTime: baseEjectionTime 10000ms is longer than maxEjectionTime 5000ms: ejections grow from base to max",
      "fleet.yaml:22:33: services.api.traffic.retries.perTryTimeout: perTryTimeout 60000ms is longer than requestTimeout 30000ms (the default): one attempt cannot outlast the whole request",
      "fleet.yaml:22:57: services.api.traffic.retries.backoff.initial: backoff.initial 1000ms is longer than backoff.max 250ms (the default): retry delays grow from initial to max",
      'fleet.yaml:23:18: services.api.traffic.weights["v1 beta"]: invalid release version "v1 beta"',
    ]);
  });
});
