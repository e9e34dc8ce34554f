import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { startRollout } from "../../../src/decide/rollout/advanceRollout.ts";
import type { RolloutEffect } from "../../../src/decide/rollout/types.ts";
import { HomeostatError } from "../../../src/errors.ts";
import { Harness, HEALTHY, kinds, T0, testService, window } from "./rolloutHarness.ts";

const BACK_TO_V1: RolloutEffect = { type: "set-weights", weights: { v1: 100, v2: 0 } };
const STOP_V2: RolloutEffect = { type: "stop-bank", bank: 1, release: "v2" };
const STOP_V1: RolloutEffect = { type: "stop-bank", bank: 0, release: "v1" };

function eventOf(effects: RolloutEffect[]): Extract<RolloutEffect, { type: "event" }> {
  const event = effects.find((effect) => effect.type === "event");
  assert.ok(event !== undefined && event.type === "event", `no event in ${JSON.stringify(effects)}`);
  return event;
}

describe("startRollout", () => {
  it("starts in phase starting with nothing decided yet", () => {
    const state = startRollout({
      id: 4,
      service: testService(),
      from: "v1",
      to: "v2",
      fromBank: 1,
      toBank: 0,
      now: T0,
    });
    assert.deepEqual(state, {
      id: 4,
      service: "api",
      from: "v1",
      to: "v2",
      fromBank: 1,
      toBank: 0,
      phase: "starting",
      stepIndex: 0,
      phaseStartedAt: T0,
      startedAt: T0,
      endedAt: null,
      verdicts: [],
      reason: null,
      failedAt: null,
      evidence: null,
      stableStopped: false,
    });
  });

  const refused: {
    name: string;
    from: string;
    to: string;
    fromBank: 0 | 1;
    toBank: 0 | 1;
    steps?: number[];
  }[] = [
    { name: "the same release", from: "v1", to: "v1", fromBank: 0, toBank: 1 },
    { name: "the same bank", from: "v1", to: "v2", fromBank: 0, toBank: 0 },
    { name: "an unknown release", from: "v1", to: "v9", fromBank: 0, toBank: 1 },
    { name: "steps not ending at 100", from: "v1", to: "v2", fromBank: 0, toBank: 1, steps: [10, 50] },
    { name: "steps not increasing", from: "v1", to: "v2", fromBank: 0, toBank: 1, steps: [50, 10, 100] },
  ];
  for (const c of refused) {
    it(`refuses ${c.name}`, () => {
      const service = testService(c.steps === undefined ? {} : { steps: c.steps });
      assert.throws(
        () =>
          startRollout({
            id: 1,
            service,
            from: c.from,
            to: c.to,
            fromBank: c.fromBank,
            toBank: c.toBank,
            now: T0,
          }),
        (error: unknown) => error instanceof HomeostatError && error.code === "HS_BAD_REQUEST",
      );
    });
  }
});

