import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HomeostatError } from "../../../src/errors.ts";
import type { AttemptOutcome } from "../../../src/traffic/contracts.ts";
import { type AttemptRecord, MAX_WINDOW_MS, TrafficStats } from "../../../src/traffic/stats/index.ts";
import { seededRandom } from "../../helpers/seededRandom.ts";

/** A clock the test moves by hand. */
function manualClock(startMs = 1_700_000_000_000) {
  let now = startMs;
  return {
    now: () => now,
    advance(ms: number) {
      now += ms;
    },
  };
}

function attempt(overrides: Partial<AttemptRecord> = {}): AttemptRecord {
  return {
    service: "api",
    release: "v1",
    instance: "api-0",
    zone: "zone-a",
    outcome: "success",
    status: 200,
    latencyMs: 10,
    ...overrides,
  };
}

function request(result: "ok" | "client-error" | "upstream-5xx" | "shed" | "timeout", latencyMs = 10) {
  return {
    service: "api",
    criticality: "default" as const,
    result,
    status: result === "ok" ? 200 : result === "client-error" ? 404 : 503,
    latencyMs,
    attempts: 1,
    retried: false,
  };
}

function nearestRank(sorted: readonly number[], quantile: number): number {
  return sorted[Math.max(1, Math.ceil(quantile * sorted.length)) - 1]!;
}

