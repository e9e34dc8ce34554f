import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { priorityLoad } from "../../../src/traffic/balance/priorityLoad.ts";

const CLOSE = 1e-9;

function assertLoads(actual: number[], expected: number[]): void {
  assert.equal(actual.length, expected.length, `loads ${JSON.stringify(actual)}`);
  actual.forEach((share, i) => {
    assert.ok(
      Math.abs(share - expected[i]!) < CLOSE,
      `priority ${i}: ${share} ≠ ${expected[i]} (loads ${JSON.stringify(actual)})`,
    );
  });
}

describe("priorityLoad", () => {
  describe("the issue's cases: factor 1.4, priority 1 fully healthy", () => {
    const cases: [p0Healthy: number, expected: number[]][] = [
      [1, [1, 0]],
      [0.7, [0.98, 0.02]],
      [0.5, [0.7, 0.3]],
      [0, [0, 1]],
    ];
    for (const [p0Healthy, expected] of cases) {
      it(`priority 0 at ${p0Healthy * 100} % healthy → ${JSON.stringify(expected)}`, () => {
        assertLoads(priorityLoad([p0Healthy, 1], 1.4), expected);
      });
    }
  });

  it("keeps everything in priority 0 down to 1 ÷ factor healthy", () => {
    assertLoads(priorityLoad([1 / 1.4, 1], 1.4), [1, 0]);
    assertLoads(priorityLoad([0.8, 1], 1.4), [1, 0]);
  });

  it("spills down through several priorities in order", () => {
    // health: 0.28, 0.42, 1 → 0.28, then min(0.72, 0.42), then the remaining 0.30.
    assertLoads(priorityLoad([0.2, 0.3, 1], 1.4), [0.28, 0.42, 0.3]);
  });

  it("normalises when the priorities together are less than fully healthy", () => {
    // health: 0.14 and 0.28 (sum 0.42) → scaled to 1/3 and 2/3.
    assertLoads(priorityLoad([0.1, 0.2], 1.4), [1 / 3, 2 / 3]);
  });

  it("gives nothing to anyone when no priority has a healthy endpoint", () => {
    assertLoads(priorityLoad([0, 0, 0], 1.4), [0, 0, 0]);
  });

  it("sums to 1 whenever something is healthy", () => {
    for (const fractions of [[0.05], [0.3, 0.1, 0.6], [0, 0, 0.01], [0.9, 0.9], [0.5, 0, 0.5]]) {
      const loads = priorityLoad(fractions, 1.4);
      const sum = loads.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - 1) < CLOSE, `${JSON.stringify(fractions)} → ${JSON.stringify(loads)}`);
      assert.ok(
        loads.every((share) => share >= 0),
        JSON.stringify(loads),
      );
    }
  });

  it("with factor 1, spills as soon as priority 0 loses any endpoint", () => {
    assertLoads(priorityLoad([0.9, 1], 1), [0.9, 0.1]);
  });

  it("treats NaN and out-of-range fractions as 0 and 1", () => {
    assertLoads(priorityLoad([Number.NaN, 1], 1.4), [0, 1]);
    assertLoads(priorityLoad([-0.5, 2], 1.4), [0, 1]);
  });

  it("returns an empty list for no priorities", () => {
    assert.deepEqual(priorityLoad([], 1.4), []);
  });
});
