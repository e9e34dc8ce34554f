import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type LagTimers, LoopLag } from "../../../src/traffic/policies/loopLag.ts";
import { waitFor } from "../../helpers/waitFor.ts";
import { fakeClock } from "./kit.ts";

/** Timers run by hand: `tick()` calls the interval's callback as a late timer would. */
function manualTimers(): LagTimers & { tick: () => void; armed: number } {
  let callback: (() => void) | null = null;
  const timers = {
    armed: 0,
    setInterval: (fn: () => void) => {
      callback = fn;
      timers.armed++;
      return 1;
    },
    clearInterval: () => {
      callback = null;
      timers.armed--;
    },
    tick: () => callback?.(),
  };
  return timers;
}

describe("LoopLag", () => {
  it("reports how late the probe ran, from its last run", () => {
    const clock = fakeClock(0);
    const timers = manualTimers();
    const lag = new LoopLag({ intervalMs: 10, now: clock.now, timers });
    lag.acquire();
    clock.advance(10);
    timers.tick();
    assert.equal(lag.lagMs(), 0, "on time");
    clock.advance(45); // due at 20, ran at 55: the loop was busy for 35 ms
    timers.tick();
    assert.equal(lag.lagMs(), 35);
    clock.advance(10);
    timers.tick();
    assert.equal(lag.lagMs(), 0, "on time again: the stall is over");
  });

  it("runs while acquired (reference-counted) and reads 0 once released", () => {
    const clock = fakeClock(0);
    const timers = manualTimers();
    const lag = new LoopLag({ now: clock.now, timers });
    lag.acquire();
    lag.acquire();
    assert.equal(timers.armed, 1, "one probe for all users");
    clock.advance(100);
    timers.tick();
    assert.ok(lag.lagMs() > 0);
    lag.release();
    assert.equal(timers.armed, 1, "still used once");
    lag.release();
    assert.equal(timers.armed, 0);
    assert.equal(lag.lagMs(), 0);
    lag.release(); // one release too many is harmless
    assert.equal(timers.armed, 0);
  });

  it("sees a real event-loop stall", async () => {
    const lag = new LoopLag({ intervalMs: 5 });
    lag.acquire();
    try {
      // Block the loop for 60 ms, then let the probe run.
      const until = performance.now() + 60;
      while (performance.now() < until);
      const seen = await waitFor(() => (lag.lagMs() >= 30 ? lag.lagMs() : null), {
        timeoutMs: 2_000,
        intervalMs: 1,
        what: "the probe to notice the stall",
      });
      assert.ok(seen >= 30, `lag ${seen} ms`);
    } finally {
      lag.release();
    }
  });
});
