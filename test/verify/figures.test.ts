import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { exceeds, isKnown, percent, reaches, signedPoints, specDuration } from "../../src/verify/figures.ts";

describe("figures", () => {
  it("treats null, undefined, NaN and infinities as no data, and 0 as data", () => {
    assert.deepEqual([null, undefined, Number.NaN, Number.POSITIVE_INFINITY, 0, 0.5].map(isKnown), [
      false,
      false,
      false,
      false,
      true,
      true,
    ]);
  });

  it("compares decimal figures without floating-point noise", () => {
    assert.equal(exceeds(0.06 - 0.01, 0.05), false);
    assert.equal(exceeds(0.0501, 0.05), true);
    assert.equal(reaches(0.3 - 0.1, 0.2), true);
    assert.equal(reaches(0.19, 0.2), false);
  });

  it("writes rates as percentages and differences as points", () => {
    assert.equal(percent(0.031), "3.1 %");
    assert.equal(percent(0.01), "1 %");
    assert.equal(percent(0.00125), "0.13 %");
    assert.equal(signedPoints(0.05), "+5 points");
    assert.equal(signedPoints(-0.002), "−0.2 points");
  });

  const durations: [number, string][] = [
    [250, "250ms"],
    [1_500, "1.5s"],
    [30_000, "30s"],
    [120_000, "2m"],
    [90_000, "1m30s"],
    [3_600_000, "1h"],
    [3_690_000, "1h1m30s"],
  ];
  for (const [ms, text] of durations) {
    it(`spells ${ms}ms as ${text}, like a fleet file`, () => {
      assert.equal(specDuration(ms), text);
    });
  }
});
