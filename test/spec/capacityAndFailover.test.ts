import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type FleetSpec,
  formatSpecError,
  type LoadResult,
  parseFleet,
  type ServiceSpec,
} from "../../src/spec/index.ts";
import { DEFAULT_FAILOVER, makeFleet, makeService } from "../helpers/fleetFixture.ts";

/**
 * A fleet of `api` (2 replicas, 18000) and `web` (3 replicas, 18100). `top` lines go at the top
 * level after `version` (line 2 on), `defaults` lines under `defaults:`, `api`/`web` lines under
 * each service.
 */
function fleet(options: { top?: string[]; defaults?: string[]; api?: string[]; web?: string[] }): string {
  const indent = (lines: string[] | undefined, by: string) => (lines ?? []).map((line) => `${by}${line}`);
  const service = (name: string, replicas: number, basePort: number, extra: string[] | undefined) => [
    `  ${name}:`,
    `    replicas: ${replicas}`,
    `    basePort: ${basePort}`,
    "    release: v1",
    "    releases: { v1: { command: node } }",
    ...indent(extra, "    "),
  ];
  const defaults = options.defaults === undefined ? [] : ["defaults:", ...indent(options.defaults, "  ")];
  return `${[
    "version: 1",
    ...(options.top ?? []),
    ...defaults,
    "services:",
    ...service("api", 2, 18000, options.api),
    ...service("web", 3, 18100, options.web),
  ].join("\n")}\n`;
}

function ok(result: LoadResult): FleetSpec {
  assert.ok(result.ok, result.ok ? "" : result.errors.map(formatSpecError).join("\n"));
  return result.fleet;
}

function loaded(text: string): FleetSpec {
  return ok(parseFleet(text, "fleet.yaml"));
}

function resolved(text: string, name = "api"): ServiceSpec {
  const found = loaded(text).services.find((s) => s.name === name);
  assert.ok(found, name);
  return found;
}

/** Every error as `line:col path: message`. */
function errors(text: string): string[] {
  const result = parseFleet(text, "fleet.yaml");
  assert.equal(result.ok, false, "expected the fleet to be rejected");
  return result.ok ? [] : result.errors.map((e) => `${e.line}:${e.col} ${e.path}: ${e.message}`);
}

const ABOVE_PORTS =
  "a service reserves 2 × replicas instance ports (basePort .. basePort + 3), so it can never run more than 4 instances";

