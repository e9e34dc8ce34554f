import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  freshSlot,
  recordFailure,
  recordStable,
  resetForNewRelease,
  type SlotState,
} from "../../src/decide/slotState.ts";
import { makeRestart } from "../helpers/fleetFixture.ts";

const T0 = 1_700_000_000_000;
const spec = makeRestart({ backoff: { jitter: 0 } });
const MIDDLE = 0.5;

/** Applies `recordFailure` at each time in turn, starting from a fresh slot. */
function failAt(times: number[], from: SlotState = freshSlot("api-0", T0)): SlotState {
  return times.reduce((slot, at) => recordFailure(slot, spec, at, MIDDLE), from);
}

describe("freshSlot", () => {
  it("starts with no failures, no wait and no crash loop", () => {
    assert.deepEqual(freshSlot("api-0", T0), {
      instance: "api-0",
      consecutiveFailures: 0,
      restartTimes: [],
      nextStartAt: null,
      crashLoop: false,
      updatedAt: T0,
    });
  });
});

describe("recordFailure", () => {
  it("lets the first failure restart at once", () => {
    const slot = failAt([T0 + 1_000]);
    assert.equal(slot.consecutiveFailures, 1);
    assert.equal(slot.nextStartAt, T0 + 1_000);
    assert.deepEqual(slot.restartTimes, [T0 + 1_000]);
    assert.equal(slot.crashLoop, false);
    assert.equal(slot.updatedAt, T0 + 1_000);
  });

  it("backs off exponentially on further failures", () => {
    const slot2 = failAt([T0, T0 + 10]);
    assert.equal(slot2.nextStartAt, T0 + 10 + 200);
    const slot3 = recordFailure(slot2, spec, T0 + 300, MIDDLE);
    assert.equal(slot3.consecutiveFailures, 3);
    assert.equal(slot3.nextStartAt, T0 + 300 + 400);
  });

  it("passes the jitter draw through to the backoff", () => {
    const jittery = makeRestart();
    const start = recordFailure(freshSlot("api-0", T0), jittery, T0, MIDDLE);
    const low = recordFailure(start, jittery, T0 + 1, 0);
    const high = recordFailure(start, jittery, T0 + 1, 0.999);
    assert.equal(low.nextStartAt, T0 + 1 + 160);
    assert.equal(high.nextStartAt, T0 + 1 + 240);
  });

  it("does not mutate the slot it is given", () => {
    const before = failAt([T0, T0 + 1]);
    const copy = structuredClone(before);
    recordFailure(before, spec, T0 + 2, MIDDLE);
    assert.deepEqual(before, copy);
  });

  it("declares a crash loop at the Nth failure inside the window, not before", () => {
    const times = [0, 1_000, 2_000, 3_000, 4_000].map((d) => T0 + d);
    const four = failAt(times.slice(0, 4));
    assert.equal(four.crashLoop, false);
    const five = recordFailure(four, spec, times[4]!, MIDDLE);
    assert.equal(five.crashLoop, true);
    assert.equal(five.restartTimes.length, 5);
  });

  it("waits the maximum backoff once crash-looping, regardless of jitter", () => {
    const jittery = makeRestart();
    let slot = freshSlot("api-0", T0);
    for (let i = 0; i < 5; i++) slot = recordFailure(slot, jittery, T0 + i * 100, 0);
    assert.equal(slot.crashLoop, true);
    assert.equal(slot.nextStartAt, T0 + 400 + jittery.backoff.maxMs);
    // Without the crash loop, failure 5 with random 0 would have waited 200·2³·0.8 = 1280ms.
    assert.notEqual(slot.nextStartAt, T0 + 400 + 1_280);
  });

  it("does not count failures older than the window towards a crash loop", () => {
    // Four quick failures, then a long quiet spell, then one more: only one is inside the window.
    const old = failAt([0, 1_000, 2_000, 3_000].map((d) => T0 + d));
    const later = recordFailure(old, spec, T0 + 3_000 + 61_000, MIDDLE);
    assert.equal(later.crashLoop, false);
    assert.deepEqual(later.restartTimes, [T0 + 64_000]);
  });

  it("counts only the failures still inside the window when some have aged out", () => {
    // Failures at 0, 10s, 20s, 30s; the 5th at 65s: the one at 0 is out of the 60s window.
    const slot = failAt([0, 10_000, 20_000, 30_000, 65_000].map((d) => T0 + d));
    assert.deepEqual(
      slot.restartTimes,
      [10_000, 20_000, 30_000, 65_000].map((d) => T0 + d),
    );
    assert.equal(slot.crashLoop, false);
    // A 6th at 66s makes five inside the window.
    assert.equal(recordFailure(slot, spec, T0 + 66_000, MIDDLE).crashLoop, true);
  });

  it("excludes a failure exactly one window old", () => {
    const slot = failAt([T0, T0 + 60_000]);
    assert.deepEqual(slot.restartTimes, [T0 + 60_000]);
  });

  it("keeps counting consecutive failures even when the window forgets them", () => {
    const slot = failAt([0, 100_000, 200_000].map((d) => T0 + d));
    assert.equal(slot.consecutiveFailures, 3);
    assert.equal(slot.nextStartAt, T0 + 200_000 + 400);
  });

  it("honours the spec's crash-loop threshold", () => {
    const strict = makeRestart({ crashLoop: { failures: 2, windowMs: 10_000 } });
    const one = recordFailure(freshSlot("api-0", T0), strict, T0, MIDDLE);
    assert.equal(one.crashLoop, false);
    const two = recordFailure(one, strict, T0 + 5_000, MIDDLE);
    assert.equal(two.crashLoop, true);
    assert.equal(two.nextStartAt, T0 + 5_000 + strict.backoff.maxMs);
  });
});

describe("recordStable", () => {
  it("forgets failures, backoff and crash loop", () => {
    const looping = failAt([0, 1, 2, 3, 4].map((d) => T0 + d));
    assert.equal(looping.crashLoop, true);
    const stable = recordStable(looping, T0 + 90_000);
    assert.deepEqual(stable, freshSlot("api-0", T0 + 90_000));
  });

  it("makes the next failure restart at once again", () => {
    const backedOff = failAt([T0, T0 + 1, T0 + 2]);
    const stable = recordStable(backedOff, T0 + 50_000);
    const next = recordFailure(stable, spec, T0 + 60_000, MIDDLE);
    assert.equal(next.consecutiveFailures, 1);
    assert.equal(next.nextStartAt, T0 + 60_000);
  });
});

describe("resetForNewRelease", () => {
  it("starts the slot afresh for the new release", () => {
    const looping = failAt([0, 1, 2, 3, 4].map((d) => T0 + d));
    assert.deepEqual(resetForNewRelease(looping, T0 + 5), freshSlot("api-0", T0 + 5));
  });
});
