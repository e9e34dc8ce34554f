import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  BrokenCircuitError,
  CircuitBreaker,
  type CircuitBreakerOptions,
  type CircuitState,
} from "../../../src/traffic/policies/circuitBreaker.ts";
import { fakeClock } from "./kit.ts";

function breaker(options: CircuitBreakerOptions = {}) {
  const clock = fakeClock(0);
  const changes: CircuitState["name"][] = [];
  const circuit = new CircuitBreaker({
    halfOpenAfterMs: 1_000,
    now: clock.now,
    onStateChange: (state) => changes.push(state.name),
    ...options,
  });
  return { circuit, clock, changes };
}

function fail(circuit: CircuitBreaker, times: number): void {
  for (let i = 0; i < times; i++) {
    assert.equal(circuit.tryPass(), true);
    circuit.failure();
  }
}

describe("CircuitBreaker", () => {
  it("opens after failureThreshold consecutive failures and refuses calls while open", () => {
    const { circuit, clock } = breaker();
    fail(circuit, 4);
    assert.equal(circuit.state.name, "closed");
    fail(circuit, 1);
    assert.deepEqual(circuit.state, { name: "open", since: 0, until: 1_000 });
    clock.advance(999);
    assert.equal(circuit.tryPass(), false);
  });

  it("counts consecutive failures only: a success in between resets the count", () => {
    const { circuit } = breaker({ minimumVolume: 1_000 });
    for (let round = 0; round < 5; round++) {
      fail(circuit, 4);
      circuit.success();
    }
    assert.equal(circuit.state.name, "closed");
  });

  it("opens on a failure rate over the minimum volume, which consecutive counting would miss", () => {
    const { circuit } = breaker({ failureRate: 0.5, minimumVolume: 20 });
    for (let i = 0; i < 9; i++) {
      circuit.success();
      circuit.failure();
    }
    circuit.success();
    assert.equal(circuit.state.name, "closed", "19 calls: below the minimum volume");
    circuit.failure();
    assert.equal(circuit.state.name, "open", "10 failures in 20 calls");
  });

  it("judges the failure rate over a sliding window: old calls age out", () => {
    const run = (ageOut: boolean): CircuitState["name"] => {
      const { circuit, clock } = breaker({ failureRate: 0.5, minimumVolume: 20, windowMs: 10_000 });
      for (let i = 0; i < 15; i++) {
        circuit.failure();
        circuit.success();
        if (i % 3 === 2) circuit.success();
      }
      assert.equal(circuit.state.name, "closed", "15 failures in 35 calls < 50 %");
      if (ageOut) clock.advance(10_000);
      // Then 12 failures in 18 calls (never 5 in a row): 27 / 53 ≥ 50 % if the old calls still count.
      for (let i = 0; i < 6; i++) {
        circuit.failure();
        circuit.failure();
        circuit.success();
      }
      return circuit.state.name;
    };
    assert.equal(run(false), "open", "control: within one window the rate trips");
    assert.equal(run(true), "closed", "after the window slid only 18 calls count: below the minimum volume");
  });

  it("goes half-open after halfOpenAfterMs, lets one probe through, and closes on its success", () => {
    const { circuit, clock, changes } = breaker();
    fail(circuit, 5);
    clock.advance(1_000);
    assert.equal(circuit.tryPass(), true, "the probe");
    assert.equal(circuit.state.name, "half-open");
    assert.equal(circuit.tryPass(), false, "only one probe at a time");
    circuit.success();
    assert.equal(circuit.state.name, "closed");
    assert.equal(circuit.tryPass(), true);
    assert.deepEqual(changes, ["open", "half-open", "closed"]);
  });

  it("reopens for another period when the probe fails", () => {
    const { circuit, clock } = breaker();
    fail(circuit, 5);
    clock.advance(1_500);
    assert.equal(circuit.tryPass(), true);
    circuit.failure();
    assert.deepEqual(circuit.state, { name: "open", since: 1_500, until: 2_500 });
    assert.equal(circuit.tryPass(), false);
  });

  it("with halfOpenMaxProbes 3 lets three probes out and needs three successes to close", () => {
    const { circuit, clock } = breaker({ halfOpenMaxProbes: 3 });
    fail(circuit, 5);
    clock.advance(1_000);
    assert.deepEqual(
      [circuit.tryPass(), circuit.tryPass(), circuit.tryPass(), circuit.tryPass()],
      [true, true, true, false],
    );
    circuit.success();
    circuit.success();
    assert.equal(circuit.state.name, "half-open");
    circuit.success();
    assert.equal(circuit.state.name, "closed");
  });

  it("writes off a probe that never reports, so the circuit cannot stay wedged half-open", () => {
    const { circuit, clock } = breaker();
    fail(circuit, 5);
    clock.advance(1_000);
    assert.equal(circuit.tryPass(), true);
    clock.advance(999);
    assert.equal(circuit.tryPass(), false);
    clock.advance(1);
    assert.equal(circuit.tryPass(), true, "a new probe after a whole period without a verdict");
  });

  it("ignores reports of calls that were already in flight when it opened", () => {
    const { circuit } = breaker();
    fail(circuit, 5);
    circuit.success();
    circuit.failure();
    assert.equal(circuit.state.name, "open");
  });

  it("forgets pre-outage failures once closed again", () => {
    const { circuit, clock } = breaker({ failureRate: 0.5, minimumVolume: 6 });
    circuit.success();
    fail(circuit, 5);
    clock.advance(1_000);
    assert.equal(circuit.tryPass(), true);
    circuit.success();
    assert.equal(circuit.state.name, "closed");
    // Had the 5 old failures been kept, this one failure (6 of 8) would reopen the circuit.
    circuit.failure();
    assert.equal(circuit.state.name, "closed");
  });

  it("execute runs the call when closed and reports its outcome", async () => {
    const { circuit } = breaker({ failureThreshold: 2 });
    assert.equal(await circuit.execute(async () => "ok"), "ok");
    await assert.rejects(
      circuit.execute(() => Promise.reject(new Error("down"))),
      /down/,
    );
    await assert.rejects(
      circuit.execute(() => Promise.reject(new Error("down"))),
      /down/,
    );
    assert.equal(circuit.state.name, "open");
  });

  it("execute throws BrokenCircuitError without calling fn while open", async () => {
    const { circuit, clock } = breaker();
    fail(circuit, 5);
    clock.advance(400);
    let called = false;
    await assert.rejects(
      circuit.execute(async () => {
        called = true;
      }),
      (error: unknown) => {
        assert.ok(error instanceof BrokenCircuitError);
        assert.equal(error.retryAfterMs, 600);
        return true;
      },
    );
    assert.equal(called, false);
  });
});
