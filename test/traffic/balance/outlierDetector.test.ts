import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OutlierDetector, type OutlierSettings } from "../../../src/traffic/balance/outlierDetector.ts";
import type { AttemptOutcome } from "../../../src/traffic/contracts.ts";
import { T0 } from "./fixtures.ts";

const SETTINGS: OutlierSettings = {
  consecutiveFailures: 3,
  baseEjectionMs: 1_000,
  maxEjectionMs: 10_000,
  maxEjectionPercent: 100,
};

function detector(members: string[], settings: Partial<OutlierSettings> = {}): OutlierDetector {
  const d = new OutlierDetector({ ...SETTINGS, ...settings });
  d.setMembers(members);
  return d;
}

/** Record `times` failures; returns whether the last one ejected. */
function failTimes(d: OutlierDetector, instance: string, times: number, now: number): boolean {
  let ejected = false;
  for (let i = 0; i < times; i++) ejected = d.record(instance, "connect-error", now);
  return ejected;
}

describe("OutlierDetector", () => {
  it("ejects at the consecutive-failure threshold, for base × 1 the first time", () => {
    const d = detector(["a", "b"]);
    assert.equal(failTimes(d, "a", 2, T0), false);
    assert.equal(d.ejectedUntil("a", T0), null);
    assert.equal(d.record("a", "http-5xx", T0), true);
    assert.equal(d.ejectedUntil("a", T0), T0 + 1_000);
    assert.deepEqual(d.stateOf("a", T0), {
      consecutiveFailures: 0,
      ejectedUntil: T0 + 1_000,
      timesEjected: 1,
    });
  });

  it("counts every non-success outcome as a failure", () => {
    const outcomes: AttemptOutcome[] = ["http-5xx", "connect-error", "timeout"];
    const d = detector(["a", "b"]);
    for (const outcome of outcomes) d.record("a", outcome, T0);
    assert.notEqual(d.ejectedUntil("a", T0), null);
    const e = detector(["a", "b"]);
    for (const outcome of ["reset", "reset", "reset"] as const) e.record("a", outcome, T0);
    assert.notEqual(e.ejectedUntil("a", T0), null);
  });

  it("starts counting again after a success", () => {
    const d = detector(["a", "b"]);
    failTimes(d, "a", 2, T0);
    d.record("a", "success", T0);
    assert.equal(failTimes(d, "a", 2, T0), false);
    assert.equal(d.stateOf("a", T0)?.consecutiveFailures, 2);
    assert.equal(d.ejectedUntil("a", T0), null);
  });

  it("returns an ejected instance when its time is up, with no success needed", () => {
    const d = detector(["a", "b"]);
    failTimes(d, "a", 3, T0);
    assert.equal(d.ejectedUntil("a", T0 + 999), T0 + 1_000);
    assert.equal(d.ejectedUntil("a", T0 + 1_000), null);
    assert.equal(d.ejectedCount(T0 + 1_000), 0);
  });

  it("does not extend a running ejection with more failures", () => {
    const d = detector(["a", "b"]);
    failTimes(d, "a", 3, T0);
    assert.equal(failTimes(d, "a", 5, T0 + 500), false);
    assert.equal(d.ejectedUntil("a", T0 + 500), T0 + 1_000);
    assert.equal(d.stateOf("a", T0 + 500)?.timesEjected, 1);
  });

  it("ejects for longer each time, up to the maximum", () => {
    const d = detector(["a", "b"], { maxEjectionMs: 2_500 });
    const durations: number[] = [];
    let now = T0;
    for (let round = 0; round < 4; round++) {
      failTimes(d, "a", 3, now);
      const until = d.ejectedUntil("a", now);
      assert.notEqual(until, null, `round ${round}`);
      durations.push(until! - now);
      now = until!;
    }
    assert.deepEqual(durations, [1_000, 2_000, 2_500, 2_500]);
  });

  it("forgets one ejection per maxEjectionMs without a new one", () => {
    const d = detector(["a", "b"]);
    let now = T0;
    for (let round = 0; round < 3; round++) {
      failTimes(d, "a", 3, now);
      now = d.ejectedUntil("a", now)!;
    }
    // Ejections of 1, 2 and 3 s: the last ended at `now`.
    assert.equal(d.stateOf("a", now)?.timesEjected, 3);
    assert.equal(d.stateOf("a", now + 9_999)?.timesEjected, 3);
    assert.equal(d.stateOf("a", now + 10_000)?.timesEjected, 2);
    assert.equal(d.stateOf("a", now + 25_000)?.timesEjected, 1);
    // The next ejection lasts base × (1 + 1).
    failTimes(d, "a", 3, now + 25_000);
    assert.equal(d.ejectedUntil("a", now + 25_000), now + 25_000 + 2_000);
  });

  it("never ejects more than floor(maxEjectionPercent × members), and counts what it held back", () => {
    const d = detector(["a", "b", "c", "d"], { maxEjectionPercent: 50 });
    for (const instance of ["a", "b", "c", "d"]) failTimes(d, instance, 6, T0);
    assert.equal(d.ejectedCount(T0), 2);
    assert.notEqual(d.ejectedUntil("a", T0), null);
    assert.notEqual(d.ejectedUntil("b", T0), null);
    assert.equal(d.ejectedUntil("c", T0), null);
    // c and d reached the threshold at their 3rd failure and again at each later one: 4 each.
    assert.equal(d.ejectionsSuppressed, 8);
    // When a and b come back, the next failure of c ejects it: its failures were not forgotten.
    assert.equal(d.record("c", "timeout", T0 + 1_000), true);
  });

  it("ejects nobody when the percentage rounds down to zero instances", () => {
    const d = detector(["a", "b", "c"], { maxEjectionPercent: 10 });
    failTimes(d, "a", 10, T0);
    assert.equal(d.ejectedCount(T0), 0);
    assert.ok(d.ejectionsSuppressed > 0);
  });

  it("ignores outcomes for non-members and forgets members that leave", () => {
    const d = detector(["a", "b"]);
    assert.equal(failTimes(d, "zzz", 5, T0), false);
    assert.equal(d.stateOf("zzz", T0), undefined);
    failTimes(d, "a", 3, T0);
    d.setMembers(["b"]);
    d.setMembers(["a", "b"]);
    assert.deepEqual(d.stateOf("a", T0), { consecutiveFailures: 0, ejectedUntil: null, timesEjected: 0 });
  });

  it("keeps the state of members that stay", () => {
    const d = detector(["a", "b"]);
    failTimes(d, "a", 3, T0);
    failTimes(d, "b", 2, T0);
    d.setMembers(["a", "b", "c"]);
    assert.equal(d.ejectedUntil("a", T0), T0 + 1_000);
    assert.equal(d.stateOf("b", T0)?.consecutiveFailures, 2);
  });

  it("applies new settings from the next ejection on", () => {
    const d = detector(["a", "b"]);
    failTimes(d, "a", 3, T0);
    d.configure({ ...SETTINGS, consecutiveFailures: 1, baseEjectionMs: 5_000 });
    assert.equal(d.ejectedUntil("a", T0), T0 + 1_000);
    assert.equal(d.record("b", "timeout", T0), true);
    assert.equal(d.ejectedUntil("b", T0), T0 + 5_000);
  });
});
