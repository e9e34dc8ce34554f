import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { loadFleetFile, type SpecError } from "../../src/spec/index.ts";

const brokenDir = fileURLToPath(new URL("../fixtures/specs/broken/", import.meta.url));

/** One expected error: where, which node, and a fragment of what it says. */
type Expected = [line: number, col: number, path: string, fragment: string];

/** Every broken fixture and exactly the errors it must produce, in order. */
const CASES: Record<string, Expected[]> = {
  "bad-syntax.yaml": [[7, 5, "", "Flow sequence in block collection must be sufficiently indented"]],
  "duplicate-key.yaml": [[6, 5, "", "Map keys must be unique"]],
  "wrong-type.yaml": [[4, 15, "services.api.replicas", 'expected a positive integer, got "three"']],
  "unknown-key.yaml": [
    [4, 5, "services.api", 'missing required key "replicas"'],
    [4, 5, "services.api.replica", 'unknown key "replica" (did you mean "replicas"?)'],
  ],
  "missing-command.yaml": [[9, 9, "services.api.releases.v1", 'missing required key "command"']],
  "unknown-dependency.yaml": [
    [12, 26, "services.checkout.dependsOn[1]", 'unknown service "catalgo" (did you mean "catalog"?)'],
  ],
  "cyclic-dependency.yaml": [
    [13, 17, "services.checkout.dependsOn[0]", "dependency cycle: catalog -> checkout -> catalog"],
  ],
  "self-dependency.yaml": [[7, 9, "services.api.dependsOn[0]", "dependency cycle: api -> api"]],
  "zero-replicas.yaml": [[4, 15, "services.api.replicas", "expected a positive integer, got 0"]],
  "bad-duration.yaml": [
    [
      12,
      19,
      "services.api.probes.readiness.interval",
      'expected a positive duration like "500ms" or "2s", got "soon"',
    ],
  ],
  "duplicate-ports.yaml": [
    [
      12,
      15,
      "services.checkout.basePort",
      'instance ports 18004-18007 overlap the instance ports 18000-18005 of service "catalog": a service reserves 2 × replicas ports',
    ],
    [13, 11, "services.checkout.port", 'port 8000 overlaps the front port 8000 of service "catalog"'],
  ],
  "unknown-release.yaml": [
    [6, 14, "services.api.release", 'unknown release "v2" (did you mean "v1"?) (releases: v1, v3)'],
  ],
  "timeout-over-interval.yaml": [
    [7, 16, "defaults.probes.liveness.timeout", "timeout 2000ms is longer than interval 500ms"],
  ],
  "two-transports.yaml": [
    [12, 9, "services.api.probes.liveness.tcp", 'exactly one transport, found "http" and "tcp"'],
  ],
  "env-not-string.yaml": [
    [
      12,
      33,
      "services.api.releases.v1.env.FAULT_CRASH_AFTER_MS",
      'expected a string, got 1500 (quote it: "1500")',
    ],
  ],
  "unknown-host.yaml": [[9, 34, "services.api.placement.hosts[1]", 'unknown host "host-c"']],
  "liveness-success-threshold.yaml": [
    [12, 27, "services.api.probes.liveness.successThreshold", "must have successThreshold 1, got 2"],
  ],
  "probe-port-out-of-range.yaml": [
    [
      11,
      22,
      "services.api.probes.readiness.tcp.port",
      "expected an integer port between 1 and 65535, got 70000",
    ],
  ],
  "traffic-unknown-zone.yaml": [
    [
      15,
      18,
      "services.api.traffic.localZone",
      'zone "zone-c" is not a placement zone (did you mean "zone-a"?)',
    ],
  ],
  "traffic-defaults-zone.yaml": [
    [
      8,
      16,
      "defaults.traffic.localZone",
      'zone "zone-a" is not a placement zone: service "web" is placed in zone-b',
    ],
  ],
  "traffic-zone-twice.yaml": [
    [16, 39, "services.api.traffic.priorities[1][1]", 'zone "zone-a" is listed twice'],
  ],
  "traffic-locality-twice.yaml": [
    [16, 7, "services.api.traffic.priorities", 'set either "localZone" or "priorities", not both'],
  ],
  "traffic-unknown-weight-release.yaml": [
    [
      13,
      26,
      "services.api.traffic.weights.v3",
      'unknown release "v3" (did you mean "v1"?) (releases: v1, v2)',
    ],
  ],
  "traffic-zero-weights.yaml": [
    [14, 9, "services.api.traffic.weights", "give at least one release a weight above 0"],
  ],
  "traffic-budget-ratio.yaml": [
    [13, 26, "services.api.traffic.retries.budget.ratio", "expected a number between 0 and 1, got 1.5"],
  ],
  "traffic-zero-attempts.yaml": [
    [6, 17, "defaults.traffic.retries.attempts", "expected a positive integer, got 0"],
  ],
  "traffic-per-try-over-request.yaml": [
    [
      15,
      33,
      "services.api.traffic.retries.perTryTimeout",
      "perTryTimeout 1500ms is longer than requestTimeout 1000ms (from defaults.traffic)",
    ],
  ],
  "traffic-ejection-percent.yaml": [
    [
      14,
      29,
      "services.api.traffic.outlierDetection.maxEjectionPercent",
      "expected a number between 0 and 100, got 120",
    ],
  ],
  "release-bad-schema-range.yaml": [
    [
      13,
      33,
      "services.api.releases.v1.requires.schemas.orders-db",
      'expected a semver range like ">=5 <7" or "^2", got ">=5 <<7"',
    ],
  ],
  "release-unknown-datastore.yaml": [
    [
      14,
      13,
      "services.api.releases.v1.requires.schemas.order-db",
      'unknown datastore "order-db" (did you mean "orders-db"?) (datastores: orders-db)',
    ],
  ],
  "release-api-not-a-dependency.yaml": [
    [
      17,
      19,
      "services.checkout.releases.v1.requires.apis.catalog",
      "requires an API of catalog but does not depend on it: add catalog to the dependsOn of checkout",
    ],
  ],
  "release-bad-provides.yaml": [
    [
      10,
      26,
      "services.catalog.releases.v1.provides.api",
      'expected a semver version like "2.3.0", got "v1.2.0" (write "1.2.0")',
    ],
  ],
  "release-migration-backwards.yaml": [
    [
      13,
      50,
      "services.api.releases.v1.migrations[0].to",
      "migration goes from 6 to 6: to must be above from",
    ],
  ],
  "release-migration-unknown-datastore.yaml": [
    [
      11,
      26,
      "services.api.releases.v2.migrations[0].datastore",
      'unknown datastore "orders-db" (the fleet declares no datastores',
    ],
  ],
  "release-migrates-outside-own-range.yaml": [
    [
      15,
      50,
      "services.api.releases.v2.migrations[0].to",
      'this release migrates orders-db to 6, outside its own requirement ">=5 <6"',
    ],
  ],
  "deploy-steps-not-100.yaml": [
    [10, 23, "services.api.deploy.steps[2]", "the last step must be 100, got 90"],
  ],
  "deploy-steps-not-increasing.yaml": [
    [4, 17, "defaults.deploy.steps[1]", "steps must increase: 25 comes after 25"],
  ],
  "deploy-deadline-under-duration.yaml": [
    [
      13,
      21,
      "services.api.deploy.stepDeadline",
      "stepDeadline 30000ms is shorter than stepDuration 60000ms (from defaults.deploy)",
    ],
  ],
  "security-unknown-service.yaml": [
    [5, 18, "security.deniedReleases[1].service", 'unknown service "chekout" (did you mean "checkout"?)'],
  ],
  "slo-error-rate-out-of-range.yaml": [
    [
      3,
      21,
      "defaults.slo.errorRate",
      'expected a fraction between 0 and 1 or a percentage like "1%", got 1.5',
    ],
    [12, 18, "services.api.slo.errorRate", 'got "150%"'],
  ],
  "capacity-max-replicas-over-ports.yaml": [
    [
      11,
      20,
      "services.api.capacity.maxReplicas",
      "maxReplicas 8 is above 2 × replicas (6): a service reserves 2 × replicas instance ports",
    ],
  ],
  "capacity-max-replicas-below-replicas.yaml": [
    [
      9,
      40,
      "services.api.capacity.maxReplicas",
      "maxReplicas 2 is below replicas 3: the service already runs 3 instances",
    ],
  ],
  "capacity-defaults-max-replicas.yaml": [
    [13, 15, "services.web.replicas", "maxReplicas 6 (from defaults.capacity) is above 2 × replicas (4)"],
  ],
  "capacity-target-utilization.yaml": [
    [
      3,
      34,
      "defaults.capacity.targetUtilization",
      'expected a fraction above 0 and at most 1 or a percentage like "80%", got 0',
    ],
    [12, 26, "services.api.capacity.targetUtilization", 'got "120%"'],
  ],
  "failover-degraded-over-down.yaml": [
    [4, 18, "failover.degradedShare", "degradedShare 60% is above downShare 40%"],
  ],
  "failover-out-of-range.yaml": [
    [3, 14, "failover.downShare", "got 1.5"],
    [4, 16, "failover.stepPercent", "expected a percentage between 1 and 100, got 0"],
    [5, 17, "failover.stepInterval", 'expected a positive duration like "500ms" or "2s", got "0s"'],
  ],
  "several-errors.yaml": [
    [1, 10, "version", "expected 1 (the only fleet file version), got 2"],
    [5, 15, "services.catalog.replicas", "expected a positive integer, got -1"],
    [10, 18, "services.catalog.releases.v1.command", 'expected a non-empty string, got ""'],
    [11, 23, "services.catalog.releases.v1.env.DEBUG", 'got true (quote it: "true")'],
    [15, 26, "services.checkout.dependsOn[1]", 'unknown service "inventory"'],
    [16, 14, "services.checkout.release", 'unknown release "v2"'],
    [
      21,
      23,
      "services.checkout.probes.readiness.http.path",
      'expected a path starting with "/", got "ready"',
    ],
    [22, 19, "services.checkout.probes.readiness.interval", 'got "1 second"'],
  ],
};

describe("broken fleet files", () => {
  it("has a case for every fixture, and at least 12 of them", () => {
    const fixtures = readdirSync(brokenDir).filter((name) => name.endsWith(".yaml"));
    assert.deepEqual(fixtures.sort(), Object.keys(CASES).sort());
    assert.ok(fixtures.length >= 12);
  });

  for (const [fixture, expected] of Object.entries(CASES)) {
    it(`${fixture}: reports ${expected.map(([line, col]) => `${line}:${col}`).join(", ")}`, async () => {
      const file = `${brokenDir}${fixture}`;
      const result = await loadFleetFile(file);
      assert.ok(!result.ok, "a broken file must not load");
      assert.deepEqual(
        result.errors.map((error) => [error.line, error.col, error.path]),
        expected.map(([line, col, path]) => [line, col, path]),
        result.errors.map((error) => `${error.line}:${error.col} ${error.path}: ${error.message}`).join("\n"),
      );
      for (const [index, [, , , fragment]] of expected.entries()) {
        const found: SpecError = result.errors[index]!;
        assert.equal(found.file, file);
        assert.ok(found.message.includes(fragment), `"${found.message}" should contain "${fragment}"`);
      }
    });
  }
});
