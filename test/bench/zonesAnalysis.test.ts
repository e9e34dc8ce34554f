/**
 * The zone bench's analysis (bench/zones/analysis.ts, results.ts) on made-up trials: runs above the
 * ceiling are the readings' measured durations added up and compared with the step as they are,
 * each trial's checks pass or fail on their own, latency runs from the due time, HAProxy's DOWN
 * counts as the failed zone's first ejection, pairs are made per round and their ratios' median
 * reported, and a trial whose generator fell behind is counted and left out of every summary.
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  aboveCeiling,
  allChecksPass,
  analyzeTrial,
  countOutcomes,
  generatorHealth,
  type InstanceSecond,
  outageP99,
  pairedRatio,
  pairTrials,
  type TrialFigures,
  trialChecks,
} from "../../bench/zones/analysis.ts";
import { scenario } from "../../bench/zones/fleet.ts";
import type { LoadRecord, LoadResult } from "../../bench/zones/load.ts";
import { compareWithBaseline, summarizeScenario } from "../../bench/zones/results.ts";
import type { Sample } from "../../bench/zones/sampler.ts";
import type { Trial } from "../../bench/zones/trial.ts";

function second(instance: string, end: number, utilization: number, durationMs = 1000): InstanceSecond {
  return {
    instance,
    zone: "zone-b",
    end,
    durationMs,
    utilization,
    offered: utilization,
    servedPerSecond: 0,
    queuedAtEnd: 0,
  };
}

function record(
  due: number,
  done: number,
  outcome: LoadRecord["outcome"],
  criticality: LoadRecord["criticality"] = "default",
): LoadRecord {
  return {
    due,
    criticality,
    sent: due + 1,
    written: due + 1,
    done,
    status: outcome === "ok" ? 200 : outcome === "shed" ? 503 : 0,
    outcome,
    shedReason: outcome === "shed" ? "queue-timeout" : null,
    instance: null,
    error: outcome === "connection-error" ? "ECONNRESET" : null,
  };
}

function loadResult(records: LoadRecord[], valid = true): LoadResult {
  return {
    t0: 1_000_000,
    ratePerSecond: 100,
    records,
    maxLatenessMs: 1,
    achievedRate: valid ? 100 : 90,
    valid,
    invalidReason: valid ? null : "generator lateness p99 7.31 ms > 5 ms",
    summary: { lateness: { p99: valid ? 0.5 : 7.31 } } as LoadResult["summary"],
  };
}

describe("runs above the ceiling", () => {
  it("two consecutive readings of 1,000.45 ms make 2,000.9 ms: longer than a 2,000 ms step, a miss", () => {
    const seconds = [
      second("api-1", 1000, 0.5),
      second("api-1", 2000.45, 0.9, 1000.45),
      second("api-1", 3000.9, 0.95, 1000.45),
      second("api-1", 4000.9, 0.5),
    ];
    const above = aboveCeiling(seconds, 0.8);
    assert.ok(Math.abs(above.longestMs - 2000.9) < 1e-9, `longest ${above.longestMs}`);
    const checks = trialChecks({
      longestAboveCeilingMs: above.longestMs,
      stepIntervalMs: 2000,
      firstShedMs: { critical: null, default: null, sheddable: null },
      critical: { sent: 100, failed: 0 },
    });
    assert.equal(checks.ceilingHeldWithinOneStep, false);
    assert.equal(allChecksPass(checks), false);
  });

  it("exactly one step passes; a reading at the ceiling is not above it", () => {
    const seconds = [second("api-1", 1000, 0.81), second("api-1", 2000, 0.99), second("api-1", 3000, 0.8)];
    assert.equal(aboveCeiling(seconds, 0.8).longestMs, 2000);
  });

  it("a gap in the readings breaks a run, and two instances' runs never add up", () => {
    const seconds = [
      second("api-1", 1000, 0.9),
      // api-1 not read for 2 s: a new run starts.
      second("api-1", 4000, 0.9),
      second("api-3", 1000, 0.9),
      second("api-3", 2000, 0.3),
    ];
    const above = aboveCeiling(seconds, 0.8);
    assert.equal(above.longestMs, 1000);
    assert.equal(above.instanceSeconds, 3);
  });
});

describe("each trial's checks", () => {
  const none = { critical: null, default: null, sheddable: null };
  const base = { longestAboveCeilingMs: 0, stepIntervalMs: 2000, firstShedMs: none };

  it("critical errors: 1 in 1,000 is 0.1 %, not below it", () => {
    assert.equal(
      trialChecks({ ...base, critical: { sent: 1000, failed: 1 } }).criticalErrorRateBelow0_1Percent,
      false,
    );
    assert.equal(
      trialChecks({ ...base, critical: { sent: 1001, failed: 1 } }).criticalErrorRateBelow0_1Percent,
      true,
    );
    assert.equal(
      trialChecks({ ...base, critical: { sent: 0, failed: 0 } }).criticalErrorRateBelow0_1Percent,
      false,
    );
  });

  it("shed order: a default shed with no sheddable one, or before it, is a miss", () => {
    const at = (d: number | null, s: number | null) =>
      trialChecks({
        ...base,
        firstShedMs: { critical: null, default: d, sheddable: s },
        critical: { sent: 10, failed: 0 },
      }).sheddableShedBeforeDefault;
    assert.equal(at(null, null), true);
    assert.equal(at(null, 500), true);
    assert.equal(at(600, 500), true);
    assert.equal(at(500, 500), true);
    assert.equal(at(400, 500), false);
    assert.equal(at(400, null), false);
  });
});

describe("request outcomes", () => {
  it("latency runs from the due time, not from the send", () => {
    const counts = countOutcomes([record(0, 50, "ok"), record(10, 30, "ok"), record(20, 40, "shed")]);
    assert.equal(counts.sent, 3);
    assert.equal(counts.failed, 1);
    assert.equal(counts.shed, 1);
    assert.equal(counts.okP99Ms, 50);
    assert.equal(counts.okP50Ms, 20);
  });

  it("the generator's own verdict decides validity", () => {
    const bad = generatorHealth(loadResult([], false), 100);
    assert.equal(bad.valid, false);
    assert.match(bad.invalidReason ?? "", /lateness/);
    assert.equal(bad.latenessP99Ms, 7.31);
    const good = generatorHealth(loadResult([]), 100);
    assert.equal(good.valid, true);
    assert.equal(good.invalidReason, null);
  });
});

describe("analyzeTrial", () => {
  const s = scenario("two-zones");
  const t0 = 1_000_000;
  const faultAt = t0 + 3000;
  /** api-1 (zone-b) read every 1,000.45 ms; utilization `u[k]` over reading k. */
  function samples(u: number[]): Sample[] {
    let busy = 0;
    const out: Sample[] = [];
    for (let k = 0; k <= u.length; k++) {
      if (k > 0) busy += u[k - 1]! * 1000.45 * 10;
      out.push({
        due: k * 1000,
        instances: [
          {
            instance: "api-1",
            slot: 1,
            zone: "zone-b",
            at: k * 1000.45,
            stats: {
              uptimeMs: k * 1000.45,
              served: k * 60,
              busyMs: busy,
              queued: 0,
              inWork: 0,
              abandoned: 0,
              workers: 10,
              workMs: 100,
              capacityRps: 100,
            },
          },
        ],
        attempts: { "api-0": k < 4 ? k * 10 : 40, "api-1": k * 10 },
        status: null,
        failover: null,
      });
    }
    return out;
  }
  const records = [
    record(1000, 1100, "ok", "critical"),
    record(2000, 2100, "shed", "sheddable"),
    record(3500, 3600, "ok", "critical"),
    record(4000, 4900, "ok", "default"),
    record(4100, 4300, "shed", "sheddable"),
  ];

  it("from raw readings and records: a 2,000.9 ms run misses, warm-up failures counted, HAProxy's DOWN is the ejection", () => {
    const f = analyzeTrial({
      scenario: s,
      load: loadResult(records),
      samples: samples([0.5, 0.5, 0.5, 0.9, 0.95, 0.5, 0.5]),
      events: [
        { at: faultAt + 1400, type: "haproxy.down", instance: "api-0", message: "HAProxy: api-0 DOWN" },
        { at: faultAt + 1500, type: "haproxy.down", instance: "api-1", message: "not the failed zone" },
      ],
      faultAt,
      clearedAt: faultAt + 4000,
      stepIntervalMs: 2000,
    });
    assert.ok(Math.abs(f.longestAboveCeilingMs - 2000.9) < 1e-6, `longest ${f.longestAboveCeilingMs}`);
    assert.equal(f.checks.ceilingHeldWithinOneStep, false);
    assert.equal(f.checks.criticalErrorRateBelow0_1Percent, true);
    assert.equal(f.checks.sheddableShedBeforeDefault, true);
    assert.equal(f.warmupFailed, 1);
    assert.equal(f.warmupSent, 2);
    assert.equal(f.firstEjectionMs, 1400);
    assert.equal(f.requests.outage.default.okP99Ms, 900);
    assert.equal(f.sinceFault.sheddable.shed, 1);
    // api-0 (zone-a) attempts last grew between the samples due 3 s and 4 s after t0: 1 s after the fault.
    assert.equal(f.failedZoneLastAttemptMs, 1000);
  });
});

