import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  HEDGE_FACTOR,
  HEDGE_MIN_SAMPLES,
  HEDGE_NO_DATA_DELAY_MS,
  HedgeDelay,
  hedgeDelayMs,
  roundDelayMs,
} from "../../../src/traffic/policies/hedgeDelay.ts";

const AUTO = { delayMs: null, minDelayMs: 20, maxDelayMs: 1_000 };

describe("hedgeDelayMs", () => {
  it("is p95 × factor within min..max, rounded up to two significant digits", () => {
    assert.equal(hedgeDelayMs(100, AUTO), roundDelayMs(100 * HEDGE_FACTOR));
    assert.equal(hedgeDelayMs(1, AUTO), 20, "never below minDelay");
    assert.equal(hedgeDelayMs(5_000, AUTO), 1_000, "never above maxDelay");
  });

  it("uses the no-data delay (clamped) without a percentile, and a fixed delay as it is", () => {
    assert.equal(hedgeDelayMs(null, AUTO), HEDGE_NO_DATA_DELAY_MS);
    assert.equal(hedgeDelayMs(null, { ...AUTO, maxDelayMs: 50 }), 50);
    assert.equal(hedgeDelayMs(null, { ...AUTO, minDelayMs: 300 }), 300);
    assert.equal(hedgeDelayMs(10, { ...AUTO, delayMs: 5 }), 5, "a fixed delay ignores min and max");
  });
});

describe("roundDelayMs", () => {
  it("rounds up to two significant digits, at least 1", () => {
    assert.deepEqual(
      [0, 0.4, 1.2, 9.01, 25, 99.5, 101, 123, 999, 1_001, 12_345].map(roundDelayMs),
      [1, 1, 2, 10, 25, 100, 110, 130, 1_000, 1_100, 13_000],
    );
  });

  it("keeps the distinct delays few (deadline lists are per delay)", () => {
    const distinct = new Set<number>();
    for (let ms = 1; ms <= 60_000; ms += 0.5) distinct.add(roundDelayMs(ms));
    assert.ok(distinct.size <= 331, `${distinct.size} distinct delays: about 90 per power of ten`);
  });
});

describe("HedgeDelay", () => {
  it("starts at the no-data delay and learns the p95 once it has enough samples", () => {
    const delay = new HedgeDelay(AUTO);
    assert.equal(delay.delayMs, HEDGE_NO_DATA_DELAY_MS);
    for (let i = 0; i < HEDGE_MIN_SAMPLES - 1; i++) delay.record(40);
    assert.equal(delay.delayMs, HEDGE_NO_DATA_DELAY_MS, "too few samples");
    delay.record(40);
    // 40 ms is read back within 2.5 % (the stats' bucket scale), × 1.5, rounded up.
    assert.ok(delay.delayMs >= 58 && delay.delayMs <= 62, `delay ${delay.delayMs}`);
  });

  it("follows the 95th percentile, not the mean: 5 % slow samples do not move it, 10 % do", () => {
    const delay = new HedgeDelay(AUTO);
    for (let i = 0; i < 400; i++) delay.record(i % 100 < 4 ? 900 : 10);
    assert.ok(delay.delayMs <= 20, `4 % slow: delay ${delay.delayMs}`);
    for (let i = 0; i < 400; i++) delay.record(i % 100 < 10 ? 300 : 10);
    assert.ok(delay.delayMs >= 300, `10 % slow: delay ${delay.delayMs}`);
  });

  it("forgets old samples: the window is the last 500 to 1,000", () => {
    const delay = new HedgeDelay(AUTO);
    for (let i = 0; i < 1_000; i++) delay.record(400);
    assert.ok(delay.delayMs >= 590);
    for (let i = 0; i < 1_000; i++) delay.record(10);
    assert.equal(delay.delayMs, 20, "the slow period is gone");
    assert.ok(delay.samples >= 500 && delay.samples <= 1_000);
  });

  it("applies new settings at once and refuses nonsense", () => {
    const delay = new HedgeDelay(AUTO);
    delay.configure({ ...AUTO, delayMs: 75 });
    assert.equal(delay.delayMs, 75);
    assert.throws(() => new HedgeDelay({ ...AUTO, minDelayMs: Number.NaN }), { code: "HS_POLICY_INVALID" });
  });
});
