import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { HealthState, ProbeKind, ProbeResult } from "../../src/observe/health.ts";
import {
  applyProbeResult,
  type InstanceHealthState,
  initialHealth,
  initialHealthState,
  shouldRun,
} from "../../src/observe/healthMachine.ts";
import type { ProbeSet, ProbeSpec } from "../../src/spec/model.ts";

const T0 = 1_000_000;

function probe(overrides: Partial<ProbeSpec> = {}): ProbeSpec {
  return {
    check: { kind: "http", path: "/healthz", expectStatus: [200, 399] },
    intervalMs: 100,
    timeoutMs: 50,
    failureThreshold: 3,
    successThreshold: 1,
    initialDelayMs: 0,
    ...overrides,
  };
}

/** A step: probe kind, and "ok" or the failure detail. */
type Step = [ProbeKind, "ok" | `fail:${string}`];

/** Feed `steps` (at T0+1, T0+2, …) and return every intermediate state, initial state first. */
function run(probes: ProbeSet, steps: Step[]): InstanceHealthState[] {
  const states = [initialHealthState(T0, probes)];
  steps.forEach(([kind, outcome], i) => {
    const result: ProbeResult = { kind, ok: outcome === "ok", at: T0 + i + 1, durationMs: 1 };
    if (outcome !== "ok") result.detail = outcome.slice("fail:".length);
    states.push(applyProbeResult(states.at(-1)!, result, probes));
  });
  return states;
}

function statesOf(probes: ProbeSet, steps: Step[]): HealthState[] {
  return run(probes, steps).map((s) => s.health.state);
}

function last(probes: ProbeSet, steps: Step[]): InstanceHealthState {
  return run(probes, steps).at(-1)!;
}

const ok = (kind: ProbeKind): Step => [kind, "ok"];
const fail = (kind: ProbeKind, detail = "status 503"): Step => [kind, `fail:${detail}`];
const times = (n: number, step: Step): Step[] => Array.from({ length: n }, () => step);

describe("initial health", () => {
  test("with a startup probe: starting, nothing good seen yet", () => {
    const health = initialHealth(T0, { startup: probe(), readiness: probe(), liveness: probe() });
    assert.deepEqual(health, {
      state: "starting",
      lastGoodAt: null,
      since: T0,
      reason: "waiting for the startup probe",
    });
  });

  test("with only a readiness probe: starting, waiting for readiness", () => {
    const health = initialHealth(T0, { readiness: probe() });
    assert.equal(health.state, "starting");
    assert.match(health.reason, /readiness/);
    assert.equal(health.lastGoodAt, null);
  });

  test("with no readiness and no startup probe: ready as soon as it runs", () => {
    const health = initialHealth(T0, { liveness: probe() });
    assert.deepEqual([health.state, health.since, health.lastGoodAt], ["ready", T0, T0]);
  });

  test("with no probes at all: ready as soon as it runs", () => {
    const health = initialHealth(T0, {});
    assert.deepEqual(health, { state: "ready", lastGoodAt: T0, since: T0, reason: "running (no probes)" });
  });

  test("the machine state wraps the same health and starts with empty streaks", () => {
    const probes = { startup: probe(), liveness: probe() };
    const state = initialHealthState(T0, probes);
    assert.deepEqual(state.health, initialHealth(T0, probes));
    assert.equal(state.startupPassed, false);
    assert.deepEqual(state.streaks.startup, { successes: 0, failures: 0 });
    assert.equal(initialHealthState(T0, { liveness: probe() }).startupPassed, true);
  });
});

