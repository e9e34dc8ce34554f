/**
 * The data-plane bench's reading of per-request records (bench/dataplane/analysis.ts): latency is
 * charged from the due time (a request that waited for a connection is late by that wait), the
 * generator's lag is send − due, every non-2xx or unanswered request is a failure of its kind, and
 * the targets are judged from those figures.
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { analyzeRun, hungVerdict, outcome, type RunRecords, spread } from "../../bench/dataplane/analysis.ts";
import {
  everyTrial,
  type HungTrial,
  type KillTrial,
  zeroFailedEveryTrial,
} from "../../bench/dataplane/results.ts";

/** `n` requests due every `interval` ms, each sent on time and answered 200 after `serviceMs`. */
function steady(n: number, interval = 1, serviceMs = 5): RunRecords & { [K in keyof RunRecords]: unknown[] } {
  const dueMs = Array.from({ length: n }, (_, i) => 1_000 + i * interval);
  return {
    dueMs,
    sentMs: [...dueMs],
    doneMs: dueMs.map((d) => d + serviceMs),
    status: dueMs.map(() => 200),
    error: dueMs.map(() => null),
  };
}

describe("data-plane bench analysis", () => {
  it("classifies a 2xx as ok, another status by its code, no answer by the generator's error", () => {
    assert.equal(outcome(200, null), "ok");
    assert.equal(outcome(204, null), "ok");
    assert.equal(outcome(503, null), "503");
    assert.equal(outcome(302, null), "302");
    assert.equal(outcome(0, "timeout"), "timeout");
    assert.equal(outcome(0, null), "no-answer");
  });

  it("takes nearest-rank percentiles: p99 of 100 values is the 99th, never an interpolation", () => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i); // 100 … 1, unsorted
    assert.deepEqual(spread(values), { n: 100, p50: 50, p99: 99, max: 100 });
    assert.equal(spread([]), null);
  });

  it("charges a request that waited for a connection from its due time, and reports that wait as lag", () => {
    const records = steady(100);
    // Request 10 waited 400 ms for a free connection, then took 5 ms.
    records.sentMs[10] = (records.dueMs[10] as number) + 400;
    records.doneMs[10] = (records.sentMs[10] as number) + 5;
    const figures = analyzeRun(records);
    assert.equal(figures.latency?.max, 405);
    assert.equal(figures.lateness?.max, 400);
    assert.equal(figures.latency?.p50, 5);
    assert.equal(figures.failed, 0);
    assert.equal(figures.servedPercent, 100);
  });

  it("counts non-2xx answers and client timeouts as failures, by kind, with their due times from the fault", () => {
    const records = steady(1_000);
    records.status[500] = 503;
    records.status[501] = 0;
    records.error[501] = "timeout";
    records.doneMs[501] = (records.dueMs[501] as number) + 5_000;
    records.status[700] = 0;
    records.error[700] = "connect-error";
    const fault = { fromMs: 1_400, toMs: 1_600 };
    const figures = analyzeRun(records, fault);
    assert.equal(figures.requests, 1_000);
    assert.equal(figures.served, 997);
    assert.equal(figures.failed, 3);
    assert.deepEqual(figures.failures, { "503": 1, timeout: 1, "connect-error": 1 });
    assert.equal(figures.servedPercent, 99.7);
    // Due 1,500 and 1,700 ms from t0: 100 and 300 ms after the fault began.
    assert.equal(figures.firstFailedMs, 100);
    assert.equal(figures.lastFailedMs, 300);
    // The timed-out request is in the latency at its 5 s, and in the fault window's figures.
    assert.equal(figures.latency?.max, 5_000);
    assert.equal(figures.latencyInWindow?.n, 200);
    assert.equal(figures.latencyInWindow?.max, 5_000);
  });

  it("without a fault window, gives failure times from t0 and no in-window latency", () => {
    const records = steady(100);
    records.status[20] = 502;
    records.status[80] = 0;
    records.error[80] = "closed";
    const figures = analyzeRun(records);
    assert.equal(figures.latencyInWindow, null);
    // Due 1,020 and 1,080 ms from t0.
    assert.equal(figures.firstFailedMs, 1_020);
    assert.equal(figures.lastFailedMs, 1_080);
    assert.deepEqual(figures.failures, { "502": 1, closed: 1 });
    assert.equal(figures.served + figures.failed, figures.requests);
  });

  it("gives an empty run no latency, no rate and nothing served, rather than dividing by zero", () => {
    const figures = analyzeRun(steady(0), { fromMs: 0, toMs: 10 });
    assert.equal(figures.requests, 0);
    assert.equal(figures.servedPercent, 0);
    assert.equal(figures.achievedRate, 0);
    assert.equal(figures.latency, null);
    assert.equal(figures.latencyInWindow, null);
    assert.equal(figures.firstFailedMs, null);
  });

  it("measures the achieved rate from the first due time to the last send", () => {
    // 1,000 requests due over 1 s, but the generator could only send the last 500 at half speed.
    const records = steady(1_000);
    for (let i = 500; i < 1_000; i++) records.sentMs[i] = 1_000 + 500 + (i - 500) * 2;
    const figures = analyzeRun(records);
    assert.ok(Math.abs(figures.achievedRate - 1_000 / 1.498) < 1, `rate ${figures.achievedRate}`);
  });

  it("judges the hung-instance targets: ≥ 99.5 % served, p99 ≤ 300 ms, no failure", () => {
    const good = analyzeRun(steady(1_000));
    assert.deepEqual(hungVerdict(good), { servedPercent: true, p99: true, zeroFailed: true, all: true });

    // 2 % of requests at 2 s: all served, but p99 is 2 s.
    const slow = steady(1_000);
    for (let i = 0; i < 20; i++) slow.doneMs[i * 50] = (slow.dueMs[i * 50] as number) + 2_000;
    assert.deepEqual(hungVerdict(analyzeRun(slow)), {
      servedPercent: true,
      p99: false,
      zeroFailed: true,
      all: false,
    });

    // One failure in 1,000: 99.9 % served meets that target, but not "zero failed".
    const oneFailed = steady(1_000);
    oneFailed.status[3] = 502;
    assert.deepEqual(hungVerdict(analyzeRun(oneFailed)), {
      servedPercent: true,
      p99: true,
      zeroFailed: false,
      all: false,
    });

    assert.equal(hungVerdict(analyzeRun(steady(0))).all, false);
  });

  it("meets a target only when every trial that ran meets it; a trial whose set-up failed is left out", () => {
    const hung = (figures: ReturnType<typeof analyzeRun> | null): HungTrial =>
      ({ contender: "homeostat", repeat: 0, ok: figures !== null, figures }) as HungTrial;
    const slow = steady(1_000);
    for (let i = 0; i < 20; i++) slow.doneMs[i * 50] = (slow.dueMs[i * 50] as number) + 2_000;
    assert.equal(everyTrial([hung(analyzeRun(steady(1_000))), hung(null)])?.all, true);
    assert.equal(everyTrial([hung(analyzeRun(steady(1_000))), hung(analyzeRun(slow))])?.p99, false);
    assert.equal(everyTrial([hung(null)]), null);

    const kill = (failed: number | null): KillTrial => {
      const records = steady(100);
      for (let i = 0; i < (failed ?? 0); i++) records.status[i] = 0;
      return {
        mode: "process",
        ok: failed !== null,
        figures: failed === null ? null : analyzeRun(records),
      } as KillTrial;
    };
    assert.equal(zeroFailedEveryTrial([kill(0), kill(null), kill(0)]), true);
    assert.equal(zeroFailedEveryTrial([kill(0), kill(1)]), false);
    assert.equal(zeroFailedEveryTrial([kill(null)]), null);
  });
});
