import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BRAKES_DEFAULTS } from "../../src/spec/brakes.ts";
import { type FleetSpec, fleetJsonSchema, formatSpecError, parseFleet } from "../../src/spec/index.ts";

/**
 * A fleet of `api` (2 replicas) and `big` (8 replicas). `top` lines go at the top level after
 * `version` (line 2 on), `defaults` lines under `defaults:`, `api` lines under api.
 */
function fleet(options: { top?: string[]; defaults?: string[]; api?: string[] }): string {
  const indent = (lines: string[] | undefined, by: string) => (lines ?? []).map((line) => `${by}${line}`);
  return `${[
    "version: 1",
    ...(options.top ?? []),
    ...(options.defaults === undefined ? [] : ["defaults:", ...indent(options.defaults, "  ")]),
    "services:",
    "  api:",
    "    replicas: 2",
    "    basePort: 18000",
    "    release: v1",
    "    releases: { v1: { command: node } }",
    ...indent(options.api, "    "),
    "  big:",
    "    replicas: 8",
    "    basePort: 18100",
    "    release: v1",
    "    releases: { v1: { command: node } }",
  ].join("\n")}\n`;
}

function loaded(text: string): FleetSpec {
  const result = parseFleet(text, "fleet.yaml");
  assert.ok(result.ok, result.ok ? "" : result.errors.map(formatSpecError).join("\n"));
  return result.fleet;
}

function service(text: string, name: string) {
  return loaded(text).services.find((s) => s.name === name)!;
}

function errors(text: string): string[] {
  const result = parseFleet(text, "fleet.yaml");
  assert.equal(result.ok, false, "expected the fleet to be rejected");
  return result.ok ? [] : result.errors.map((e) => `${e.line}:${e.col} ${e.path}: ${e.message}`);
}

describe("brakes in the fleet file", () => {
  it("resolves to the documented defaults when the file says nothing", () => {
    const text = fleet({});
    assert.deepEqual(loaded(text).brakes, {
      blastRadius: 0.25,
      rollbacks: { max: 3, windowMs: 3_600_000 },
      failovers: { max: 2, windowMs: 3_600_000 },
    });
    assert.deepEqual(loaded(text).brakes, BRAKES_DEFAULTS);
    assert.deepEqual(service(text, "api").brakes, {
      restarts: { max: 10, windowMs: 600_000 },
      blastRadius: 0.5,
    });
    assert.equal(service(text, "big").brakes?.restarts.max, 16, "2 × replicas once that is above 10");
  });

  it("reads the top-level brakes as written", () => {
    const text = fleet({
      top: ["brakes: { blastRadius: 10%, rollbacks: { max: 1, window: 30m }, failovers: { max: 5 } }"],
    });
    assert.deepEqual(loaded(text).brakes, {
      blastRadius: 0.1,
      rollbacks: { max: 1, windowMs: 1_800_000 },
      failovers: { max: 5, windowMs: 3_600_000 },
    });
  });

  it("merges a service's brakes over defaults.brakes field by field (max and window apart)", () => {
    const text = fleet({
      defaults: ["brakes: { restarts: { max: 4, window: 5m }, blastRadius: 0.34 }"],
      api: ["brakes: { restarts: { window: 1m } }"],
    });
    assert.deepEqual(service(text, "api").brakes, {
      restarts: { max: 4, windowMs: 60_000 },
      blastRadius: 0.34,
    });
    assert.deepEqual(service(text, "big").brakes, {
      restarts: { max: 4, windowMs: 300_000 },
      blastRadius: 0.34,
    });
  });

  it("reports bad values at file:line:col, with what was expected", () => {
    assert.deepEqual(errors(fleet({ top: ["brakes: { blastRadius: 0 }"] })), [
      '2:24 brakes.blastRadius: expected a fraction above 0 and at most 1 or a percentage like "80%", got 0',
    ]);
    assert.deepEqual(errors(fleet({ api: ["brakes: { restarts: { max: 0 } }"] })), [
      "8:32 services.api.brakes.restarts.max: expected a positive integer, got 0",
    ]);
    assert.deepEqual(errors(fleet({ defaults: ["brakes: { restarts: { window: soon } }"] })), [
      '3:33 defaults.brakes.restarts.window: expected a positive duration like "500ms" or "2s", got "soon"',
    ]);
    const unknown = errors(fleet({ top: ["brakes: { restarts: { max: 3 } }"] }));
    assert.equal(unknown.length, 1);
    assert.match(unknown[0]!, /^2:11 brakes/);
  });

  it("is in the JSON Schema editors read", () => {
    const schema = JSON.stringify(fleetJsonSchema());
    assert.match(schema, /automated rollbacks/);
    assert.match(schema, /Automation brakes every service starts from/);
  });
});