describe("startup probe", () => {
  test("passing with a readiness probe: still starting, now waiting for readiness", () => {
    const probes = { startup: probe(), readiness: probe() };
    const after = last(probes, [ok("startup")]);
    assert.equal(after.health.state, "starting");
    assert.equal(after.startupPassed, true);
    assert.match(after.health.reason, /startup probe passed.*readiness/);
    assert.equal(after.health.since, T0, "no state change, so `since` stays");
  });

  test("passing without a readiness probe: ready", () => {
    const after = last({ startup: probe(), liveness: probe() }, [ok("startup")]);
    assert.equal(after.health.state, "ready");
    assert.equal(after.health.since, T0 + 1);
  });

  test("successThreshold boundary: needs that many consecutive successes", () => {
    const probes = { startup: probe({ successThreshold: 2 }) };
    assert.deepEqual(statesOf(probes, [ok("startup"), ok("startup")]), ["starting", "starting", "ready"]);
    // A failure in between resets the streak.
    assert.deepEqual(statesOf(probes, [ok("startup"), fail("startup"), ok("startup"), ok("startup")]), [
      "starting",
      "starting",
      "starting",
      "starting",
      "ready",
    ]);
  });

  test("failureThreshold boundary: unhealthy at exactly that many consecutive failures", () => {
    const probes = { startup: probe({ failureThreshold: 3 }), readiness: probe() };
    const states = run(probes, times(3, fail("startup", "connect ECONNREFUSED")));
    assert.deepEqual(
      states.map((s) => s.health.state),
      ["starting", "starting", "starting", "unhealthy"],
    );
    assert.equal(states[3]!.health.reason, "startup: 3 consecutive failures (connect ECONNREFUSED)");
    assert.equal(states[3]!.health.since, T0 + 3);
    assert.equal(states[3]!.startupPassed, false);
  });

  test("a success resets the failure streak", () => {
    // successThreshold 2, so the lone success does not pass startup; it only breaks the streak.
    const probes = { startup: probe({ failureThreshold: 3, successThreshold: 2 }) };
    const broken = [...times(2, fail("startup")), ok("startup"), ...times(2, fail("startup"))];
    assert.equal(last(probes, broken).health.state, "starting");
    assert.equal(last(probes, [...broken, fail("startup")]).health.state, "unhealthy");
  });

  test("liveness and readiness results are ignored until startup passes", () => {
    const probes = {
      startup: probe(),
      readiness: probe({ failureThreshold: 1 }),
      liveness: probe({ failureThreshold: 1 }),
    };
    const states = run(probes, [fail("liveness"), fail("readiness"), ok("readiness"), ok("liveness")]);
    for (let i = 1; i < states.length; i++) assert.equal(states[i], states[0], `step ${i} was not ignored`);
    assert.equal(states.at(-1)!.health.lastGoodAt, null);
  });

  test("once passed, further startup results are ignored", () => {
    const probes = { startup: probe({ failureThreshold: 1 }) };
    const states = run(probes, [ok("startup"), fail("startup")]);
    assert.equal(states[2], states[1]);
    assert.equal(states[2]!.health.state, "ready");
  });
});

describe("readiness probe", () => {
  test("without a startup probe: starting until the first success, then ready", () => {
    assert.deepEqual(statesOf({ readiness: probe() }, [ok("readiness")]), ["starting", "ready"]);
  });

  test("after startup: ready on success", () => {
    const probes = { startup: probe(), readiness: probe() };
    assert.deepEqual(statesOf(probes, [ok("startup"), ok("readiness")]), ["starting", "starting", "ready"]);
  });

  test("one failure is not a failure (failureThreshold 2)", () => {
    const probes = { readiness: probe({ failureThreshold: 2 }) };
    assert.deepEqual(statesOf(probes, [ok("readiness"), fail("readiness")]), ["starting", "ready", "ready"]);
    // Not consecutive: never reaches the threshold.
    const alternating = [ok("readiness"), fail("readiness"), ok("readiness"), fail("readiness")];
    assert.equal(last(probes, alternating).health.state, "ready");
  });

  test("failureThreshold boundary: unready at exactly that many consecutive failures", () => {
    const probes = { readiness: probe({ failureThreshold: 2 }) };
    const states = run(probes, [
      ok("readiness"),
      fail("readiness", "status 503"),
      fail("readiness", "status 503"),
    ]);
    assert.deepEqual(
      states.map((s) => s.health.state),
      ["starting", "ready", "ready", "unready"],
    );
    assert.equal(states[3]!.health.reason, "readiness: 2 consecutive failures (status 503)");
    assert.equal(states[3]!.health.since, T0 + 3);
  });

  test("failureThreshold 1: a single failure is a state change", () => {
    const probes = { readiness: probe({ failureThreshold: 1 }) };
    const after = last(probes, [ok("readiness"), fail("readiness", "timeout after 50ms")]);
    assert.equal(after.health.state, "unready");
    assert.equal(after.health.reason, "readiness: 1 consecutive failure (timeout after 50ms)");
  });

  test("failing from the start (never ready): unready at the threshold", () => {
    const probes = { startup: probe(), readiness: probe({ failureThreshold: 2 }) };
    assert.deepEqual(statesOf(probes, [ok("startup"), fail("readiness"), fail("readiness")]), [
      "starting",
      "starting",
      "starting",
      "unready",
    ]);
  });

  test("successThreshold boundary: back to ready only after that many consecutive successes", () => {
    const probes = { readiness: probe({ failureThreshold: 1, successThreshold: 2 }) };
    const steps = [ok("readiness"), ok("readiness"), fail("readiness"), ok("readiness"), ok("readiness")];
    assert.deepEqual(statesOf(probes, steps), [
      "starting",
      "starting",
      "ready",
      "unready",
      "unready",
      "ready",
    ]);
  });

  test("further failures while unready change nothing but the streak", () => {
    const probes = { readiness: probe({ failureThreshold: 1 }) };
    const states = run(probes, [ok("readiness"), fail("readiness"), fail("readiness", "other")]);
    assert.equal(states[3]!.health.since, states[2]!.health.since);
    assert.equal(states[3]!.health.reason, states[2]!.health.reason);
    assert.equal(states[3]!.streaks.readiness.failures, 2);
  });
});