describe("advanceRollout: the happy path", () => {
  it("goes 10 → 50 → 100 %, soaks and proves the release with evidence", () => {
    const h = new Harness();
    h.idle(T0);
    h.idleUntil(T0 + 5_000);
    assert.equal(h.queries.length, 0, "no analysis before the new release takes traffic");

    h.traffic.set("v1", HEALTHY);
    h.traffic.set("v2", window(1_000, 0.004, 130));
    h.canaryReady = 3;
    const first = h.tick(T0 + 5_000);
    assert.deepEqual(first, [
      { type: "set-weights", weights: { v1: 90, v2: 10 } },
      {
        type: "event",
        event: "rollout-step",
        reason: "canary-ready",
        message: "v2: 3 of 3 instances ready; step 1 (10 %): v2 takes 10 % of traffic",
      },
    ]);
    assert.equal(h.state.phase, "stepping");
    assert.equal(h.state.stepIndex, 0);

    // A pass does not advance before the step's duration.
    h.idleUntil(T0 + 35_000);
    h.queries.length = 0;
    const second = h.tick(T0 + 35_000);
    assert.deepEqual(kinds(second), ["set-weights", "event:rollout-step"]);
    assert.deepEqual(second[0], { type: "set-weights", weights: { v1: 50, v2: 50 } });
    assert.deepEqual(h.queries, [
      { release: "v2", windowMs: 30_000 },
      { release: "v1", windowMs: 30_000 },
    ]);
    assert.equal(h.state.stepIndex, 1);
    assert.deepEqual(h.state.verdicts, [
      {
        step: 0,
        weight: 10,
        verdict: "pass",
        at: T0 + 35_000,
        reasons: [
          "error rate 0.4 % vs baseline 0.2 % (+0.2 points, at most +1 points allowed)",
          "p99 130 ms vs baseline 120 ms (within ×1.5 = 180 ms and at least +20 ms)",
        ],
        canary: window(1_000, 0.004, 130),
        baseline: HEALTHY,
      },
    ]);

    h.idleUntil(T0 + 65_000);
    const third = h.tick(T0 + 65_000);
    assert.deepEqual(third[0], { type: "set-weights", weights: { v1: 0, v2: 100 } });
    assert.equal(h.state.stepIndex, 2);

    // At 100 % the previous release serves nothing: the canary is judged against the SLO alone.
    h.idleUntil(T0 + 95_000);
    h.queries.length = 0;
    const promotion = h.tick(T0 + 95_000);
    assert.deepEqual(h.queries, [{ release: "v2", windowMs: 30_000 }]);
    assert.deepEqual(kinds(promotion), ["event:rollout-soaking"], "the warm stable bank keeps running");
    assert.equal(h.state.phase, "soaking");
    assert.equal(h.state.stableStopped, false);
    const last = h.state.verdicts.at(-1);
    assert.equal(last?.baseline, null);
    assert.deepEqual(last?.reasons, ["error rate 0.4 % ≤ SLO 1 %", "p99 130 ms ≤ SLO 300 ms"]);

    // The first soak judgement is recorded once, then the machine stays quiet.
    const verdictsBefore = h.state.verdicts.length;
    assert.deepEqual(h.tick(T0 + 95_250), []);
    assert.equal(h.state.verdicts.length, verdictsBefore + 1);
    assert.equal(h.state.verdicts.at(-1)?.step, -1);
    h.idleUntil(T0 + 215_000);
    assert.equal(
      h.queries.at(-1)?.windowMs,
      215_000 - 250 - 95_000,
      "the soak is judged over the soak so far",
    );

    const proof = h.tick(T0 + 215_000);
    const evidence = { windowMs: 120_000, requests: 1_000, errorRate: 0.004, p99Ms: 130, at: T0 + 215_000 };
    assert.deepEqual(proof.slice(0, 3), [
      { type: "mark-release", version: "v2", status: "proven", evidence },
      { type: "mark-release", version: "v1", status: "superseded" },
      STOP_V1,
    ]);
    assert.deepEqual(kinds(proof), ["mark-release", "mark-release", "stop-bank", "event:rollout-proven"]);
    assert.equal(h.state.phase, "proven");
    assert.deepEqual(h.state.evidence, evidence);
    assert.equal(h.state.endedAt, T0 + 215_000);
    assert.equal(h.state.failedAt, null);

    h.idle(T0 + 215_000);
    h.idle(T0 + 10_000_000);
  });

  it("judges a short soak over every second it touched, not the current one that has barely begun", () => {
    const h = new Harness({ steps: [50, 100], stepDurationMs: 1_000, soakMs: 1_000 });
    h.startStepping();
    h.tick(T0 + 6_000);
    h.tick(T0 + 7_100);
    assert.equal(h.state.phase, "soaking");
    // 1 050 ms later the current second is 150 ms old (not even reported by the data plane yet):
    // the window reaches back to the start of the second the soak began in.
    h.tick(T0 + 8_150);
    assert.equal(h.queries.at(-1)?.windowMs, 1_150);
    assert.equal(h.state.phase, "proven");
    assert.equal(h.state.evidence?.windowMs, 1_150);
  });

  it("judges each step over every second it touched", () => {
    const h = new Harness({ steps: [50, 100], stepDurationMs: 1_000 });
    h.startStepping();
    h.tick(T0 + 6_300);
    assert.equal(h.state.stepIndex, 1);
    // Exactly one step duration later: the window is not the current second alone.
    h.tick(T0 + 7_300);
    assert.deepEqual(h.queries.slice(-1), [{ release: "v2", windowMs: 1_300 }]);
  });

  it("judges the soak over at most the history the data plane keeps, and says so in the evidence", () => {
    const h = new Harness({ soakMs: 600_000 });
    h.startStepping();
    const soakStart = h.passAllSteps();
    h.tick(soakStart + 600_000);
    assert.equal(h.state.phase, "proven");
    assert.equal(h.queries.at(-1)?.windowMs, 300_000);
    assert.equal(h.state.evidence?.windowMs, 300_000);
  });

  it("with soakMs 0, proves the release on its passing 100 % step", () => {
    const h = new Harness({ soakMs: 0, steps: [25, 100] });
    h.startStepping();
    h.tick(T0 + 35_000);
    const effects = h.tick(T0 + 65_000);
    assert.equal(h.state.phase, "proven");
    assert.deepEqual(kinds(effects), ["mark-release", "mark-release", "stop-bank", "event:rollout-proven"]);
    assert.deepEqual(h.state.evidence, {
      windowMs: 30_000,
      requests: 1_000,
      errorRate: 0.002,
      p99Ms: 120,
      at: T0 + 65_000,
    });
  });
});