describe("capacity", () => {
  it("resolves to the documented defaults, maxReplicas = 2 × replicas, as the test fixture does", () => {
    const text = fleet({});
    assert.deepEqual(resolved(text, "api").capacity, {
      rps: null,
      concurrency: null,
      targetUtilization: 0.8,
      maxReplicas: 4,
    });
    assert.equal(resolved(text, "web").capacity.maxReplicas, 6);
    assert.deepEqual(resolved(text, "api").capacity, makeService({ name: "api", replicas: 2 }).capacity);
  });

  it("resolves every field as written", () => {
    const text = fleet({
      api: ["capacity: { rps: 200, concurrency: 50, targetUtilization: 80%, maxReplicas: 3 }"],
      web: ["capacity: { rps: 12.5, targetUtilization: 0.655 }"],
    });
    assert.deepEqual(resolved(text, "api").capacity, {
      rps: 200,
      concurrency: 50,
      targetUtilization: 0.8,
      maxReplicas: 3,
    });
    assert.deepEqual(resolved(text, "web").capacity, {
      rps: 12.5,
      concurrency: null,
      targetUtilization: 0.655,
      maxReplicas: 6,
    });
  });

  it('reads "80%" and 0.8 alike, and accepts 100 %', () => {
    const utilization = (written: string) =>
      resolved(fleet({ api: [`capacity: { targetUtilization: ${written} }`] })).capacity.targetUtilization;
    assert.equal(utilization("80%"), utilization("0.8"));
    assert.equal(utilization("62.5%"), 0.625);
    assert.equal(utilization("100%"), 1);
    assert.equal(utilization("1"), 1);
  });

  it("merges a service's capacity over defaults.capacity field by field; null says unknown over a default", () => {
    const text = fleet({
      defaults: ["capacity: { rps: 100, concurrency: 20, targetUtilization: 70% }"],
      api: ["capacity: { rps: null, targetUtilization: 0.9 }"],
    });
    assert.deepEqual(resolved(text, "api").capacity, {
      rps: null,
      concurrency: 20,
      targetUtilization: 0.9,
      maxReplicas: 4,
    });
    assert.deepEqual(resolved(text, "web").capacity, {
      rps: 100,
      concurrency: 20,
      targetUtilization: 0.7,
      maxReplicas: 6,
    });
  });

  it("accepts maxReplicas from replicas to 2 × replicas, the bounds included", () => {
    assert.equal(resolved(fleet({ api: ["capacity: { maxReplicas: 2 }"] })).capacity.maxReplicas, 2);
    assert.equal(resolved(fleet({ api: ["capacity: { maxReplicas: 4 }"] })).capacity.maxReplicas, 4);
    const fromDefaults = fleet({ defaults: ["capacity: { maxReplicas: 3 }"] });
    assert.equal(resolved(fromDefaults, "api").capacity.maxReplicas, 3);
    assert.equal(resolved(fromDefaults, "web").capacity.maxReplicas, 3);
  });

  it("rejects maxReplicas below replicas or above 2 × replicas, saying why", () => {
    assert.deepEqual(errors(fleet({ api: ["capacity: { maxReplicas: 1 }"] })), [
      "8:30 services.api.capacity.maxReplicas: maxReplicas 1 is below replicas 2: the service already runs 2 instances",
    ]);
    assert.deepEqual(errors(fleet({ api: ["capacity: { maxReplicas: 5 }"] })), [
      `8:30 services.api.capacity.maxReplicas: maxReplicas 5 is above 2 × replicas (4): ${ABOVE_PORTS}`,
    ]);
  });

  it("blames an inherited maxReplicas at the replicas it does not fit, service by service", () => {
    assert.deepEqual(errors(fleet({ defaults: ["capacity: { maxReplicas: 5 }"] })), [
      `6:15 services.api.replicas: maxReplicas 5 (from defaults.capacity) is above 2 × replicas (4): ${ABOVE_PORTS}`,
    ]);
    assert.deepEqual(errors(fleet({ defaults: ["capacity: { maxReplicas: 2 }"] })), [
      "11:15 services.web.replicas: maxReplicas 2 (from defaults.capacity) is below replicas 3: the service already runs 3 instances",
    ]);
    // A service's own value wins over the default: nothing to blame on it.
    const overridden = fleet({
      defaults: ["capacity: { maxReplicas: 6 }"],
      api: ["capacity: { maxReplicas: 4 }"],
    });
    assert.equal(resolved(overridden, "web").capacity.maxReplicas, 6);
  });

  it("rejects bad single values with their expectation", () => {
    const found = errors(
      fleet({
        api: ["capacity:", "  rps: 0", "  concurrency: 2.5", "  targetUtilization: 0", "  maxReplicas: 0"],
        web: ["capacity: { rps: fast, concurrency: 0, targetUtilization: 101% }"],
      }),
    );
    assert.deepEqual(found, [
      "9:12 services.api.capacity.rps: expected a number of requests/s above 0, or null (unknown), got 0",
      "10:20 services.api.capacity.concurrency: expected a positive integer, or null (unknown), got 2.5",
      '11:26 services.api.capacity.targetUtilization: expected a fraction above 0 and at most 1 or a percentage like "80%", got 0',
      "12:20 services.api.capacity.maxReplicas: expected a positive integer, got 0",
      '18:22 services.web.capacity.rps: expected a number of requests/s above 0, or null (unknown), got "fast"',
      "18:41 services.web.capacity.concurrency: expected a positive integer, or null (unknown), got 0",
      '18:63 services.web.capacity.targetUtilization: expected a fraction above 0 and at most 1 or a percentage like "80%", got "101%"',
    ]);
    assert.deepEqual(errors(fleet({ defaults: ["capacity: { targetUtilization: 0% }"] })), [
      '3:34 defaults.capacity.targetUtilization: expected a fraction above 0 and at most 1 or a percentage like "80%", got "0%"',
    ]);
  });

  it("suggests the known key for a misspelt one", () => {
    assert.deepEqual(errors(fleet({ api: ["capacity: { maxReplica: 3 }"] })), [
      '8:17 services.api.capacity.maxReplica: unknown key "maxReplica" (did you mean "maxReplicas"?)',
    ]);
  });

  it("still judges maxReplicas when something else in the file is invalid", () => {
    assert.deepEqual(errors(fleet({ api: ["capacity: { maxReplicas: 9 }"], web: ["slo: { p99: 0 }"] })), [
      "8:30 services.api.capacity.maxReplicas: maxReplicas 9 is above 2 × replicas (4): a service reserves 2 × replicas instance ports (basePort .. basePort + 3), so it can never run more than 4 instances",
      '14:17 services.web.slo.p99: expected a positive duration like "500ms" or "2s", got 0',
    ]);
  });
});