/** A trial with just what the summaries and comparisons read. */
function trial(
  over: Partial<Trial> & { p99?: number; failed?: number; checksOk?: boolean; valid?: boolean },
): Trial {
  const critical = countOutcomes([record(0, 10, "ok", "critical")]);
  const failedRecords = Array.from({ length: over.failed ?? 0 }, (_, i) =>
    record(i, i + 5, "shed", "sheddable"),
  );
  const sheddable = countOutcomes([
    ...failedRecords,
    ...Array.from({ length: 10 }, (_, i) => record(i, i + 5, "ok", "sheddable")),
  ]);
  const ok = countOutcomes([record(0, over.p99 ?? 100, "ok", "default")]);
  const okChecks = over.checksOk ?? true;
  const figures = {
    requests: { before: {}, outage: { critical: ok, default: ok, sheddable: ok }, after: {} },
    sinceFault: { critical, default: ok, sheddable },
    peakSurvivorUtilization: 0.9,
    survivorSecondsAboveCeiling: 4,
    longestAboveCeilingMs: 1000,
    warmupFailed: 2,
    warmupSent: 100,
    failoverActed: true,
    checks: {
      ceilingHeldWithinOneStep: okChecks,
      sheddableShedBeforeDefault: true,
      criticalErrorRateBelow0_1Percent: true,
    },
  } as unknown as TrialFigures;
  return {
    scenario: "three-zones",
    fault: "partition",
    loadFraction: 0.6,
    mode: "homeostat",
    repeat: 0,
    order: 0,
    ratePerSecond: 360,
    before: null,
    readyAfterMs: null,
    faultRecord: null,
    requests: 0,
    generator: {
      offeredRatePerSecond: 360,
      achievedRatePerSecond: 360,
      latenessP99Ms: 1,
      maxLatenessMs: 2,
      valid: over.valid ?? true,
      invalidReason: over.valid === false ? "fell behind" : null,
    },
    figures,
    failoverAtEnd: null,
    wallMs: 60_000,
    ok: true,
    ...over,
  };
}

