/**
 * Drives the pure rollout machine with fake time and fake traffic figures, the way the controller
 * does every 250 ms: set the world, call `tick`, read the effects.
 */

import assert from "node:assert/strict";
import { advanceRollout, startRollout } from "../../../src/decide/rollout/advanceRollout.ts";
import type { RolloutEffect, RolloutState, WindowStats } from "../../../src/decide/rollout/types.ts";
import type { ServiceSpec } from "../../../src/spec/model.ts";
import { type DeployOverrides, makeService } from "../../helpers/fleetFixture.ts";

export const T0 = 1_700_000_000_000;

/** A window with `requests` requests at `errorRate` and `p99Ms`. */
export function window(requests: number, errorRate: number | null, p99Ms: number | null): WindowStats {
  return {
    requests,
    errors: errorRate === null ? 0 : Math.round(requests * errorRate),
    errorRate,
    p50Ms: p99Ms === null ? null : p99Ms / 2,
    p99Ms,
    rps: requests / 30,
  };
}

export const HEALTHY = window(1_000, 0.002, 120);
export const NO_TRAFFIC = window(0, null, null);

/** 10 / 50 / 100 % steps of 30 s with a 2 min deadline, a 2 min soak, 50 requests a side. */
export const TEST_DEPLOY: DeployOverrides = {
  steps: [10, 50, 100],
  stepDurationMs: 30_000,
  stepDeadlineMs: 120_000,
  soakMs: 120_000,
  keepStableWarm: true,
  analysis: { minRequests: 50, maxErrorRateIncrease: 0.01, maxP99Ratio: 1.5, minP99IncreaseMs: 20 },
};

export function testService(deploy: DeployOverrides = {}): ServiceSpec {
  return makeService({
    name: "api",
    replicas: 3,
    versions: ["v1", "v2"],
    deploy: { ...TEST_DEPLOY, ...deploy },
    slo: { errorRate: 0.01, p99Ms: 300 },
  });
}

export class Harness {
  readonly service: ServiceSpec;
  state: RolloutState;
  now = T0;
  canaryReady = 0;
  canaryWanted = 3;
  stableReady = 3;
  /** How far the data plane's figures lag behind `now` (0: counted in this process). */
  statsLagMs = 0;
  /** Current figures per release; a release without an entry served nothing. */
  readonly traffic = new Map<string, WindowStats>();
  /** Every stats query the machine made, in order. */
  readonly queries: { release: string; windowMs: number }[] = [];

  constructor(deploy: DeployOverrides = {}) {
    this.service = testService(deploy);
    this.state = startRollout({
      id: 1,
      service: this.service,
      from: "v1",
      to: "v2",
      fromBank: 0,
      toBank: 1,
      now: T0,
    });
  }

  /** One call of the machine at `at` (default: the current time); the state moves on. */
  tick(at: number = this.now): RolloutEffect[] {
    this.now = at;
    const { state, effects } = advanceRollout(this.state, this.service, {
      now: at,
      canaryReady: this.canaryReady,
      canaryWanted: this.canaryWanted,
      stableReady: this.stableReady,
      statsLagMs: this.statsLagMs,
      stats: (release, windowMs) => {
        this.queries.push({ release, windowMs });
        return this.traffic.get(release) ?? NO_TRAFFIC;
      },
    });
    this.state = state;
    return effects;
  }

  /** A tick that must change nothing: same state object, no effects. */
  idle(at: number = this.now): void {
    const before = this.state;
    const effects = this.tick(at);
    assert.deepEqual(effects, [], `expected no effects at +${at - T0}ms in ${before.phase}`);
    assert.equal(this.state, before, `expected the same state object at +${at - T0}ms`);
  }

  /** Ticks every 250 ms from now up to (excluding) `until`, asserting nothing happens. */
  idleUntil(until: number): void {
    for (let at = this.now + 250; at < until; at += 250) this.idle(at);
  }

  /** Healthy traffic on both releases, new instances ready: drives to `stepping` step 0 at T0 + 5 s. */
  startStepping(): void {
    this.traffic.set("v1", HEALTHY);
    this.traffic.set("v2", HEALTHY);
    this.canaryReady = 3;
    this.tick(T0 + 5_000);
    assert.equal(this.state.phase, "stepping");
  }

  /** From `stepping` step 0 with healthy traffic, passes every step: `soaking` at the returned time. */
  passAllSteps(): number {
    let at = this.state.phaseStartedAt;
    while (this.state.phase === "stepping") {
      at += this.service.deploy.stepDurationMs;
      this.tick(at);
    }
    assert.equal(this.state.phase, "soaking");
    return at;
  }
}

/** The types of `effects`, for order checks. */
export function kinds(effects: RolloutEffect[]): string[] {
  return effects.map((effect) => (effect.type === "event" ? `event:${effect.event}` : effect.type));
}