describe("liveness probe", () => {
  test("one failure is not a failure; a success resets the streak", () => {
    const probes = { liveness: probe({ failureThreshold: 3 }) };
    const steps = [...times(2, fail("liveness")), ok("liveness"), ...times(2, fail("liveness"))];
    assert.ok(statesOf(probes, steps).every((s) => s === "ready"));
  });

  test("failureThreshold boundary: unhealthy at exactly that many consecutive failures", () => {
    const probes = { liveness: probe({ failureThreshold: 3 }) };
    const states = run(probes, times(3, fail("liveness", "timeout after 300ms")));
    assert.deepEqual(
      states.map((s) => s.health.state),
      ["ready", "ready", "ready", "unhealthy"],
    );
    assert.equal(states[3]!.health.reason, "liveness: 3 consecutive failures (timeout after 300ms)");
  });

  test("liveness fails an unready instance too", () => {
    const probes = { readiness: probe({ failureThreshold: 1 }), liveness: probe({ failureThreshold: 2 }) };
    const steps = [ok("readiness"), fail("readiness"), fail("liveness"), fail("liveness")];
    assert.deepEqual(statesOf(probes, steps), ["starting", "ready", "unready", "unready", "unhealthy"]);
  });

  test("liveness failures below the threshold do not touch readiness", () => {
    const probes = { readiness: probe(), liveness: probe({ failureThreshold: 3 }) };
    const after = last(probes, [ok("readiness"), fail("liveness"), fail("liveness")]);
    assert.equal(after.health.state, "ready");
    assert.deepEqual(after.streaks.liveness, { successes: 0, failures: 2 });
    assert.deepEqual(after.streaks.readiness, { successes: 1, failures: 0 });
  });

  test("liveness successes alone do not make a not-yet-ready instance ready", () => {
    const probes = { readiness: probe(), liveness: probe() };
    assert.equal(last(probes, times(5, ok("liveness"))).health.state, "starting");
  });
});

describe("unhealthy is terminal", () => {
  test("every later result is ignored", () => {
    const probes = {
      startup: probe({ failureThreshold: 1 }),
      readiness: probe(),
      liveness: probe(),
    };
    const states = run(probes, [fail("startup"), ok("startup"), ok("readiness"), ok("liveness")]);
    assert.equal(states[1]!.health.state, "unhealthy");
    for (let i = 2; i < states.length; i++) assert.equal(states[i], states[1]);
  });

  test("after a liveness failure, readiness cannot revive it", () => {
    const probes = { readiness: probe(), liveness: probe({ failureThreshold: 1 }) };
    const after = last(probes, [ok("readiness"), fail("liveness"), ok("readiness"), ok("readiness")]);
    assert.equal(after.health.state, "unhealthy");
    assert.match(after.health.reason, /^liveness: /);
  });
});