describe("advanceRollout: rolling back", () => {
  it("rolls a failing canary back at step 1, weights first, as soon as it fails", () => {
    const h = new Harness();
    h.startStepping();
    h.traffic.set("v2", window(200, 0.08, 130));
    const effects = h.tick(T0 + 6_000);
    const reason =
      "step 1 (10 %) failed: error rate 8 % vs baseline 0.2 % (+7.8 points, more than +1 points allowed)";
    assert.deepEqual(effects, [
      BACK_TO_V1,
      STOP_V2,
      { type: "mark-release", version: "v2", status: "failed" },
      {
        type: "event",
        event: "rollout-rolling-back",
        reason: "canary-failed",
        message: `${reason}; traffic back on v1, v2 stopping`,
      },
    ]);
    assert.equal(h.state.phase, "rolling-back");
    assert.equal(h.state.reason, reason);
    assert.equal(h.state.failedAt, T0 + 6_000);
    assert.equal(h.state.verdicts.at(-1)?.verdict, "fail");

    // Next call: the weights are set and the stop issued, so the rollout is over.
    assert.deepEqual(h.tick(T0 + 6_250), []);
    assert.equal(h.state.phase, "rolled-back");
    assert.equal(h.state.endedAt, T0 + 6_250);
    h.idle(T0 + 7_000);
  });

  it("rolls back on a p99 regression found at a later step", () => {
    const h = new Harness();
    h.startStepping();
    h.tick(T0 + 35_000);
    h.traffic.set("v2", window(1_000, 0.002, 400));
    const effects = h.tick(T0 + 36_000);
    assert.deepEqual(kinds(effects), [
      "set-weights",
      "stop-bank",
      "mark-release",
      "event:rollout-rolling-back",
    ]);
    assert.match(h.state.reason ?? "", /^step 2 \(50 %\) failed: p99 400 ms vs baseline 120 ms/);
  });

  it("keeps judging an inconclusive step, then aborts at its deadline without appending verdicts 4 times a second", () => {
    const h = new Harness();
    h.startStepping();
    h.tick(T0 + 35_000);
    assert.equal(h.state.stepIndex, 1);
    h.traffic.set("v2", window(12, 0, 100));
    h.idleUntil(T0 + 65_000);

    // Step duration over, no verdict yet: recorded once, nothing else happens.
    assert.deepEqual(h.tick(T0 + 65_000), []);
    assert.equal(h.state.verdicts.length, 2);
    assert.equal(h.state.verdicts.at(-1)?.verdict, "inconclusive");
    h.idleUntil(T0 + 155_000);
    assert.equal(h.queries.at(-1)?.windowMs, 155_000 - 250 - 35_000, "the window grows with the step");

    const effects = h.tick(T0 + 155_000);
    const reason =
      "step 2 (50 %) had no conclusive verdict within its deadline: canary served 12 requests, need 50";
    assert.deepEqual(effects, [
      BACK_TO_V1,
      STOP_V2,
      { type: "mark-release", version: "v2", status: "rolled-back" },
      {
        type: "event",
        event: "rollout-rolling-back",
        reason: "step-deadline",
        message: `${reason}; traffic back on v1, v2 stopping`,
      },
    ]);
    assert.equal(h.state.reason, reason);
    assert.deepEqual(
      h.state.verdicts.map((v) => `${v.step}:${v.verdict}`),
      ["0:pass", "1:inconclusive", "1:inconclusive"],
    );
  });

  it("treats NaN figures as no data: a step never passes on them", () => {
    const h = new Harness();
    h.startStepping();
    h.traffic.set("v2", window(1_000, Number.NaN, 100));
    h.tick(T0 + 35_000);
    assert.equal(h.state.stepIndex, 0);
    assert.equal(h.state.verdicts.at(-1)?.verdict, "inconclusive");
    h.tick(T0 + 125_000);
    assert.equal(h.state.phase, "rolling-back");
  });

  it("aborts when the new instances are never ready", () => {
    const h = new Harness();
    h.canaryReady = 1;
    h.idleUntil(T0 + 120_000);
    h.idle(T0 + 120_000);
    const effects = h.tick(T0 + 120_001);
    const reason = "new instances not ready within 2m: 1 of 3 ready";
    assert.deepEqual(effects, [
      BACK_TO_V1,
      STOP_V2,
      { type: "mark-release", version: "v2", status: "rolled-back" },
      {
        type: "event",
        event: "rollout-rolling-back",
        reason: "instances-not-ready",
        message: `${reason}; traffic back on v1, v2 stopping`,
      },
    ]);
    assert.equal(h.state.reason, reason);
    assert.equal(h.queries.length, 0);
  });

  it("rolls back when the soak breaks the SLO", () => {
    const h = new Harness();
    h.startStepping();
    const soakStart = h.passAllSteps();
    h.tick(soakStart + 5_000);
    h.traffic.set("v2", window(1_000, 0.031, 120));
    const effects = h.tick(soakStart + 10_000);
    assert.deepEqual(effects.slice(0, 3), [
      BACK_TO_V1,
      STOP_V2,
      { type: "mark-release", version: "v2", status: "failed" },
    ]);
    assert.equal(eventOf(effects).reason, "soak-failed");
    assert.equal(h.state.reason, "soak: error rate 3.1 % > SLO 1 %");
    assert.equal(h.state.verdicts.at(-1)?.step, -1);
    assert.equal(h.state.verdicts.at(-1)?.verdict, "fail");
    assert.equal(h.state.evidence, null);
  });

  it("aborts a soak that ends without enough traffic: a release nobody used is not proven", () => {
    const h = new Harness();
    h.startStepping();
    const soakStart = h.passAllSteps();
    h.traffic.set("v2", window(12, 0, 100));
    h.tick(soakStart + 1_000);
    h.idleUntil(soakStart + 120_000);
    const effects = h.tick(soakStart + 120_000);
    assert.deepEqual(kinds(effects), [
      "set-weights",
      "stop-bank",
      "mark-release",
      "event:rollout-rolling-back",
    ]);
    assert.deepEqual(effects[2], { type: "mark-release", version: "v2", status: "rolled-back" });
    assert.equal(h.state.reason, "soak ended without enough traffic to prove v2 (12 requests, need 50)");
  });

  it("does not end a soak on too little traffic while the data plane's figures are late; proves it once they arrive", () => {
    const h = new Harness();
    h.startStepping();
    const soakStart = h.passAllSteps();
    h.traffic.set("v2", window(12, 0, 100));
    h.tick(soakStart + 1_000);
    h.idleUntil(soakStart + 120_000);
    // The soak is over, the window short of requests, but its last 2 s were not reported yet.
    h.statsLagMs = 2_000;
    h.tick(soakStart + 120_000);
    assert.equal(h.state.phase, "soaking", "waits for the figures instead of rolling back");
    h.statsLagMs = 200;
    h.traffic.set("v2", window(400, 0, 100));
    h.tick(soakStart + 121_000);
    assert.equal(h.state.phase, "proven");
  });

  it("rolls back a soak whose figures stay late past a step deadline, and says why", () => {
    const h = new Harness();
    h.startStepping();
    const soakStart = h.passAllSteps();
    h.traffic.set("v2", window(12, 0, 100));
    h.statsLagMs = 2_000;
    h.tick(soakStart + 120_000);
    assert.equal(h.state.phase, "soaking");
    h.tick(soakStart + 120_000 + h.service.deploy.stepDeadlineMs);
    assert.equal(h.state.phase, "rolling-back");
    assert.equal(
      h.state.reason,
      "soak ended without enough traffic to prove v2 (12 requests, need 50; the data plane's figures are 2000 ms behind)",
    );
  });

  it("aborts a soak whose latency is unknown at its end", () => {
    const h = new Harness();
    h.startStepping();
    const soakStart = h.passAllSteps();
    h.traffic.set("v2", window(1_000, 0, null));
    h.tick(soakStart + 120_000);
    assert.equal(h.state.phase, "rolling-back");
    assert.equal(
      h.state.reason,
      "soak ended without a conclusive verdict on v2: p99 unknown: no data is never a pass",
    );
  });

  it("does not wait for the stable bank when the rollback happens before any traffic moved", () => {
    const h = new Harness();
    h.stableReady = 0;
    h.canaryReady = 0;
    const effects = h.tick(T0 + 120_001);
    assert.deepEqual(effects.slice(0, 2), [BACK_TO_V1, STOP_V2]);
  });
});

