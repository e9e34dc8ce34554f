/**
 * The load generator's summary (bench/common/loadgen/summary.ts) on made-up records: lateness is
 * written − due, latency runs from the due time, achieved rate is what was written, and a run
 * whose generator fell behind is marked invalid.
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  DEFAULT_BOUNDS,
  type LoadgenRaw,
  recordsOf,
  stretchOf,
  summarizeLoad,
  validOnly,
} from "../../bench/common/loadgen/summary.ts";

/** `n` requests at `rate`, each written `late(i)` ms after its due time and answered 2 ms later. */
function raw(
  n: number,
  rate: number,
  late: (i: number) => number,
  overrides: Partial<LoadgenRaw> = {},
): LoadgenRaw {
  const interval = 1000 / rate;
  const written = Array.from({ length: n }, (_, i) => i * interval + late(i));
  return {
    t0EpochMs: 1_000_000,
    intervalMs: interval,
    warmup: 0,
    written,
    done: written.map((w) => w + 2),
    status: new Array(n).fill(200),
    errors: new Array(n).fill(null),
    headerClass: new Array(n).fill(0),
    headers: {},
    ...overrides,
  };
}

describe("load generator summary", () => {
  it("an on-time run: achieved = offered, lateness small, latency from due, valid", () => {
    const s = summarizeLoad(raw(1000, 100, () => 0.1));
    assert.equal(s.offeredRate, 100);
    assert.equal(s.due, 1000);
    assert.equal(s.written, 1000);
    assert.ok(Math.abs(s.achievedRate - 100) < 0.5, `achieved ${s.achievedRate}`);
    assert.ok(Math.abs(s.lateness!.p99 - 0.1) < 1e-9);
    assert.ok(Math.abs(s.latency!.p50 - 2.1) < 1e-9, "latency counts from the due time");
    assert.ok(Math.abs(s.service!.p50 - 2) < 1e-9, "service counts from the write");
    assert.equal(s.valid, true);
    assert.equal(s.invalidReason, null);
    assert.deepEqual(s.bounds, DEFAULT_BOUNDS);
  });

  it("requests that waited for a connection: lateness and latency show it, the run is invalid", () => {
    // Every 10th request waited 30 ms for a connection.
    const s = summarizeLoad(raw(1000, 100, (i) => (i % 10 === 0 ? 30 : 0.1)));
    assert.ok(Math.abs(s.lateness!.p99 - 30) < 1e-9, `lateness p99 ${s.lateness!.p99}`);
    assert.ok(Math.abs(s.latency!.p99 - 32) < 1e-9, `latency p99 ${s.latency!.p99}`);
    assert.ok(Math.abs(s.service!.p99 - 2) < 1e-9);
    assert.equal(s.valid, false);
    assert.match(s.invalidReason!, /lateness p99 30\.00 ms > 5 ms/);
    // A looser bound accepts it.
    assert.equal(
      summarizeLoad(
        raw(1000, 100, (i) => (i % 10 === 0 ? 30 : 0.1)),
        { maxLatenessP99Ms: 50 },
      ).valid,
      true,
    );
  });

  it("a generator that fell steadily behind: achieved < offered", () => {
    // Written at 80 req/s instead of 100: request i goes out at i × 12.5 ms.
    const s = summarizeLoad(
      raw(1000, 100, (i) => i * 2.5),
      { maxLatenessP99Ms: 1e9 },
    );
    assert.ok(Math.abs(s.achievedRate - 80) < 0.2, `achieved ${s.achievedRate}`);
    assert.ok(Math.abs(s.achievedFraction - 0.8) < 0.01);
    // Every request was written in the end: the count bound alone does not catch it…
    assert.equal(s.valid, true);
    // …the lateness bound does.
    assert.equal(summarizeLoad(raw(1000, 100, (i) => i * 2.5)).valid, false);
  });

  it("requests never written: timed out in the queue count as late; refused by the target do not", () => {
    const n = 100;
    const base = raw(n, 100, () => 0.1);
    const written = Array.from(base.written);
    const done = Array.from(base.done);
    const status = Array.from(base.status);
    const errors = Array.from(base.errors);
    for (let i = 0; i < 5; i++) {
      // 5 refused connects (the target was down): attempted on time, never written.
      written[i] = -1;
      done[i] = i * 10 + 0.5;
      status[i] = 0;
      errors[i] = "connect-error";
    }
    const refused = summarizeLoad({ ...base, written, done, status, errors });
    assert.equal(refused.written, 95);
    assert.equal(refused.refused, 5);
    assert.equal(refused.lateness!.n, 95);
    assert.deepEqual(refused.errorCounts, { "connect-error": 5 });
    assert.equal(refused.valid, true, refused.invalidReason ?? "");
    for (let i = 0; i < 5; i++) errors[i] = "timeout";
    for (let i = 0; i < 5; i++) done[i] = i * 10 + 1000; // gave up 1 s after due, still queued
    const queued = summarizeLoad({ ...base, written, done, status, errors });
    assert.equal(queued.written, 95);
    assert.equal(queued.refused, 0);
    assert.equal(queued.lateness!.n, 100);
    assert.equal(queued.lateness!.max, 1000);
    assert.equal(queued.valid, false);
    assert.match(queued.invalidReason!, /wrote 95 of 100|lateness/);
    assert.match(
      summarizeLoad({ ...base, written, done, status, errors }, { maxLatenessP99Ms: 1e9 }).invalidReason!,
      /wrote 95 of 100 due requests/,
    );
  });

  it("leaves the warm-up out, and summarises a stretch of the schedule", () => {
    // A late warm-up (cold connections) does not make the run invalid.
    const r = raw(200, 100, (i) => (i < 50 ? 40 : 0.1), { warmup: 50 });
    const s = summarizeLoad(r);
    assert.equal(s.due, 150);
    assert.equal(s.warmup.due, 50);
    assert.equal(s.warmup.ok, 50);
    assert.equal(s.valid, true);
    const early = summarizeLoad(r, {}, stretchOf(r, 0, 500));
    assert.equal(early.due, 50);
    assert.equal(early.valid, false);
    const records = recordsOf(r);
    assert.equal(records.dueMs.length, 150);
    assert.equal(records.dueMs[0], 500);
    assert.ok(Math.abs(records.sentMs[0]! - 500.1) < 1e-9);
    assert.equal(records.written.every(Boolean), true);
  });

  it("counts failures by cause", () => {
    const r = raw(10, 100, () => 0.1, {
      status: [200, 200, 503, 503, 404, 0, 0, 200, 200, 200],
      errors: [null, null, null, null, null, "timeout", "closed", null, null, null],
    });
    const s = summarizeLoad(r, { minAchievedFraction: 0 });
    assert.equal(s.ok, 5);
    assert.equal(s.non2xx, 3);
    assert.equal(s.errors, 2);
    assert.deepEqual(s.statusCounts, { 200: 5, 503: 2, 404: 1 });
    assert.deepEqual(s.errorCounts, { timeout: 1, closed: 1 });
  });

  it("validOnly keeps valid runs and counts the rest", () => {
    const good = summarizeLoad(raw(100, 100, () => 0.1));
    const bad = summarizeLoad(raw(100, 100, () => 40));
    const { kept, invalid, reasons } = validOnly([good, bad, good], (s) => s);
    assert.equal(kept.length, 2);
    assert.equal(invalid, 1);
    assert.match(reasons[0]!, /lateness/);
  });
});