describe("lastGoodAt and since", () => {
  test("lastGoodAt follows the last ok result of any kind, and failures leave it alone", () => {
    const probes = { startup: probe(), readiness: probe(), liveness: probe({ failureThreshold: 5 }) };
    const states = run(probes, [
      fail("startup"),
      ok("startup"),
      ok("readiness"),
      ok("liveness"),
      fail("liveness"),
      fail("readiness"),
    ]);
    assert.deepEqual(
      states.map((s) => s.health.lastGoodAt),
      [null, null, T0 + 2, T0 + 3, T0 + 4, T0 + 4, T0 + 4],
    );
  });

  test("lastGoodAt moves on good results below the success threshold too", () => {
    const probes = { readiness: probe({ failureThreshold: 1, successThreshold: 3 }) };
    const after = last(probes, [fail("readiness"), ok("readiness")]);
    assert.equal(after.health.state, "unready");
    assert.equal(after.health.lastGoodAt, T0 + 2);
  });

  test("lastGoodAt never moves back: a good result that started earlier but answered later", () => {
    // Readiness and liveness leave at the same grid point; the liveness answer (started at T0+20)
    // comes first, the readiness answer (started at T0+10) after it.
    const probes = { readiness: probe(), liveness: probe() };
    const ready = applyProbeResult(
      initialHealthState(T0, probes),
      { kind: "readiness", ok: true, at: T0 + 1, durationMs: 1 },
      probes,
    );
    const afterLiveness = applyProbeResult(
      ready,
      { kind: "liveness", ok: true, at: T0 + 20, durationMs: 1 },
      probes,
    );
    const afterReadiness = applyProbeResult(
      afterLiveness,
      { kind: "readiness", ok: true, at: T0 + 10, durationMs: 15 },
      probes,
    );
    assert.equal(afterLiveness.health.lastGoodAt, T0 + 20);
    assert.equal(afterReadiness.health.lastGoodAt, T0 + 20);
  });

  test("since moves only on a state change", () => {
    const probes = { readiness: probe({ failureThreshold: 2 }) };
    const states = run(probes, [ok("readiness"), ok("readiness"), fail("readiness"), ok("readiness")]);
    assert.deepEqual(
      states.map((s) => s.health.since),
      [T0, T0 + 1, T0 + 1, T0 + 1, T0 + 1],
    );
  });
});

describe("robustness", () => {
  test("a result for a probe the instance does not have is ignored", () => {
    const probes = { liveness: probe({ failureThreshold: 1 }) };
    const states = run(probes, [fail("readiness"), fail("startup")]);
    assert.equal(states[1], states[0]);
    assert.equal(states[2], states[0]);
  });

  test("applying a result does not modify the input state", () => {
    const probes = { startup: probe({ failureThreshold: 1 }), readiness: probe() };
    const before = initialHealthState(T0, probes);
    const snapshot = structuredClone(before);
    applyProbeResult(before, { kind: "startup", ok: true, at: T0 + 1, durationMs: 1 }, probes);
    applyProbeResult(before, { kind: "startup", ok: false, at: T0 + 1, durationMs: 1 }, probes);
    assert.deepEqual(before, snapshot);
  });
});

describe("shouldRun", () => {
  const probes = { startup: probe({ failureThreshold: 1 }), readiness: probe(), liveness: probe() };
  const cases: Array<[string, Step[], Record<ProbeKind, boolean>]> = [
    ["before startup passes", [], { startup: true, readiness: false, liveness: false }],
    ["after startup passes", [ok("startup")], { startup: false, readiness: true, liveness: true }],
    ["when ready", [ok("startup"), ok("readiness")], { startup: false, readiness: true, liveness: true }],
    ["when unhealthy", [fail("startup")], { startup: false, readiness: false, liveness: false }],
  ];
  for (const [name, steps, expected] of cases) {
    test(name, () => {
      const state = last(probes, steps);
      for (const kind of ["startup", "readiness", "liveness"] as const) {
        assert.equal(shouldRun(kind, state), expected[kind], kind);
      }
    });
  }

  test("without a startup probe, readiness and liveness run from the start", () => {
    const state = initialHealthState(T0, { readiness: probe(), liveness: probe() });
    assert.deepEqual([shouldRun("readiness", state), shouldRun("liveness", state)], [true, true]);
  });
});
