/**
 * Missing SLO data is never "no traffic": when the data plane serves a service's port but its
 * figures do not reach the controller (the feed is down, or reports stopped), the gate cannot tell
 * an idle service from one failing under load, so it does not pass on readiness alone.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import type { DataPlaneStatus } from "../../src/traffic/dataPlaneControl.ts";
import { NO_INVARIANTS } from "../../src/verify/invariants.ts";
import { evaluateGate, type GateInput, sloDataGap } from "../../src/verify/verificationGate.ts";

const NOW = 1_800_000_000_000;
const idle = { requests: 0, errors: 0, errorRate: null, p50Ms: null, p99Ms: null, rps: 0 };

function input(overrides: Partial<GateInput> = {}): GateInput {
  return {
    service: "api",
    instances: [{ name: "api-0", ready: true, state: "ready", drift: [] }],
    wanted: 1,
    slo: { errorRate: 0.01, p99Ms: 250 },
    window: idle,
    windowMs: 10_000,
    invariants: NO_INVARIANTS,
    ...overrides,
  };
}

function processStatus(overrides: Partial<DataPlaneStatus> = {}): DataPlaneStatus {
  return {
    mode: "process",
    pid: 4242,
    connected: true,
    pushedVersion: 3,
    appliedVersion: 3,
    appliedIssuedAt: NOW - 5_000,
    controllerLostAt: null,
    generation: 0,
    lastReportAt: NOW - 250,
    restarts: 0,
    ...overrides,
  };
}

test("an idle window with the data plane reporting passes on readiness alone, and says so", () => {
  const verdict = evaluateGate(input({ sloDataGap: sloDataGap(processStatus(), NOW) }));
  assert.equal(verdict.passed, true);
  assert.match(verdict.slo.detail, /no traffic seen in the last 10s: verified on readiness alone/);
});

test("an empty window while the data plane does not report is missing data, not 'no traffic'", () => {
  for (const [what, status] of [
    ["disconnected", processStatus({ connected: false, lastReportAt: NOW - 30_000 })],
    ["never reported", processStatus({ lastReportAt: null })],
    ["reports stopped", processStatus({ lastReportAt: NOW - 10_000 })],
  ] as const) {
    const gap = sloDataGap(status, NOW);
    assert.ok(gap !== null, what);
    const verdict = evaluateGate(input({ sloDataGap: gap }));
    assert.equal(verdict.passed, false, what);
    assert.equal(verdict.slo.ok, false, what);
    assert.match(verdict.slo.detail, /SLO not measured: the data plane/, what);
    assert.doesNotMatch(verdict.slo.detail, /readiness alone/, what);
  }
  // With traffic counted before the feed went, still not verified: the window is incomplete.
  const partial = evaluateGate(
    input({
      window: { requests: 50, errors: 0, errorRate: 0, p50Ms: 3, p99Ms: 9, rps: 5 },
      sloDataGap: sloDataGap(processStatus({ connected: false }), NOW),
    }),
  );
  assert.equal(partial.passed, false);
});

test("an in-process data plane's figures are the controller's own: never a gap", () => {
  assert.equal(sloDataGap(processStatus({ mode: "in-process", lastReportAt: null }), NOW), null);
  assert.equal(sloDataGap(undefined, NOW), null);
});