describe("advanceRollout: keepStableWarm false", () => {
  it("stops the previous bank at promotion and not again when proven", () => {
    const h = new Harness({ keepStableWarm: false });
    h.startStepping();
    h.tick(T0 + 35_000);
    h.tick(T0 + 65_000);
    const promotion = h.tick(T0 + 95_000);
    assert.deepEqual(promotion[0], STOP_V1);
    assert.deepEqual(kinds(promotion), ["stop-bank", "event:rollout-soaking"]);
    assert.match(eventOf(promotion).message, /v1 stopped \(keepStableWarm: false\)/);
    assert.equal(h.state.stableStopped, true);

    h.stableReady = 0;
    const proof = h.tick(T0 + 215_000);
    assert.equal(h.state.phase, "proven");
    assert.deepEqual(kinds(proof), ["mark-release", "mark-release", "event:rollout-proven"]);
  });

  it("a later rollback waits for the restarted stable bank before moving traffic", () => {
    const h = new Harness({ keepStableWarm: false });
    h.startStepping();
    const soakStart = h.passAllSteps();
    h.stableReady = 0;
    h.traffic.set("v2", window(1_000, 0.2, 120));
    const decision = h.tick(soakStart + 3_000);
    assert.deepEqual(decision, [
      { type: "mark-release", version: "v2", status: "failed" },
      {
        type: "event",
        event: "rollout-rolling-back",
        reason: "soak-failed",
        message:
          "soak: error rate 20 % > SLO 1 %; v2 keeps its traffic until v1 is ready again (0 of 3 ready)",
      },
    ]);
    assert.equal(h.state.phase, "rolling-back");
    assert.equal(h.state.failedAt, soakStart + 3_000);
    assert.equal(h.state.stableStopped, true);

    h.idle(soakStart + 3_250);
    h.stableReady = 2;
    h.idleUntil(soakStart + 20_000);

    h.stableReady = 3;
    const restore = h.tick(soakStart + 20_000);
    assert.deepEqual(restore, [
      BACK_TO_V1,
      STOP_V2,
      {
        type: "event",
        event: "rollout-traffic-restored",
        reason: "stable-ready",
        message: "v1 ready again (3 of 3): traffic back on v1, v2 stopping",
      },
    ]);
    assert.equal(h.state.phase, "rolling-back");
    assert.equal(h.state.stableStopped, false);

    assert.deepEqual(h.tick(soakStart + 20_250), []);
    assert.equal(h.state.phase, "rolled-back");
    assert.equal(h.state.endedAt, soakStart + 20_250);
  });

  it("never sends traffic back to a warm stable bank that has no ready instance", () => {
    const h = new Harness();
    h.startStepping();
    h.stableReady = 0;
    h.traffic.set("v2", window(200, 0.5, 130));
    const decision = h.tick(T0 + 6_000);
    assert.deepEqual(kinds(decision), ["mark-release", "event:rollout-rolling-back"]);
    h.stableReady = 2;
    h.idle(T0 + 6_250);
    h.stableReady = 3;
    assert.deepEqual(h.tick(T0 + 6_500).slice(0, 2), [BACK_TO_V1, STOP_V2]);
  });
});

