import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { restartDelayMs } from "../../src/decide/backoff.ts";
import type { BackoffSpec } from "../../src/spec/model.ts";
import { DEFAULT_BACKOFF } from "../helpers/fleetFixture.ts";

const noJitter: BackoffSpec = { ...DEFAULT_BACKOFF, jitter: 0 };
/** `random` = 0.5 puts the jitter term at exactly zero. */
const MIDDLE = 0.5;
const ALMOST_ONE = 1 - Number.EPSILON;

describe("restartDelayMs", () => {
  it("restarts at once after the first failure, whatever the jitter draw", () => {
    for (const random of [0, MIDDLE, ALMOST_ONE]) {
      assert.equal(restartDelayMs(DEFAULT_BACKOFF, 1, random), 0);
    }
  });

  it("treats zero or negative failure counts like the first failure", () => {
    assert.equal(restartDelayMs(DEFAULT_BACKOFF, 0, MIDDLE), 0);
    assert.equal(restartDelayMs(DEFAULT_BACKOFF, -3, MIDDLE), 0);
  });

  it("waits initialMs after the second failure and grows by the multiplier from there", () => {
    const delays = [2, 3, 4, 5, 6].map((failures) => restartDelayMs(noJitter, failures, MIDDLE));
    assert.deepEqual(delays, [200, 400, 800, 1_600, 3_200]);
  });

  it("uses the spec's multiplier, not a hard-coded doubling", () => {
    const triple: BackoffSpec = { initialMs: 100, maxMs: 1_000_000, multiplier: 3, jitter: 0 };
    assert.deepEqual(
      [2, 3, 4].map((failures) => restartDelayMs(triple, failures, MIDDLE)),
      [100, 300, 900],
    );
  });

  it("caps the delay at maxMs", () => {
    // 200 * 2^8 = 51_200 > 30_000.
    assert.equal(restartDelayMs(noJitter, 10, MIDDLE), 30_000);
    assert.equal(restartDelayMs(noJitter, 50, MIDDLE), 30_000);
  });

  it("stays at maxMs for absurd failure counts (no overflow to Infinity or NaN)", () => {
    const delay = restartDelayMs(noJitter, 100_000, MIDDLE);
    assert.equal(delay, 30_000);
    assert.ok(Number.isFinite(delay));
  });

  it("with random 0 shortens the delay by the jitter fraction", () => {
    // failures 4 → base 800; jitter 0.2 → 800 * 0.8.
    assert.equal(restartDelayMs(DEFAULT_BACKOFF, 4, 0), 640);
  });

  it("with random close to 1 lengthens the delay by (almost) the jitter fraction", () => {
    // failures 4 → base 800; jitter 0.2 → just under 800 * 1.2.
    assert.equal(restartDelayMs(DEFAULT_BACKOFF, 4, ALMOST_ONE), 960);
    assert.equal(restartDelayMs(DEFAULT_BACKOFF, 4, 0.999), 960);
  });

  it("keeps every delay within base × (1 ± jitter)", () => {
    for (let failures = 2; failures <= 8; failures++) {
      const base = restartDelayMs(noJitter, failures, MIDDLE);
      for (let i = 0; i <= 100; i++) {
        const random = Math.min(i / 100, ALMOST_ONE);
        const delay = restartDelayMs(DEFAULT_BACKOFF, failures, random);
        assert.ok(
          delay >= Math.floor(base * 0.8),
          `failures ${failures}, random ${random}: ${delay} < ${base}×0.8`,
        );
        assert.ok(
          delay <= Math.ceil(base * 1.2),
          `failures ${failures}, random ${random}: ${delay} > ${base}×1.2`,
        );
      }
    }
  });

  it("never exceeds maxMs even when jitter pushes upward at the cap", () => {
    assert.equal(restartDelayMs(DEFAULT_BACKOFF, 20, ALMOST_ONE), 30_000);
    // And jitter downward still applies at the cap, so capped restarts stay spread apart.
    assert.equal(restartDelayMs(DEFAULT_BACKOFF, 20, 0), 24_000);
  });

  it("never returns a negative delay, even with full or out-of-range jitter", () => {
    const fullJitter: BackoffSpec = { ...DEFAULT_BACKOFF, jitter: 1 };
    const wildJitter: BackoffSpec = { ...DEFAULT_BACKOFF, jitter: 3 };
    for (let failures = 0; failures <= 12; failures++) {
      for (const random of [0, 0.1, MIDDLE, ALMOST_ONE]) {
        assert.ok(restartDelayMs(fullJitter, failures, random) >= 0);
        assert.ok(restartDelayMs(wildJitter, failures, random) >= 0);
      }
    }
    assert.equal(restartDelayMs(fullJitter, 3, 0), 0);
  });

  it("returns whole milliseconds", () => {
    const odd: BackoffSpec = { initialMs: 333, maxMs: 100_000, multiplier: 1.7, jitter: 0.13 };
    for (let failures = 2; failures <= 10; failures++) {
      assert.ok(Number.isInteger(restartDelayMs(odd, failures, 0.37)));
    }
  });

  it("is a pure function of its arguments", () => {
    assert.equal(restartDelayMs(DEFAULT_BACKOFF, 5, 0.42), restartDelayMs(DEFAULT_BACKOFF, 5, 0.42));
  });
});
