import assert from "node:assert/strict";
import { test } from "node:test";
import type { Criticality } from "../../../src/traffic/contracts.ts";
import { CriticalityRates } from "../../../src/traffic/stats/criticalityRates.ts";
import { type RequestResult, TrafficStats } from "../../../src/traffic/stats/index.ts";

test("rates by criticality average over the window and forget old seconds", () => {
  const rates = new CriticalityRates();
  const t0 = 1_000_000_000;
  for (let s = 0; s < 10; s++) {
    for (let i = 0; i < 6; i++) rates.record(t0 + s * 1000, "default");
    for (let i = 0; i < 2; i++) rates.record(t0 + s * 1000, "sheddable");
    rates.record(t0 + s * 1000, "critical");
  }
  assert.deepEqual(rates.rates(t0 + 9_000, 10), { critical: 1, default: 6, sheddable: 2 });
  assert.deepEqual(rates.rates(t0 + 9_000, 5), { critical: 1, default: 6, sheddable: 2 });
  // 20 s later nothing was recorded for 10 s of a 10 s window… and half of a 20 s window.
  assert.deepEqual(rates.rates(t0 + 19_000, 10), { critical: 0, default: 0, sheddable: 0 });
  assert.deepEqual(rates.rates(t0 + 19_000, 20), { critical: 0.5, default: 3, sheddable: 1 });
  // A bucket reused 300 s later does not carry old counts.
  rates.record(t0 + 300_000, "critical");
  assert.deepEqual(rates.rates(t0 + 300_000, 1), { critical: 1, default: 0, sheddable: 0 });
});

test("per elapsed time: the current second counts for the part of it that has passed", () => {
  const rates = new CriticalityRates();
  const t0 = 1_000_000_000;
  // 10 default requests a second, steady, for 4 whole seconds and the first 250 ms of the fifth.
  for (let s = 0; s < 4; s++) for (let i = 0; i < 10; i++) rates.record(t0 + s * 1000 + i * 100, "default");
  for (let i = 0; i < 3; i++) rates.record(t0 + 4_000 + i * 100, "default");
  const now = t0 + 4_250;
  // Over the whole 5 s window it reads 43 / 5 = 8.6, low; over the 4.25 s covered, 10.1.
  assert.equal(rates.rates(now, 5).default, 43 / 5);
  assert.equal(rates.rates(now, 5, "elapsed").default, 43 / 4.25);
  // At least a second: 250 ms into a 1 s window, 3 requests read as 3/s, not 12/s.
  assert.equal(rates.rates(now, 1, "elapsed").default, 3);
});

test("TrafficStats.criticalityRates counts arrivals: shed and failed requests are demand too", () => {
  let now = 1_000_000_000;
  const stats = new TrafficStats({ now: () => now });
  const record = (criticality: Criticality, result: RequestResult, status: number): void =>
    stats.recordRequest({
      service: "api",
      criticality,
      result,
      status,
      latencyMs: 1,
      attempts: 1,
      retried: false,
    });
  record("sheddable", "ok", 200);
  record("sheddable", "shed", 503); // failover-shed or over-limit: both answered by the proxy itself
  record("sheddable", "shed", 503);
  record("default", "shed", 503);
  record("default", "no-upstream", 503);
  record("default", "failed", 502);
  record("critical", "timeout", 504);
  record("critical", "client-error", 400);
  now += 500;
  assert.deepEqual(stats.criticalityRates("api", 1000), { critical: 2, default: 3, sheddable: 3 });
  assert.deepEqual(stats.criticalityRates("other", 1000), { critical: 0, default: 0, sheddable: 0 });
});