describe("paired comparison with HAProxy", () => {
  const key = { scenario: "three-zones", fault: "partition", loadFraction: 0.6 } as const;

  it("pairs by round, leaves out a round with an invalid trial, medians the ratios", () => {
    const trials = [
      trial({ mode: "haproxy", repeat: 0, p99: 800 }),
      trial({ mode: "homeostat", repeat: 0, p99: 200 }),
      trial({ mode: "homeostat", repeat: 1, p99: 100 }),
      trial({ mode: "haproxy", repeat: 1, p99: 1000 }),
      trial({ mode: "haproxy", repeat: 2, p99: 500 }),
      trial({ mode: "homeostat", repeat: 2, p99: 400 }),
      // Round 3: HAProxy's generator fell behind; no pair.
      trial({ mode: "haproxy", repeat: 3, p99: 50, valid: false }),
      trial({ mode: "homeostat", repeat: 3, p99: 5000 }),
      // Another load: never paired with the 60 % trials.
      trial({ mode: "haproxy", repeat: 0, p99: 1, loadFraction: 0.7 }),
    ];
    const pairs = pairTrials(trials, key, "homeostat", "haproxy");
    assert.deepEqual(
      pairs.map((p) => p.repeat),
      [0, 1, 2],
    );
    const r = pairedRatio(pairs, outageP99);
    assert.deepEqual(r.ratios, [0.25, 0.1, 0.8]);
    assert.equal(r.summary?.p50, 0.25);
    assert.equal(r.summary?.min, 0.1);
    assert.equal(r.summary?.max, 0.8);
  });

  it("a pair whose HAProxy figure is 0 has no ratio and is kept apart", () => {
    const trials = [
      trial({ mode: "haproxy", repeat: 0, failed: 0 }),
      trial({ mode: "homeostat", repeat: 0, failed: 3 }),
      trial({ mode: "haproxy", repeat: 1, failed: 5 }),
      trial({ mode: "homeostat", repeat: 1, failed: 1 }),
    ];
    const [comparison] = compareWithBaseline(trials, [key], ["haproxy", "homeostat"]);
    const failed = comparison!.ratios.failedShare!;
    assert.equal(comparison!.pairs, 2);
    assert.equal(failed.ratios.length, 1);
    assert.equal(failed.zeroBaseline.length, 1);
    assert.ok(failed.zeroBaseline[0]! > 0);
  });
});

describe("summaries", () => {
  it("count invalid trials, leave them out, and count trials passing every check", () => {
    const trials = [
      trial({ repeat: 0, checksOk: true }),
      trial({ repeat: 1, checksOk: false }),
      trial({ repeat: 2, valid: false, p99: 99_999 }),
      trial({ repeat: 3, ok: false, figures: null }),
    ];
    const x = summarizeScenario(
      { scenario: "three-zones", fault: "partition", loadFraction: 0.6, mode: "homeostat" },
      trials,
    );
    assert.equal(x.trials, 4);
    assert.equal(x.ok, 3);
    assert.equal(x.invalid, 1);
    assert.equal(x.valid, 2);
    assert.equal(x.trialsOk, 1);
    assert.equal(x.checks.ceilingHeldWithinOneStep, 1);
    assert.equal(x.warmupFailed, 4);
    assert.equal(x.outageOkP99Ms?.max, 100, "the invalid trial's p99 is left out");
  });
});