describe("advanceRollout: idempotence", () => {
  /** Each scripted moment is called twice with the same inputs: the second call adds no effect. */
  function script(keepStableWarm: boolean, breakAt: "never" | "step" | "soak"): RolloutEffect[][] {
    const h = new Harness({ keepStableWarm });
    const all: RolloutEffect[][] = [];
    const twice = (at: number): void => {
      all.push(h.tick(at));
      const again = h.tick(at);
      assert.deepEqual(again, [], `second call at +${at - T0}ms in ${h.state.phase} repeated effects`);
      const after = h.state;
      h.tick(at);
      assert.equal(h.state, after, `third call at +${at - T0}ms changed the state`);
    };
    twice(T0);
    h.traffic.set("v1", HEALTHY);
    h.traffic.set("v2", HEALTHY);
    h.canaryReady = 3;
    for (let at = T0 + 1_000; at <= T0 + 400_000; at += 1_000) {
      if (breakAt === "step" && at === T0 + 40_000) h.traffic.set("v2", window(500, 0.3, 120));
      if (breakAt === "soak" && at === T0 + 100_000) {
        h.traffic.set("v2", window(500, 0.3, 120));
        if (!keepStableWarm) h.stableReady = 0;
      }
      if (breakAt === "soak" && !keepStableWarm && at === T0 + 130_000) h.stableReady = 3;
      twice(at);
    }
    assert.ok(h.state.phase === "proven" || h.state.phase === "rolled-back", h.state.phase);
    return all;
  }

  for (const keepStableWarm of [true, false]) {
    for (const breakAt of ["never", "step", "soak"] as const) {
      it(`repeats no effect (keepStableWarm ${keepStableWarm}, failure: ${breakAt})`, () => {
        const effects = script(keepStableWarm, breakAt).flat();
        const weights = effects.filter((effect) => effect.type === "set-weights");
        const stops = effects.filter((effect) => effect.type === "stop-bank");
        if (breakAt === "never") {
          assert.equal(weights.length, 3);
          assert.deepEqual(stops, [STOP_V1]);
        } else {
          assert.deepEqual(weights.at(-1), BACK_TO_V1);
          const expectedStops = breakAt === "soak" && !keepStableWarm ? [STOP_V1, STOP_V2] : [STOP_V2];
          assert.deepEqual(stops, expectedStops);
        }
      });
    }
  }
});