describe("TrafficStats windows", () => {
  it("counts client requests per service; client errors are not errors, sheds and timeouts are", () => {
    const clock = manualClock();
    const stats = new TrafficStats({ now: clock.now });
    for (let i = 0; i < 6; i++) stats.recordRequest(request("ok"));
    stats.recordRequest(request("client-error"));
    stats.recordRequest(request("upstream-5xx"));
    stats.recordRequest(request("shed"));
    stats.recordRequest(request("timeout"));

    const window = stats.window({ service: "api", windowMs: 10_000 });
    assert.equal(window.requests, 10);
    assert.equal(window.errors, 3);
    assert.equal(window.errorRate, 0.3);
    assert.equal(window.rps, 1);
  });

  it("answers null rates and percentiles, never 0, when there is no data", () => {
    const clock = manualClock();
    const stats = new TrafficStats({ now: clock.now });
    const empty = { requests: 0, errors: 0, errorRate: null, p50Ms: null, p99Ms: null, rps: 0 };
    assert.deepEqual(stats.window({ service: "unknown", windowMs: 60_000 }), empty);

    stats.recordAttempt(attempt({ outcome: "http-5xx" }));
    // The service exists, but has no client request: still no data.
    assert.deepEqual(stats.window({ service: "api", windowMs: 60_000 }), empty);
    assert.deepEqual(stats.window({ service: "api", release: "v2", windowMs: 60_000 }), empty);
    assert.deepEqual(stats.window({ service: "api", instance: "api-9", windowMs: 60_000 }), empty);

    clock.advance(61_000);
    assert.deepEqual(stats.window({ service: "api", release: "v1", windowMs: 60_000 }), empty);
  });

  it("keeps release and instance windows apart, from attempts", () => {
    const clock = manualClock();
    const stats = new TrafficStats({ now: clock.now });
    const outcomes: AttemptOutcome[] = ["success", "success", "http-5xx", "connect-error"];
    for (const outcome of outcomes) stats.recordAttempt(attempt({ outcome }));
    for (let i = 0; i < 5; i++)
      stats.recordAttempt(attempt({ release: "v2", instance: "api-1", latencyMs: 40 }));
    stats.recordAttempt(attempt({ release: "v2", instance: "api-1", outcome: "timeout", latencyMs: 2_000 }));

    const v1 = stats.window({ service: "api", release: "v1", windowMs: 5_000 });
    assert.deepEqual([v1.requests, v1.errors, v1.errorRate], [4, 2, 0.5]);
    const v2 = stats.window({ service: "api", release: "v2", windowMs: 5_000 });
    assert.deepEqual([v2.requests, v2.errors], [6, 1]);
    assert.ok(Math.abs(v2.p50Ms! - 40) <= 40 * 0.05, `p50 ${v2.p50Ms}`);
    assert.ok(Math.abs(v2.p99Ms! - 2_000) <= 2_000 * 0.05, `p99 ${v2.p99Ms}`);
    const api0 = stats.window({ service: "api", instance: "api-0", windowMs: 5_000 });
    assert.deepEqual([api0.requests, api0.errors], [4, 2]);
    const api1 = stats.window({ service: "api", instance: "api-1", windowMs: 5_000 });
    assert.deepEqual([api1.requests, api1.errors], [6, 1]);
    assert.equal(stats.window({ service: "web", release: "v1", windowMs: 5_000 }).requests, 0);
  });

  it("reads p50 and p99 within 5 % of the exact values on a known distribution", () => {
    const clock = manualClock();
    const stats = new TrafficStats({ now: clock.now });
    const random = seededRandom(42);
    const latencies: number[] = [];
    // Log-uniform from 0.2 ms to 20 s, over 20 seconds, with a heavy tail: 2 % more at 1-5 s.
    for (let second = 0; second < 20; second++) {
      for (let i = 0; i < 1_000; i++) {
        const latency = random() < 0.02 ? 1_000 + random() * 4_000 : 0.2 * 100_000 ** random();
        latencies.push(latency);
        stats.recordRequest(request("ok", latency));
      }
      clock.advance(1_000);
    }
    clock.advance(-1_000);
    latencies.sort((a, b) => a - b);
    const window = stats.window({ service: "api", windowMs: 20_000 });
    assert.equal(window.requests, 20_000);
    for (const [quantile, measured] of [
      [0.5, window.p50Ms],
      [0.99, window.p99Ms],
    ] as const) {
      const exact = nearestRank(latencies, quantile);
      assert.ok(measured !== null);
      const error = Math.abs(measured - exact) / exact;
      assert.ok(error <= 0.05, `p${quantile * 100}: measured ${measured}, exact ${exact}, error ${error}`);
    }
  });

  it("forgets what falls out of the window as time passes", () => {
    const clock = manualClock(1_000_000_500);
    const stats = new TrafficStats({ now: clock.now });
    stats.recordRequest(request("upstream-5xx", 100));
    clock.advance(5_000);
    stats.recordRequest(request("ok", 10));
    stats.recordRequest(request("ok", 10));

    const both = stats.window({ service: "api", windowMs: 10_000 });
    assert.deepEqual([both.requests, both.errors], [3, 1]);
    const recent = stats.window({ service: "api", windowMs: 5_000 });
    assert.deepEqual(
      [recent.requests, recent.errors, recent.errorRate, recent.p99Ms !== null],
      [2, 0, 0, true],
    );
    assert.ok(Math.abs(recent.p99Ms! - 10) <= 0.5);

    clock.advance(4_999);
    assert.equal(stats.window({ service: "api", windowMs: 10_000 }).requests, 2, "the 5xx is 10 s old now");
    clock.advance(5_000);
    const gone = stats.window({ service: "api", windowMs: 10_000 });
    assert.deepEqual([gone.requests, gone.errorRate, gone.p50Ms], [0, null, null]);
  });

  it("does not read a second from five minutes ago when the ring comes round", () => {
    const clock = manualClock();
    const stats = new TrafficStats({ now: clock.now });
    for (let i = 0; i < 50; i++) stats.recordRequest(request("upstream-5xx"));
    clock.advance(MAX_WINDOW_MS);
    stats.recordRequest(request("ok"));
    const window = stats.window({ service: "api", windowMs: MAX_WINDOW_MS });
    assert.deepEqual([window.requests, window.errors], [1, 0]);
    assert.equal(window.rps, 1 / 300);
  });

  it("spans five minutes, and refuses longer or empty windows", () => {
    const clock = manualClock();
    const stats = new TrafficStats({ now: clock.now });
    for (let second = 0; second < 300; second++) {
      stats.recordRequest(request("ok"));
      stats.recordRequest(request("ok"));
      clock.advance(1_000);
    }
    clock.advance(-1_000);
    const window = stats.window({ service: "api", windowMs: MAX_WINDOW_MS });
    assert.deepEqual([window.requests, window.rps], [600, 2]);
    assert.equal(stats.window({ service: "api", windowMs: 60_000 }).requests, 120);
    for (const windowMs of [0, -1, MAX_WINDOW_MS + 1, Number.NaN]) {
      assert.throws(
        () => stats.window({ service: "api", windowMs }),
        (error: unknown) => error instanceof HomeostatError && error.code === "HS_BAD_REQUEST",
      );
    }
  });

  it("drops a sample from before what the ring holds (the clock went backwards)", () => {
    const clock = manualClock();
    const stats = new TrafficStats({ now: clock.now });
    stats.recordRequest(request("ok"));
    clock.advance(-MAX_WINDOW_MS);
    stats.recordRequest(request("upstream-5xx"));
    clock.advance(MAX_WINDOW_MS);
    const window = stats.window({ service: "api", windowMs: 1_000 });
    assert.deepEqual([window.requests, window.errors], [1, 0]);
  });
});
