import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HomeostatError } from "../../../src/errors.ts";
import { AdaptiveLimit } from "../../../src/traffic/policies/adaptiveLimit.ts";

/** Establish a long-term RTT of `rttMs` without moving the limit (app-limited samples). */
function warmedUp(rttMs = 10, options: ConstructorParameters<typeof AdaptiveLimit>[0] = {}): AdaptiveLimit {
  const limit = new AdaptiveLimit(options);
  for (let i = 0; i < 600; i++) limit.onSample(rttMs, 2, false);
  assert.equal(limit.limit, options.initial ?? 20);
  return limit;
}

describe("AdaptiveLimit", () => {
  it("starts at initial with the documented defaults", () => {
    assert.equal(new AdaptiveLimit().limit, 20);
    assert.equal(new AdaptiveLimit({ initial: 7 }).limit, 7);
  });

  it("does not grow from app-limited samples, however many and however fast", () => {
    const limit = new AdaptiveLimit();
    for (let i = 0; i < 20_000; i++) limit.onSample(5, 1 + (i % 10), false);
    assert.equal(limit.limit, 20, "peak in-flight 10 of 20: never saturated");
  });

  it("grows when saturated at steady latency", () => {
    const limit = warmedUp();
    for (let i = 0; i < 2_000; i++) limit.onSample(10, limit.limit, false);
    assert.ok(limit.limit > 30, `limit ${limit.limit}`);
  });

  it("decreases as latency rises under load", () => {
    const limit = warmedUp();
    const seen: number[] = [];
    for (let i = 0; i < 600; i++) {
      limit.onSample(10 + i * 0.2, limit.limit, false);
      seen.push(limit.limit);
    }
    assert.ok(limit.limit < 20, `limit ${limit.limit} after latency went from 10 to 130 ms`);
    assert.ok(limit.limit < Math.max(...seen));
  });

  it("decreases on a latency jump even when app-limited (it only refuses to grow then)", () => {
    const limit = warmedUp();
    for (let i = 0; i < 100; i++) limit.onSample(40, 2, false);
    assert.ok(limit.limit < 20, `limit ${limit.limit}`);
  });

  it("decreases multiplicatively under drops, once per window, down to min and no further", () => {
    const limit = warmedUp();
    for (let i = 0; i < 19; i++) limit.onSample(0, 20, true);
    assert.equal(limit.limit, 20, "window of 20 samples (the peak in flight) not closed yet");
    limit.onSample(0, 20, true);
    assert.equal(limit.limit, 18, "20 × 0.9: one decrease for the whole window of drops");
    for (let i = 0; i < 2_000; i++) limit.onSample(0, limit.limit, true);
    assert.equal(limit.limit, 1);
  });

  it("does not drift up under steady timeouts (concurrency-limits#137)", () => {
    for (const timeoutLatency of [0.1, 1_000]) {
      const limit = warmedUp();
      let highest = limit.limit;
      for (let i = 0; i < 10_000; i++) {
        const dropped = i % 4 === 3;
        limit.onSample(dropped ? timeoutLatency : 10, limit.limit, dropped);
        highest = Math.max(highest, limit.limit);
      }
      assert.equal(highest, 20, `rose to ${highest} with timeouts reported at ${timeoutLatency} ms`);
      assert.ok(limit.limit <= 10, `ended at ${limit.limit}`);
    }
  });

  it("never feeds a dropped request's latency into its RTT estimates (concurrency-limits#176)", () => {
    const limit = warmedUp(50);
    for (let i = 0; i < 2_000; i++) {
      const dropped = i % 2 === 1;
      limit.onSample(dropped ? 0.01 : 50, 10, dropped);
    }
    assert.equal(limit.rtt.long, 50);
    assert.equal(limit.rtt.lastWindow, 50);
  });

  it("recovers after drops stop, growing again under saturated load", () => {
    const limit = warmedUp();
    for (let i = 0; i < 500; i++) limit.onSample(0, limit.limit, true);
    assert.equal(limit.limit, 1);
    for (let i = 0; i < 3_000; i++) limit.onSample(10, limit.limit, false);
    assert.ok(limit.limit >= 20, `limit ${limit.limit}`);
  });

  it("stays within [min, max]", () => {
    const limit = new AdaptiveLimit({ min: 3, max: 50, initial: 10 });
    let low = limit.limit;
    let high = limit.limit;
    for (let i = 0; i < 50_000; i++) {
      limit.onSample(10, limit.limit, false);
      high = Math.max(high, limit.limit);
    }
    assert.equal(high, 50);
    for (let i = 0; i < 5_000; i++) {
      limit.onSample(0, limit.limit, true);
      low = Math.min(low, limit.limit);
    }
    assert.equal(low, 3);
    assert.equal(limit.limit, 3);
  });

  it("tells onChange each new whole-number limit", () => {
    const changes: number[] = [];
    const limit = new AdaptiveLimit({ onChange: (value) => changes.push(value) });
    for (let i = 0; i < 60; i++) limit.onSample(0, 20, true);
    assert.deepEqual(changes, [18, 16, 14]);
    assert.equal(limit.limit, 14);
  });

  it("ignores nonsense latencies instead of poisoning the estimate", () => {
    const limit = warmedUp();
    for (let i = 0; i < 100; i++) limit.onSample(i % 2 ? Number.NaN : -5, 20, false);
    assert.equal(limit.rtt.long, 10);
    assert.equal(limit.limit, 20);
  });

  it("does not take the caller's own lag for the service's latency (ownLagMs)", () => {
    // A proxy short of CPU reads every answer 30 ms late while the upstream still answers in 10 ms.
    let lagMs = 0;
    const limit = warmedUp(10, { ownLagMs: () => lagMs });
    lagMs = 30;
    for (let i = 0; i < 600; i++) limit.onSample(10 + lagMs, limit.limit, false);
    assert.ok(limit.limit >= 20, `kept (or grew) its limit: ${limit.limit}`);
    assert.equal(limit.rtt.long, 10);
    // The same samples without the correction read as a 4× latency rise, and the limit shrinks.
    const blind = warmedUp(10);
    for (let i = 0; i < 600; i++) blind.onSample(40, blind.limit, false);
    assert.ok(blind.limit < 15, `shrank to ${blind.limit}`);
    // A sample no longer than the lag says nothing about the service: not averaged at all.
    lagMs = 0;
    const swallowed = warmedUp(10, { ownLagMs: () => lagMs });
    lagMs = 50;
    for (let i = 0; i < 100; i++) swallowed.onSample(30, 2, false);
    assert.equal(swallowed.rtt.long, 10);
    // A real slowdown of the upstream still shows through the correction.
    lagMs = 0;
    const slow = warmedUp(10, { ownLagMs: () => lagMs });
    lagMs = 5;
    for (let i = 0; i < 600; i++) slow.onSample(40 + lagMs, slow.limit, false);
    assert.ok(slow.limit < 15, `shrank to ${slow.limit}`);
  });

  it("refuses inconsistent options", () => {
    for (const options of [{ min: 10, max: 5 }, { initial: 500 }, { smoothing: 0 }, { decrease: 1.5 }]) {
      assert.throws(
        () => new AdaptiveLimit(options),
        (error: unknown) => error instanceof HomeostatError && error.code === "HS_POLICY_INVALID",
      );
    }
  });
});
