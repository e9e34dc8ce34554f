import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type FailbackState, failbackStep } from "../../../src/decide/failover/failback.ts";
import { HomeostatError } from "../../../src/errors.ts";

const SETTINGS = { zone: "zone-a", stabilizationMs: 60_000, stepPercent: 25, stepIntervalMs: 10_000 };

/** Feeds observations `[time, healthy]` in order; returns the share after each one, and every event. */
function run(observations: [now: number, healthy: boolean][], start: FailbackState | null = null) {
  let state = start;
  const shares: number[] = [];
  const events: string[] = [];
  for (const [now, healthy] of observations) {
    const result = failbackStep(state, { ...SETTINGS, now, healthy });
    state = result.state;
    shares.push(result.shareForZone);
    events.push(...result.events);
  }
  return { state: state!, shares, events };
}

/** Healthy observations every `everyMs` from `from` to `to` inclusive. */
function healthyEvery(from: number, to: number, everyMs: number): [number, boolean][] {
  const out: [number, boolean][] = [];
  for (let now = from; now <= to; now += everyMs) out.push([now, true]);
  return out;
}

describe("failbackStep", () => {
  it("gives no traffic until the zone stays healthy for the whole window, then ramps in steps", () => {
    const { shares, state, events } = run(healthyEvery(0, 100_000, 5_000));
    // t = 0..55 s: stabilizing; 60 s: 25 %; every 10 s after: +25 %.
    const at = (t: number) => shares[t / 5_000];
    for (let t = 0; t < 60_000; t += 5_000) assert.equal(at(t), 0, `no traffic at ${t} ms`);
    assert.equal(at(60_000), 25);
    assert.equal(at(65_000), 25);
    assert.equal(at(70_000), 50);
    assert.equal(at(80_000), 75);
    assert.equal(at(90_000), 100);
    assert.equal(at(100_000), 100);
    assert.equal(state.phase, "restored");
    assert.deepEqual(events, [
      "zone-a is healthy: no traffic until it stays healthy for 60 s",
      "zone-a stayed healthy for 60 s: traffic returns, 25 % of its share",
      "zone-a failback: 50 % of its share",
      "zone-a failback: 75 % of its share",
      "zone-a failback: 100 % of its share",
      "zone-a has all its traffic back",
    ]);
  });

  it("a zone that fails again inside the window never gets traffic in between, and the window restarts", () => {
    const { shares, events, state } = run([
      [0, true],
      [30_000, true],
      [50_000, false], // relapse 50 s into the window
      [55_000, true], // healthy again: a new window from 55 s
      [100_000, true],
      [110_000, true], // 55 s into the new window: still nothing
      [114_999, true],
      [115_000, true], // the new window is complete
    ]);
    assert.deepEqual(shares, [0, 0, 0, 0, 0, 0, 0, 25]);
    assert.ok(
      events.includes(
        "zone-a failed again 50 s into its stabilization window: traffic back to 0 %; the 60 s stabilization window restarts once it is healthy",
      ),
    );
    assert.equal(state.relapses, 1);
  });

  it("flapping faster than the window keeps the zone at 0 % throughout", () => {
    const observations: [number, boolean][] = [];
    for (let t = 0; t < 600_000; t += 5_000) observations.push([t, t % 50_000 !== 45_000]);
    const { shares } = run(observations);
    assert.ok(shares.every((share) => share === 0));
  });

  it("a failure during the ramp drops the share to 0 at once and needs a whole new window", () => {
    const ramped = run(healthyEvery(0, 70_000, 10_000)); // 25 % at 60 s, 50 % at 70 s
    assert.equal(ramped.state.sharePercent, 50);
    const { shares, events, state } = run(
      [
        [75_000, false],
        [80_000, true],
        [130_000, true],
        [140_000, true],
      ],
      ramped.state,
    );
    assert.deepEqual(shares, [0, 0, 0, 25]);
    assert.equal(
      events[0],
      "zone-a failed again during failback at 50 %: traffic back to 0 %; the 60 s stabilization window restarts once it is healthy",
    );
    assert.equal(state.phase, "ramping");
  });

  it("a failure after the failback completed also drops the share to 0", () => {
    const restored = run(healthyEvery(0, 90_000, 10_000)).state;
    assert.equal(restored.phase, "restored");
    const { shares, events } = run([[95_000, false]], restored);
    assert.deepEqual(shares, [0]);
    assert.match(events[0]!, /^zone-a failed again after failback completed/);
  });

  it("grows by one step per call at most, however late the call", () => {
    const { shares } = run([
      [0, true],
      [60_000, true],
      [500_000, true],
      [500_001, true],
    ]);
    assert.deepEqual(shares, [0, 25, 50, 50]);
  });

  it("an unhealthy zone stays at 0 % without new events", () => {
    const { shares, events } = run([
      [0, false],
      [10_000, false],
    ]);
    assert.deepEqual(shares, [0, 0]);
    assert.deepEqual(events, []);
  });

  it("a zero window gives the first step at once; a step of 100 % restores at once", () => {
    const result = failbackStep(null, {
      ...SETTINGS,
      now: 0,
      healthy: true,
      stabilizationMs: 0,
      stepPercent: 100,
    });
    assert.equal(result.shareForZone, 100);
    assert.equal(result.state.phase, "restored");
  });

  it("refuses bad settings and a state for another zone", () => {
    const isBadRequest = (error: unknown) =>
      error instanceof HomeostatError && error.code === "HS_BAD_REQUEST";
    assert.throws(
      () => failbackStep(null, { ...SETTINGS, now: 0, healthy: true, stepPercent: 0 }),
      isBadRequest,
    );
    assert.throws(
      () => failbackStep(null, { ...SETTINGS, now: 0, healthy: true, stabilizationMs: -1 }),
      isBadRequest,
    );
    const other = failbackStep(null, { ...SETTINGS, zone: "zone-b", now: 0, healthy: true }).state;
    assert.throws(() => failbackStep(other, { ...SETTINGS, now: 1, healthy: true }), isBadRequest);
  });
});
