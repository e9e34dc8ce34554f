import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HomeostatError } from "../../../src/errors.ts";
import { RetryBudget } from "../../../src/traffic/policies/retryBudget.ts";
import { type FakeClock, fakeClock } from "./kit.ts";

/**
 * Drive `seconds` of traffic at `perSecond` original requests, each failing every attempt and
 * asking for up to `retriesWanted` retries (stopping at the first refusal, as a proxy would).
 */
function failingStream(
  budget: RetryBudget,
  clock: FakeClock,
  options: { seconds: number; perSecond: number; retriesWanted: number },
  eachSecond: () => void = () => {},
): { requests: number; retries: number } {
  let requests = 0;
  let retries = 0;
  const stepMs = 1_000 / options.perSecond;
  for (let second = 0; second < options.seconds; second++) {
    for (let i = 0; i < options.perSecond; i++) {
      clock.set(second * 1_000 + i * stepMs);
      budget.recordRequest();
      requests++;
      for (let r = 0; r < options.retriesWanted && budget.tryAcquireRetry(); r++) retries++;
    }
    // Still inside this second: the window has not slid since the last request.
    eachSecond();
  }
  return { requests, retries };
}

describe("RetryBudget", () => {
  it("caps retries at about 20 % of requests against a 100 % failing stream", () => {
    const clock = fakeClock(0);
    const budget = new RetryBudget({ now: clock.now });
    let worstExcess = 0;
    const { requests, retries } = failingStream(
      budget,
      clock,
      { seconds: 60, perSecond: 100, retriesWanted: 2 },
      () => {
        const stats = budget.stats();
        worstExcess = Math.max(worstExcess, stats.retries - stats.allowed);
      },
    );
    assert.equal(requests, 6_000);
    // Without a budget this stream would send 12 000 retries (2 per request).
    const ratio = retries / requests;
    assert.ok(ratio >= 0.19 && ratio <= 0.22, `retry ratio ${ratio} (${retries} retries)`);
    // At every point, the window holds no more retries than it allows (+1: the one that filled it).
    assert.ok(worstExcess <= 1, `window exceeded its allowance by ${worstExcess}`);
    const stats = budget.stats();
    assert.ok(stats.refused > 0);
    assert.equal(stats.requests, 1_000, "10 s window at 100 requests/s");
    assert.ok(stats.retries <= 201, `${stats.retries} retries in the last window`);
  });

  it("honours the floor at low request rates: every retry of a quiet service goes through", () => {
    const clock = fakeClock(0);
    const budget = new RetryBudget({ now: clock.now });
    const { requests, retries } = failingStream(budget, clock, {
      seconds: 60,
      perSecond: 1,
      retriesWanted: 2,
    });
    // 20 % of 1 request/s would allow almost nothing; the 5/s floor (50 per 10 s) allows 2 per second.
    assert.equal(retries, 2 * requests);
  });

  it("makes the floor a rate over the window: minPerSecond × window seconds retries, then refusal", () => {
    const clock = fakeClock(0);
    const budget = new RetryBudget({ minPerSecond: 5, windowMs: 10_000, now: clock.now });
    let granted = 0;
    for (let i = 0; i < 80; i++) if (budget.tryAcquireRetry()) granted++;
    assert.equal(granted, 50);
    assert.deepEqual(budget.stats(), { requests: 0, retries: 50, refused: 30, allowed: 50 });
  });

  it("charges retries at acquisition, so retries waiting in backoff already count", () => {
    const clock = fakeClock(0);
    const budget = new RetryBudget({ now: clock.now });
    for (let i = 0; i < 1_000; i++) budget.recordRequest();
    // 1 000 failures in a burst all want a retry; none has been sent yet (all sleeping in backoff).
    let granted = 0;
    for (let i = 0; i < 1_000; i++) if (budget.tryAcquireRetry()) granted++;
    assert.equal(granted, 200);
  });

  it("slides the window: retries older than the window stop counting", () => {
    const clock = fakeClock(0);
    const budget = new RetryBudget({ ratio: 0, minPerSecond: 1, windowMs: 10_000, now: clock.now });
    for (let i = 0; i < 10; i++) assert.equal(budget.tryAcquireRetry(), true);
    assert.equal(budget.tryAcquireRetry(), false);
    clock.set(9_999);
    assert.equal(budget.tryAcquireRetry(), false, "still inside the window");
    clock.set(10_000);
    assert.equal(budget.stats().retries, 0, "the first second's retries left the window");
    assert.equal(budget.tryAcquireRetry(), true);
  });

  it("forgets requests that left the window: the ratio applies to recent load only", () => {
    const clock = fakeClock(0);
    const budget = new RetryBudget({ ratio: 0.2, minPerSecond: 0, now: clock.now });
    for (let i = 0; i < 100; i++) budget.recordRequest();
    clock.advance(20_000);
    assert.equal(budget.stats().requests, 0);
    assert.equal(budget.tryAcquireRetry(), false, "no recent requests, no floor: no retries");
  });

  it("survives a clock jump of hours and a clock that goes backwards", () => {
    const clock = fakeClock(0);
    const budget = new RetryBudget({ ratio: 1, minPerSecond: 0, now: clock.now });
    budget.recordRequest();
    clock.advance(5 * 3_600_000);
    assert.equal(budget.stats().requests, 0);
    budget.recordRequest();
    clock.advance(-5_000);
    budget.recordRequest();
    assert.equal(budget.stats().requests, 2);
    assert.equal(budget.tryAcquireRetry(), true);
  });

  it("refuses nonsense options with a catalogued error", () => {
    for (const options of [{ ratio: -0.1 }, { windowMs: 0 }, { minPerSecond: Number.NaN }]) {
      assert.throws(
        () => new RetryBudget(options),
        (error: unknown) => error instanceof HomeostatError && error.code === "HS_POLICY_INVALID",
      );
    }
  });
});
