import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LOG_ALL } from "../../../src/dataplane/haproxy/haproxyConfig.ts";
import { LOG_LINES_BUDGET, nextLogShare } from "../../../src/dataplane/haproxy/logSampling.ts";

describe("nextLogShare", () => {
  it("logs every answered request while the service is within the budget", () => {
    assert.equal(nextLogShare(LOG_ALL, 0), LOG_ALL);
    assert.equal(nextLogShare(LOG_ALL, LOG_LINES_BUDGET), LOG_ALL);
  });

  it("steps down at once to the largest share within the budget when the rate exceeds it", () => {
    assert.equal(nextLogShare(LOG_ALL, 1_500), 5_000); // 750 lines/s
    assert.equal(nextLogShare(LOG_ALL, 40_000), 250); // 1 in 40: 1,000 lines/s
    assert.equal(nextLogShare(LOG_ALL, 1_000_000), 100); // the smallest share, even over budget
  });

  it("steps back up only when the larger share keeps within half the budget (no flapping at the edge)", () => {
    assert.equal(nextLogShare(5_000, 1_500), 5_000); // all would be 1,500 lines/s: stays
    assert.equal(nextLogShare(5_000, 1_100), 5_000); // all: 1,100 > 500: stays
    assert.equal(nextLogShare(5_000, 400), LOG_ALL); // all: 400 ≤ 500
    assert.equal(nextLogShare(250, 10_000), 500); // 1 in 20: 500 lines/s ≤ 500
    assert.equal(nextLogShare(250, 12_000), 250); // 1 in 20 would be 600: stays at 1 in 40
  });
});