describe("failover", () => {
  it("resolves to the documented defaults when the file says nothing, as the test fixture does", () => {
    const { failover } = loaded(fleet({}));
    assert.deepEqual(failover, {
      downShare: 0.5,
      degradedShare: 0.2,
      stepPercent: 25,
      stepIntervalMs: 5_000,
      stabilizationMs: 30_000,
      minIntervalMs: 300_000,
      confirmMs: 2_000,
      automatic: false,
    });
    assert.deepEqual(failover, DEFAULT_FAILOVER);
    assert.deepEqual(failover, makeFleet({ services: [{ name: "api" }] }).failover);
  });

  it("resolves every field as written, durations in ms and shares as fractions", () => {
    const text = fleet({
      top: [
        "failover:",
        "  downShare: 60%",
        "  degradedShare: 0.25",
        "  stepPercent: 50",
        "  stepInterval: 2s",
        "  stabilization: 1m",
        "  minInterval: 0",
        "  confirm: 500ms",
        "  automatic: true",
      ],
    });
    assert.deepEqual(loaded(text).failover, {
      downShare: 0.6,
      degradedShare: 0.25,
      stepPercent: 50,
      stepIntervalMs: 2_000,
      stabilizationMs: 60_000,
      minIntervalMs: 0,
      confirmMs: 500,
      automatic: true,
    });
  });

  it("fills the fields it leaves out with the defaults, and allows degraded = down", () => {
    const text = fleet({ top: ["failover: { automatic: true, degradedShare: 50% }"] });
    assert.deepEqual(loaded(text).failover, { ...DEFAULT_FAILOVER, automatic: true, degradedShare: 0.5 });
    const whole = loaded(fleet({ top: ["failover: { downShare: 100%, degradedShare: 1 }"] })).failover;
    assert.equal(whole.downShare, 1);
    assert.equal(whole.degradedShare, 1);
  });

  it("rejects degradedShare above downShare, the default one included, at the value the file sets", () => {
    const message = "a zone must be degraded before it is down, so degradedShare ≤ downShare";
    assert.deepEqual(errors(fleet({ top: ["failover: { downShare: 40%, degradedShare: 0.6 }"] })), [
      `2:44 failover.degradedShare: degradedShare 60% is above downShare 40%: ${message}`,
    ]);
    assert.deepEqual(errors(fleet({ top: ["failover: { degradedShare: 0.7 }"] })), [
      `2:28 failover.degradedShare: degradedShare 70% is above downShare 50% (the default): ${message}`,
    ]);
    assert.deepEqual(errors(fleet({ top: ["failover: { downShare: 10% }"] })), [
      `2:24 failover.downShare: degradedShare 20% (the default) is above downShare 10%: ${message}`,
    ]);
  });

  it("rejects out-of-range and mistyped values with their expectation", () => {
    const found = errors(
      fleet({
        top: [
          "failover:",
          "  downShare: 0",
          "  degradedShare: 150%",
          "  stepPercent: 101",
          "  stepInterval: 0",
          "  stabilization: soon",
          "  minInterval: -1",
          "  automatic: yes",
        ],
      }),
    );
    assert.deepEqual(found, [
      '3:14 failover.downShare: expected a fraction above 0 and at most 1 or a percentage like "80%", got 0',
      '4:18 failover.degradedShare: expected a fraction above 0 and at most 1 or a percentage like "80%", got "150%"',
      "5:16 failover.stepPercent: expected a percentage between 1 and 100, got 101",
      '6:17 failover.stepInterval: expected a positive duration like "500ms" or "2s", got 0',
      '7:18 failover.stabilization: expected a duration like "500ms" or "2s", got "soon"',
      '8:16 failover.minInterval: expected a duration like "500ms" or "2s", got -1',
      '9:14 failover.automatic: expected true or false, got "yes"',
    ]);
    assert.deepEqual(errors(fleet({ top: ["failover: { stepPercent: 0 }"] })), [
      "2:26 failover.stepPercent: expected a percentage between 1 and 100, got 0",
    ]);
  });

  it("does not compare a share with the default when the other one is written but invalid", () => {
    assert.deepEqual(errors(fleet({ top: ["failover: { downShare: 0, degradedShare: 0.6 }"] })), [
      '2:24 failover.downShare: expected a fraction above 0 and at most 1 or a percentage like "80%", got 0',
    ]);
  });

  it("still judges the shares' order when something else in the file is invalid", () => {
    assert.deepEqual(errors(fleet({ top: ["failover: { degradedShare: 0.6, stepPercent: 0 }"] })), [
      "2:28 failover.degradedShare: degradedShare 60% is above downShare 50% (the default): a zone must be degraded before it is down, so degradedShare ≤ downShare",
      "2:46 failover.stepPercent: expected a percentage between 1 and 100, got 0",
    ]);
  });

  it("suggests the known key for a misspelt one", () => {
    assert.deepEqual(errors(fleet({ top: ["failover: { automatc: true }"] })), [
      '2:13 failover.automatc: unknown key "automatc" (did you mean "automatic"?)',
    ]);
  });
});
