/**
 * Several data-plane workers: what each one enforces (its share of the per-instance limits), how
 * their counters read as one exposition, and how their decision windows merge.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { mergeExpositions, perWorker } from "../../src/controller/dataPlaneClient.ts";
import { mergedWindows, TrafficStats } from "../../src/traffic/stats/index.ts";
import { traffic } from "../traffic/proxy/kit.ts";

test("each worker gets its share of the per-instance cap, the queue and the retry floor; one worker keeps everything", () => {
  const spec = traffic({ limits: { maxConcurrentPerInstance: 9, queueSize: 100 } });
  assert.equal(perWorker(spec, 1), spec);
  const third = perWorker(spec, 3);
  assert.equal(third.limits.maxConcurrentPerInstance, 3);
  assert.equal(third.limits.queueSize, 34, "rounded up");
  assert.equal(third.retries.budget.minPerSecond, spec.retries.budget.minPerSecond / 3);
  assert.equal(third.retries.budget.ratio, spec.retries.budget.ratio, "the ratio is per request: unchanged");
  assert.equal(
    perWorker(traffic({ limits: { maxConcurrentPerInstance: 1 } }), 4).limits.maxConcurrentPerInstance,
    1,
  );
});

test("expositions of several workers get a worker label on every sample and their HELP/TYPE once", () => {
  const merged = mergeExpositions([
    '# HELP hits Hits.\n# TYPE hits counter\nhits{service="api"} 3\nup 1\n',
    '# HELP hits Hits.\n# TYPE hits counter\nhits{service="api"} 4\nup 1\n',
  ]);
  assert.equal(
    merged,
    [
      "# HELP hits Hits.",
      "# TYPE hits counter",
      'hits{worker="0",service="api"} 3',
      'up{worker="0"} 1',
      'hits{worker="1",service="api"} 4',
      'up{worker="1"} 1',
      "",
    ].join("\n"),
  );
});

test("merged windows add counts and rates and take percentiles from the merged histograms", () => {
  const now = () => 1_800_000_000_000;
  const fast = new TrafficStats({ now });
  const slow = new TrafficStats({ now });
  const record = (stats: TrafficStats, latencyMs: number, result: "ok" | "upstream-5xx") =>
    stats.recordRequest({
      service: "api",
      criticality: "default",
      result,
      status: result === "ok" ? 200 : 500,
      latencyMs,
      attempts: 1,
      retried: false,
    });
  for (let i = 0; i < 90; i++) record(fast, 2, "ok");
  for (let i = 0; i < 10; i++) record(slow, 400, "upstream-5xx");
  const merged = mergedWindows(() => [fast, slow]).window({ service: "api", windowMs: 10_000 });
  assert.equal(merged.requests, 100);
  assert.equal(merged.errors, 10);
  assert.equal(merged.errorRate, 0.1);
  assert.ok(merged.p50Ms !== null && merged.p50Ms < 3, `p50 from the fast worker's mass (${merged.p50Ms})`);
  assert.ok(merged.p99Ms !== null && merged.p99Ms > 350, `p99 from the slow worker's tail (${merged.p99Ms})`);
  const rates = mergedWindows(() => [fast, slow]).criticalityRates("api", 10_000);
  assert.equal(rates.default, 10);
});
