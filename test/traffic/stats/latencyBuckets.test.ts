import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  bucketValueMs,
  LATENCY_BUCKET_COUNT,
  latencyBucket,
  MAX_LATENCY_MS,
  MIN_LATENCY_MS,
  quantileMs,
} from "../../../src/traffic/stats/latencyBuckets.ts";

describe("latency buckets", () => {
  it("reads back every latency from 0.1 ms to 60 s within 2.5 %", () => {
    let worst = 0;
    for (let latency = MIN_LATENCY_MS; latency <= MAX_LATENCY_MS; latency *= 1.001) {
      const bucket = latencyBucket(latency);
      assert.ok(bucket >= 0 && bucket < LATENCY_BUCKET_COUNT);
      worst = Math.max(worst, Math.abs(bucketValueMs(bucket) - latency) / latency);
    }
    assert.ok(worst <= 0.025, `worst relative error ${worst}`);
    assert.ok(LATENCY_BUCKET_COUNT < 300, `${LATENCY_BUCKET_COUNT} buckets`);
  });

  it("clamps what is off the scale, and puts bad values in the first bucket", () => {
    assert.equal(latencyBucket(0), 0);
    assert.equal(latencyBucket(-5), 0);
    assert.equal(latencyBucket(Number.NaN), 0);
    assert.equal(latencyBucket(3_600_000), LATENCY_BUCKET_COUNT - 1);
    assert.equal(latencyBucket(Number.POSITIVE_INFINITY), LATENCY_BUCKET_COUNT - 1);
  });

  it("takes the nearest-rank quantile over the counts", () => {
    const counts = new Uint32Array(LATENCY_BUCKET_COUNT);
    counts[latencyBucket(1)] = 98;
    counts[latencyBucket(100)] = 1;
    counts[latencyBucket(1_000)] = 1;
    assert.equal(quantileMs(counts, 100, 0.5), bucketValueMs(latencyBucket(1)));
    assert.equal(quantileMs(counts, 100, 0.99), bucketValueMs(latencyBucket(100)));
    assert.equal(quantileMs(counts, 100, 1), bucketValueMs(latencyBucket(1_000)));
    assert.equal(quantileMs(counts, 0, 0.5), null);
  });
});
