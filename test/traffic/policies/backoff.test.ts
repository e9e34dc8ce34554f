import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { jitteredBackoff } from "../../../src/traffic/policies/backoff.ts";
import { seededRandom } from "./kit.ts";

const SPEC = { initialMs: 100, maxMs: 5_000 };
const ALMOST_ONE = 1 - Number.EPSILON;

describe("jitteredBackoff (full jitter)", () => {
  it("draws within [0, min(maxMs, initialMs × 2^(attempt − 1))) for every attempt", () => {
    const random = seededRandom(7);
    for (let attempt = 1; attempt <= 30; attempt++) {
      const ceiling = Math.min(SPEC.maxMs, SPEC.initialMs * 2 ** (attempt - 1));
      for (let i = 0; i < 200; i++) {
        const delay = jitteredBackoff(attempt, SPEC, random);
        assert.ok(delay >= 0 && delay < ceiling, `attempt ${attempt}: ${delay} outside [0, ${ceiling})`);
        assert.ok(Number.isInteger(delay));
      }
    }
  });

  it("spans the whole range: 0 at a draw of 0, just under the ceiling at a draw near 1", () => {
    assert.equal(jitteredBackoff(3, SPEC, 0), 0);
    assert.equal(jitteredBackoff(3, SPEC, ALMOST_ONE), 399);
    assert.equal(jitteredBackoff(3, SPEC, 0.5), 200);
  });

  it("doubles the ceiling per attempt until maxMs", () => {
    const ceilings = [1, 2, 3, 4, 5, 6, 7].map((attempt) => jitteredBackoff(attempt, SPEC, ALMOST_ONE) + 1);
    assert.deepEqual(ceilings, [100, 200, 400, 800, 1_600, 3_200, 5_000]);
  });

  it("stays at maxMs for absurd attempts and treats attempts below 1 (or NaN) as the first", () => {
    for (const attempt of [1_000, 1e9, Number.POSITIVE_INFINITY]) {
      assert.equal(jitteredBackoff(attempt, SPEC, ALMOST_ONE), 4_999);
    }
    for (const attempt of [0, -5, Number.NaN]) {
      assert.equal(jitteredBackoff(attempt, SPEC, ALMOST_ONE), 99);
    }
  });

  it("clamps draws outside [0, 1) instead of leaving the bounds", () => {
    assert.equal(jitteredBackoff(2, SPEC, -3), 0);
    assert.equal(jitteredBackoff(2, SPEC, 7), 199);
    assert.equal(jitteredBackoff(2, SPEC, Number.NaN), 0);
  });

  it("is pure: a number draw and a source returning it give the same delay, every time", () => {
    for (const draw of [0.1, 0.42, 0.9]) {
      const once = jitteredBackoff(4, SPEC, draw);
      assert.equal(
        jitteredBackoff(4, SPEC, () => draw),
        once,
      );
      assert.equal(jitteredBackoff(4, SPEC, draw), once);
    }
  });

  it("spreads a burst: draws cover the range rather than clustering (mean near half the ceiling)", () => {
    const random = seededRandom(11);
    const delays = Array.from({ length: 5_000 }, () => jitteredBackoff(4, SPEC, random));
    const mean = delays.reduce((sum, d) => sum + d, 0) / delays.length;
    assert.ok(mean > 360 && mean < 440, `mean ${mean}, expected about 400`);
    assert.ok(Math.min(...delays) < 20 && Math.max(...delays) > 780);
  });
});
