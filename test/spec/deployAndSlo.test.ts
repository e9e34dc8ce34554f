import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type FleetSpec,
  formatSpecError,
  type LoadResult,
  parseFleet,
  type ServiceSpec,
} from "../../src/spec/index.ts";
import { DEFAULT_DEPLOY, DEFAULT_SLO } from "../helpers/fleetFixture.ts";

/** A fleet of services `api` (18000) and `web` (18100); `api`/`web` lines go under each service. */
function fleet(options: { defaults?: string[]; api?: string[]; web?: string[] }): string {
  const indent = (lines: string[] | undefined, by: string) => (lines ?? []).map((line) => `${by}${line}`);
  const service = (name: string, basePort: number, extra: string[] | undefined) => [
    `  ${name}:`,
    "    replicas: 2",
    `    basePort: ${basePort}`,
    "    release: v1",
    "    releases: { v1: { command: node } }",
    ...indent(extra, "    "),
  ];
  const defaults = options.defaults === undefined ? [] : ["defaults:", ...indent(options.defaults, "  ")];
  return `${[
    "version: 1",
    ...defaults,
    "services:",
    ...service("api", 18000, options.api),
    ...service("web", 18100, options.web),
  ].join("\n")}\n`;
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

/** Every error as `line:col path: message`. */
function errors(text: string): string[] {
  const result = parseFleet(text, "fleet.yaml");
  assert.equal(result.ok, false, "expected the fleet to be rejected");
  return result.ok ? [] : result.errors.map((e) => `${e.line}:${e.col} ${e.path}: ${e.message}`);
}

describe("deploy settings", () => {
  it("resolves to the documented defaults when nothing is said", () => {
    const { deploy } = resolved(fleet({}));
    assert.deepEqual(deploy, DEFAULT_DEPLOY);
    assert.deepEqual(deploy, {
      steps: [10, 50, 100],
      stepDurationMs: 30_000,
      stepDeadlineMs: 120_000,
      soakMs: 600_000,
      keepStableWarm: true,
      historyLimit: 10,
      analysis: { minRequests: 50, maxErrorRateIncrease: 0.01, maxP99Ratio: 1.5, minP99IncreaseMs: 50 },
    });
  });

  it("merges a service's deploy over defaults.deploy field by field, analysis too", () => {
    const text = fleet({
      defaults: [
        "deploy:",
        "  steps: [5, 25, 100]",
        "  soak: 1m",
        "  keepStableWarm: false",
        "  analysis: { minRequests: 20, maxErrorRateIncrease: 2% }",
      ],
      api: [
        "deploy:",
        "  steps: [50, 100]",
        "  historyLimit: 3",
        "  analysis: { maxP99Ratio: 2, minP99Increase: 0 }",
      ],
    });
    assert.deepEqual(resolved(text, "api").deploy, {
      steps: [50, 100],
      stepDurationMs: 30_000,
      stepDeadlineMs: 120_000,
      soakMs: 60_000,
      keepStableWarm: false,
      historyLimit: 3,
      analysis: { minRequests: 20, maxErrorRateIncrease: 0.02, maxP99Ratio: 2, minP99IncreaseMs: 0 },
    });
    const web = resolved(text, "web").deploy;
    assert.deepEqual(web.steps, [5, 25, 100]);
    assert.equal(web.historyLimit, 10);
    assert.equal(web.analysis.maxP99Ratio, 1.5);
  });

  it("accepts a single step of 100 (all at once, still analysed and soaked)", () => {
    assert.deepEqual(resolved(fleet({ api: ["deploy: { steps: [100] }"] })).deploy.steps, [100]);
  });

  it("lets an unset deadline follow a long step: 4 step durations, at least 2m", () => {
    assert.equal(resolved(fleet({ api: ["deploy: { stepDuration: 5m }"] })).deploy.stepDeadlineMs, 1_200_000);
    assert.equal(resolved(fleet({ api: ["deploy: { stepDuration: 10s }"] })).deploy.stepDeadlineMs, 120_000);
    const fromDefaults = fleet({ defaults: ["deploy: { stepDuration: 1m }"] });
    assert.equal(resolved(fromDefaults, "web").deploy.stepDeadlineMs, 240_000);
  });

  it("rejects a deadline shorter than the step, blaming the value the mapping sets", () => {
    assert.deepEqual(errors(fleet({ api: ["deploy: { stepDuration: 30s, stepDeadline: 10s }"] })), [
      "8:48 services.api.deploy.stepDeadline: stepDeadline 10000ms is shorter than stepDuration 30000ms: a step is judged after stepDuration, so it could never pass before its deadline",
    ]);
    assert.deepEqual(errors(fleet({ api: ["deploy: { stepDeadline: 10s }"] })), [
      "8:29 services.api.deploy.stepDeadline: stepDeadline 10000ms is shorter than stepDuration 30000ms (the default): a step is judged after stepDuration, so it could never pass before its deadline",
    ]);
    const inherited = errors(
      fleet({ defaults: ["deploy: { stepDeadline: 1m }"], web: ["deploy: { stepDuration: 90s }"] }),
    );
    assert.deepEqual(inherited, [
      "15:29 services.web.deploy.stepDuration: stepDeadline 60000ms (from defaults.deploy) is shorter than stepDuration 90000ms: a step is judged after stepDuration, so it could never pass before its deadline",
    ]);
  });

  it("reports an inconsistency inside defaults.deploy once, at defaults", () => {
    assert.deepEqual(errors(fleet({ defaults: ["deploy: { stepDuration: 1m, stepDeadline: 30s }"] })), [
      "3:45 defaults.deploy.stepDeadline: stepDeadline 30000ms is shorter than stepDuration 60000ms: a step is judged after stepDuration, so it could never pass before its deadline",
    ]);
  });

  it("rejects steps that are empty, out of range, not increasing or not ending at 100", () => {
    assert.deepEqual(errors(fleet({ api: ["deploy: { steps: [] }"] })), [
      "8:22 services.api.deploy.steps: list at least one step (the last must be 100)",
    ]);
    assert.deepEqual(errors(fleet({ api: ["deploy: { steps: [0, 50, 101] }"] })), [
      "8:23 services.api.deploy.steps[0]: expected a traffic percentage between 1 and 100, got 0",
      "8:30 services.api.deploy.steps[2]: expected a traffic percentage between 1 and 100, got 101",
    ]);
    assert.deepEqual(errors(fleet({ api: ["deploy: { steps: [50, 20, 10, 100] }"] })), [
      "8:27 services.api.deploy.steps[1]: steps must increase: 20 comes after 50",
      "8:31 services.api.deploy.steps[2]: steps must increase: 10 comes after 20",
    ]);
    assert.deepEqual(errors(fleet({ api: ["deploy: { steps: [10, 50] }"] })), [
      "8:27 services.api.deploy.steps[1]: the last step must be 100, got 50: a deploy ends with the new release taking all traffic",
    ]);
  });

  it("rejects bad single values with their expectation", () => {
    const found = errors(
      fleet({
        api: [
          "deploy:",
          "  historyLimit: 0",
          "  keepStableWarm: yes",
          "  soak: forever",
          "  analysis: { minRequests: 0, maxErrorRateIncrease: 1.5, maxP99Ratio: 0.9 }",
        ],
      }),
    );
    assert.deepEqual(found, [
      "9:21 services.api.deploy.historyLimit: expected a positive integer, got 0",
      '10:23 services.api.deploy.keepStableWarm: expected true or false, got "yes"',
      '11:13 services.api.deploy.soak: expected a duration like "500ms" or "2s", got "forever"',
      "12:32 services.api.deploy.analysis.minRequests: expected a positive integer, got 0",
      '12:57 services.api.deploy.analysis.maxErrorRateIncrease: expected a fraction between 0 and 1 or a percentage like "1%", got 1.5',
      "12:75 services.api.deploy.analysis.maxP99Ratio: expected a number ≥ 1, got 0.9",
    ]);
  });

  it("suggests the known key for a misspelt one", () => {
    assert.deepEqual(errors(fleet({ api: ["deploy: { step: [10, 100] }"] })), [
      '8:15 services.api.deploy.step: unknown key "step" (did you mean "steps"?)',
    ]);
  });
});

describe("SLO", () => {
  it("defaults to 1 % errors and a 1s p99", () => {
    assert.deepEqual(resolved(fleet({})).slo, DEFAULT_SLO);
    assert.deepEqual(DEFAULT_SLO, { errorRate: 0.01, p99Ms: 1_000 });
  });

  it('reads "1%" and 0.01 alike, and merges over defaults.slo field by field', () => {
    const text = fleet({
      defaults: ["slo: { errorRate: 0.5%, p99: 800ms }"],
      api: ["slo: { errorRate: 0.02 }"],
    });
    assert.deepEqual(resolved(text, "api").slo, { errorRate: 0.02, p99Ms: 800 });
    assert.deepEqual(resolved(text, "web").slo, { errorRate: 0.005, p99Ms: 800 });
    assert.equal(resolved(fleet({ api: ["slo: { errorRate: 1% }"] })).slo.errorRate, 0.01);
    assert.equal(resolved(fleet({ api: ["slo: { errorRate: 0 }"] })).slo.errorRate, 0);
  });

  it("rejects error rates outside 0..1 in either spelling, and a zero p99", () => {
    assert.deepEqual(
      errors(fleet({ api: ["slo:", "  errorRate: -0.1", "  p99: 0"], web: ["slo: { errorRate: 101% }"] })),
      [
        '9:18 services.api.slo.errorRate: expected a fraction between 0 and 1 or a percentage like "1%", got -0.1',
        '10:12 services.api.slo.p99: expected a positive duration like "500ms" or "2s", got 0',
        '16:23 services.web.slo.errorRate: expected a fraction between 0 and 1 or a percentage like "1%", got "101%"',
      ],
    );
    assert.deepEqual(errors(fleet({ api: ["slo: { errorRate: one percent }"] })), [
      '8:23 services.api.slo.errorRate: expected a fraction between 0 and 1 or a percentage like "1%", got "one percent"',
    ]);
  });
});
