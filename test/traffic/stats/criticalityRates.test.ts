import assert from "node:assert/strict";
import { test } from "node:test";
import { CriticalityRates } from "../../../src/traffic/stats/criticalityRates.ts";

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
