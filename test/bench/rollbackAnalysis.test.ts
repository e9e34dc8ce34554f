/**
 * The rollback bench on the shared generator: which release answered is derived from the
 * answering instance and the controller's `instance.started` events (slots are reused across
 * releases, so by time), the generator's columns become epoch-ms records, a failing-canary trial
 * is analysed from synthetic events and records, and a trial whose generator fell behind is counted
 * and left out of the summaries.
 */

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type LoadgenRaw, recordsOf, summarizeLoad } from "../../bench/common/loadgen/summary.ts";
import { ProcessLedger } from "../../bench/foundation/processes.ts";
import { analyzeCanaryTrial, type CanaryTrialInput } from "../../bench/rollback/analysis.ts";
import { releaseAt, releaseTimeline, withReleases } from "../../bench/rollback/attribution.ts";
import type { CanaryTrial } from "../../bench/rollback/canaryTrial.ts";
import {
  APP_INSTANCE_HEADER,
  connectionsFor,
  epochNow,
  healthOf,
  INSTANCE_HEADER,
  type LoadHealth,
  type LoadRecord,
  OpenLoad,
  recordsFrom,
} from "../../bench/rollback/openLoad.ts";
import { summarizeCanary, usable } from "../../bench/rollback/results.ts";
import type { ScenarioFacts } from "../../bench/rollback/scenario.ts";
import type { EventRecord } from "../../src/store/index.ts";
import { type LocalHttpServer, listenLocal } from "../helpers/localHttpServer.ts";

const SERVICE = "checkout";
const STABLE = "v1";
const CANARY = "v2-errors";
const ROLLOUT = 7;

let seq = 0;
function event(at: number, type: string, fields: Partial<EventRecord> = {}): EventRecord {
  return {
    at,
    type,
    reason: fields.reason ?? "test",
    message: fields.message ?? type,
    seq: ++seq,
    ...fields,
  };
}

function started(at: number, instance: string, release: string, service = SERVICE): EventRecord {
  return event(at, "instance.started", { service, instance, data: { instance, service, release } });
}

function record(fields: Partial<LoadRecord> & { sent: number }): LoadRecord {
  return {
    due: fields.sent,
    written: fields.sent,
    done: fields.sent + 2,
    status: 200,
    instance: null,
    appInstance: null,
    version: null,
    error: null,
    ...fields,
    ...(fields.appInstance === undefined ? { appInstance: fields.instance ?? null } : {}),
  };
}

/**
 * A failing-canary run (epoch ms): v1 on checkout-0..2 from 0; deploy at 1000; v2-errors on
 * checkout-3..5 at 1100; 10 % to the canary at 2000; verdict at 5000 (decided at 4990); weights
 * back at 5010; canary stopped by 6000. Stale: checkout-4 already ran v2-errors before the deploy.
 */
function canaryEvents(): EventRecord[] {
  seq = 0;
  return [
    started(0, "checkout-0", STABLE),
    started(0, "checkout-1", STABLE),
    started(0, "checkout-2", STABLE),
    started(0, "catalog-3", CANARY, "catalog"), // another service: never attributed to checkout
    started(500, "checkout-4", CANARY), // before the deploy: not one of its instances
    event(1000, "deploy.started", { service: SERVICE, data: { rollout: ROLLOUT } }),
    started(1100, "checkout-3", CANARY),
    started(1100, "checkout-5", CANARY),
    event(2000, "traffic.weights", { data: { rollout: ROLLOUT, weights: { [STABLE]: 90, [CANARY]: 10 } } }),
    event(5000, "deploy.rolling-back", {
      reason: "canary-failed",
      message: "error rate",
      data: { rollout: ROLLOUT },
    }),
    event(5010, "traffic.weights", { data: { rollout: ROLLOUT, weights: { [STABLE]: 100, [CANARY]: 0 } } }),
    event(5900, "instance.stopped", { instance: "checkout-3" }),
    event(6000, "instance.stopped", { instance: "checkout-5" }),
  ];
}

/**
 * One request every 10 ms, sent 0 … 7990. Before 2000 every answer is stable, and the ones sent at
 * 100 and 200 failed (warm-up failures). From 2000 until 5000 every tenth request is the canary's
 * (checkout-3), and every third of those failed. Extras: one canary answer sent after the verdict
 * (5003), one unanswered timeout, one answer from checkout-4 (stale canary), one whose app named
 * itself differently, one from an instance never started.
 */
function canaryRecords(): LoadRecord[] {
  const records: LoadRecord[] = [];
  let canaryCount = 0;
  for (let sent = 0; sent < 8000; sent += 10) {
    const k = sent / 10;
    if (sent >= 2000 && sent < 5000 && k % 10 === 0) {
      const bad = canaryCount++ % 3 === 0;
      records.push(record({ sent, instance: "checkout-3", status: bad ? 500 : 200 }));
    } else {
      const warmupFailure = sent === 100 || sent === 200;
      records.push(record({ sent, instance: `checkout-${k % 3}`, status: warmupFailure ? 503 : 200 }));
    }
  }
  records.push(record({ sent: 5003, done: 5008, instance: "checkout-5" }));
  records.push(record({ sent: 3005, done: 13_005, status: 0, error: "timeout" }));
  records.push(record({ sent: 3007, instance: "checkout-4" }));
  records.push(record({ sent: 3009, instance: "checkout-1", appInstance: "checkout-2" }));
  records.push(record({ sent: 3011, instance: "checkout-9" }));
  return records.sort((a, b) => a.sent - b.sent);
}

function canaryInput(records = canaryRecords()): CanaryTrialInput {
  return {
    service: SERVICE,
    stable: STABLE,
    canary: CANARY,
    rollout: ROLLOUT,
    decidedAt: 4990,
    events: canaryEvents(),
    records,
    firstStepPercent: 10,
    canaryErrorRate: 0.3,
  };
}

describe("release attribution from instance.started events", () => {
  it("looks the release up by time, since slots are reused across releases", () => {
    seq = 0;
    const events = [
      started(0, "checkout-3", "v1"),
      started(5000, "checkout-3", CANARY),
      started(9000, "checkout-3", "v3-migrates"),
      started(0, "catalog-0", "v1", "catalog"),
    ];
    const timeline = releaseTimeline(events, SERVICE);
    assert.equal(releaseAt(timeline, "checkout-3", -1), null, "not started yet");
    assert.equal(releaseAt(timeline, "checkout-3", 0), "v1");
    assert.equal(releaseAt(timeline, "checkout-3", 4999.9), "v1");
    assert.equal(releaseAt(timeline, "checkout-3", 5000), CANARY);
    assert.equal(releaseAt(timeline, "checkout-3", 8999), CANARY);
    assert.equal(releaseAt(timeline, "checkout-3", 20_000), "v3-migrates");
    assert.equal(releaseAt(timeline, "catalog-0", 100), null, "another service's instance");
    assert.equal(releaseAt(releaseTimeline(events, null), "catalog-0", 100), "v1");
  });

  it("sorts starts that arrive out of order, and ignores events without a release", () => {
    seq = 0;
    const events = [
      started(5000, "checkout-3", CANARY),
      started(0, "checkout-3", "v1"),
      event(6000, "instance.started", { service: SERVICE, instance: "checkout-3", data: {} }),
    ];
    const timeline = releaseTimeline(events, SERVICE);
    assert.deepEqual(
      timeline.get("checkout-3")!.map((s) => s.release),
      ["v1", CANARY],
    );
    assert.equal(releaseAt(timeline, "checkout-3", 7000), CANARY);
  });

  it("sets each record's version from when its answer ended, and leaves the input alone", () => {
    seq = 0;
    const timeline = releaseTimeline(
      [started(0, "checkout-3", "v1"), started(5000, "checkout-3", CANARY)],
      SERVICE,
    );
    const input = [
      record({ sent: 4990, done: 4999, instance: "checkout-3" }),
      record({ sent: 4995, done: 5001, instance: "checkout-3" }),
      record({ sent: 4996, done: 6000, status: 0, error: "timeout" }),
    ];
    const out = withReleases(input, timeline);
    assert.deepEqual(
      out.map((r) => r.version),
      ["v1", CANARY, null],
    );
    assert.ok(
      input.every((r) => r.version === null),
      "input not mutated",
    );
  });
});

describe("the generator's columns as rollback records", () => {
  it("turns ms-from-t0 columns into epoch ms, with both instance headers", () => {
    const t0 = 1_700_000_000_000.25;
    const records = recordsFrom(
      {
        dueMs: [0, 10, 20],
        sentMs: [0.5, 14, 9000],
        written: [true, true, false],
        doneMs: [3, 20, 9000],
        status: [200, 500, 0],
        error: [null, null, "connect-error"],
        headerClass: [0, 0, 0],
        headers: {
          [INSTANCE_HEADER]: ["checkout-0", "checkout-3", null],
          [APP_INSTANCE_HEADER]: ["checkout-0", "checkout-3", null],
        },
      },
      t0,
    );
    assert.equal(records.length, 3);
    assert.deepEqual(records[0], {
      due: t0,
      sent: t0 + 0.5,
      written: t0 + 0.5,
      done: t0 + 3,
      status: 200,
      instance: "checkout-0",
      appInstance: "checkout-0",
      version: null,
      error: null,
    });
    assert.equal(records[1]!.sent - records[1]!.due, 4, "lateness kept: written − due");
    assert.equal(records[1]!.instance, "checkout-3");
    assert.equal(records[2]!.written, null, "never written");
    assert.equal(records[2]!.sent, t0 + 9000, "sent = when it failed");
    assert.equal(records[2]!.error, "connect-error");
  });

  it("sizes the connections for every request that can be outstanding", () => {
    assert.equal(connectionsFor(100, 10_000), 1064);
    assert.equal(connectionsFor(100, 200), 164, "at least a second's worth");
  });
});

/** A synthetic generator run: `n` requests every 10 ms, each written `lateMs` after its due time. */
function raw(n: number, lateMs: number, failEvery = 0): LoadgenRaw {
  const written = Float64Array.from({ length: n }, (_, i) => i * 10 + lateMs);
  return {
    t0EpochMs: 1_000_000,
    intervalMs: 10,
    warmup: 0,
    written,
    done: written.map((w) => w + 2),
    status: Int32Array.from({ length: n }, (_, i) => (failEvery > 0 && i % failEvery === 0 ? 0 : 200)),
    errors: Array.from({ length: n }, (_, i) => (failEvery > 0 && i % failEvery === 0 ? "timeout" : null)),
    headerClass: new Int32Array(n),
    headers: { [INSTANCE_HEADER]: Array.from({ length: n }, () => "checkout-0") },
  };
}

describe("the generator's health", () => {
  it("is valid when every request went out on time", () => {
    const health = healthOf(summarizeLoad(raw(1000, 0.05)));
    assert.equal(health.valid, true);
    assert.equal(health.invalidReason, null);
    assert.equal(health.offeredRatePerSecond, 100);
    assert.equal(health.due, 1000);
    assert.equal(health.written, 1000);
    assert.ok(Math.abs(health.achievedFraction - 1) < 0.01, `achieved ${health.achievedFraction}`);
    assert.ok(Math.abs(health.latenessP99Ms! - 0.05) < 1e-9);
    assert.ok(Math.abs(health.latencyP99Ms! - 2.05) < 1e-9, "latency from the due time");
  });

  it("is invalid, with a reason, when the requests went out late", () => {
    const health = healthOf(summarizeLoad(raw(1000, 20)));
    assert.equal(health.valid, false);
    assert.match(health.invalidReason!, /lateness p99 20\.00 ms > 5 ms/);
    assert.ok(Math.abs(health.latencyP99Ms! - 22) < 1e-9, "the generator's delay counts in the latency");
  });

  it("keeps the records of a run as the summary decodes them", () => {
    const r = raw(5, 1);
    const records = recordsFrom(recordsOf(r), r.t0EpochMs);
    assert.deepEqual(
      records.map((x) => x.written! - x.due),
      [1, 1, 1, 1, 1],
    );
    assert.ok(records.every((x) => x.instance === "checkout-0" && x.appInstance === null));
  });
});

describe("analyzeCanaryTrial on synthetic records", () => {
  const figures = analyzeCanaryTrial(canaryInput());

  it("takes the times from the events", () => {
    assert.equal(figures.at.deployStarted, 1000);
    assert.equal(figures.at.canaryWeights, 2000);
    assert.equal(figures.at.verdict, 5000);
    assert.equal(figures.at.weightsBack, 5010);
    assert.equal(figures.at.canaryStopped, 6000);
    assert.deepEqual(figures.canaryInstances, ["checkout-3", "checkout-5"]);
    assert.equal(figures.rollback.weightsEventMs, 10);
    assert.equal(figures.rollback.decidedToWeightsMs, 20);
    assert.equal(figures.durations.judging, 3000);
    assert.equal(figures.durations.exposure, 3010);
  });

  it("attributes answers to the canary by release, and sees one sent after the verdict", () => {
    // Canary answers: 30 by checkout-3 (2000…4900), 1 by checkout-5 (5003), 1 by the stale checkout-4.
    assert.equal(figures.byRelease[CANARY], 32);
    assert.equal(figures.byRelease["(unknown)"], 1, "checkout-9 was never started");
    assert.equal(figures.rollback.canaryAnswersSentAfterVerdict, 1);
    assert.equal(figures.rollback.lastCanarySendMs, 3);
    assert.equal(figures.rollback.lastCanaryAnswerMs, 8);
    assert.equal(figures.beforeFirstStep.canaryAnswers, 0);
  });

  it("counts the errors in each window", () => {
    const w = figures.errors.canaryToVerdict;
    // 300 regular + 4 extras (3005 timeout, 3007, 3009, 3011) sent in [2000, 5000).
    assert.equal(w.requests, 304);
    // 10 canary 500s (every third of 30) + the timeout.
    assert.equal(w.failed, 11);
    assert.equal(w.byCanary, 31, "30 by checkout-3 and the stale checkout-4");
    assert.ok(Math.abs(w.canaryErrorRate! - 10 / 31) < 1e-12);
    assert.equal(figures.errors.deployToVerdict.requests, 404);
    assert.equal(figures.errors.afterVerdict.requests, 301);
    assert.equal(figures.errors.afterVerdict.failed, 0);
    assert.equal(figures.errors.unanswered, 1);
    assert.equal(figures.errors.failedOnStable, 2, "the two warm-up 503s");
    assert.ok(Math.abs(figures.errors.expectedShare - 0.03) < 1e-12);
  });

  it("counts the warm-up before the deploy on its own", () => {
    assert.deepEqual(figures.warmup, { requests: 100, failed: 2 });
    assert.equal(figures.load.requests, 805);
    assert.equal(figures.load.failed, 13);
    assert.equal(figures.load.sentFrom, 0);
    assert.equal(figures.load.sentTo, 7990);
    assert.equal(figures.timeline[0]!.requests, 100);
    assert.equal(figures.timeline[1]!.byCanary, 10);
  });

  it("flags answers whose attribution is in doubt", () => {
    assert.deepEqual(figures.attribution, { instanceMismatches: 1, unattributed: 1, canaryOutsideDeploy: 1 });
    assert.equal(figures.attributionMismatches, 2);
  });

  it("ignores any version the records came with", () => {
    const lying = canaryRecords().map((r) => ({ ...r, version: CANARY }));
    const again = analyzeCanaryTrial(canaryInput(lying));
    assert.equal(again.byRelease[CANARY], 32);
    assert.equal(again.errors.canaryToVerdict.byCanary, 31);
  });

  it("sees a clean trial as clean", () => {
    const clean = canaryRecords().filter(
      (r) =>
        r.instance !== "checkout-4" &&
        r.instance !== "checkout-9" &&
        r.appInstance === r.instance &&
        !(r.instance === "checkout-5" && r.sent >= 5000),
    );
    const f = analyzeCanaryTrial(canaryInput(clean));
    assert.deepEqual(f.attribution, { instanceMismatches: 0, unattributed: 0, canaryOutsideDeploy: 0 });
    assert.equal(f.rollback.canaryAnswersSentAfterVerdict, 0);
    assert.equal(f.rollback.lastCanarySendMs, 4900 - 5000);
  });
});

const FACTS: ScenarioFacts = {
  service: SERVICE,
  frontPort: 7200,
  replicas: 3,
  steps: [10, 50, 100],
  stepDurationMs: 10_000,
  stepDeadlineMs: 40_000,
  soakMs: 60_000,
  minRequests: 50,
  maxErrorRateIncrease: 0.01,
  slo: { errorRate: 0.01, p99Ms: 500 },
  canaryErrorRate: 0.3,
};

function health(valid: boolean, achievedFraction = 1): LoadHealth {
  return {
    offeredRatePerSecond: 100,
    achievedRatePerSecond: 100 * achievedFraction,
    achievedFraction,
    due: 800,
    written: 800,
    latenessP99Ms: valid ? 0.1 : 12,
    latenessMaxMs: valid ? 0.3 : 40,
    latencyP99Ms: valid ? 3 : 50,
    valid,
    invalidReason: valid ? null : "generator lateness p99 12.00 ms > 5 ms (requests waited to be written)",
  };
}

describe("summarizeCanary with the generator's validity", () => {
  const base = analyzeCanaryTrial(canaryInput());
  const withWeights = (weightsEventMs: number, warmupFailed: number) => ({
    ...base,
    rollback: { ...base.rollback, weightsEventMs },
    warmup: { requests: 100, failed: warmupFailed },
  });
  const trials: CanaryTrial[] = [
    { trial: 1, loadAverage1m: 0, ok: true, figures: withWeights(10, 2), load: health(true) },
    { trial: 2, loadAverage1m: 0, ok: true, figures: withWeights(30, 1), load: health(true, 0.99) },
    // Invalid: its (absurd) figures must not reach any summary.
    { trial: 3, loadAverage1m: 0, ok: true, figures: withWeights(9999, 50), load: health(false) },
    // Ran, but without a generator verdict: not usable either.
    { trial: 4, loadAverage1m: 0, ok: true, figures: withWeights(8888, 40) },
    // Failed to run: neither ok nor invalid.
    { trial: 5, loadAverage1m: 0, ok: false, error: "deploy failed", load: health(false) },
  ];
  const summary = summarizeCanary(trials, FACTS);

  it("counts invalid trials and leaves them out", () => {
    assert.equal(summary.trials, 5);
    assert.equal(summary.ok, 4);
    assert.equal(summary.invalid, 2);
    assert.equal(summary.valid, 2);
    assert.equal(summary.invalidReasons.length, 2);
    assert.match(summary.invalidReasons[0]!, /^trial 3: generator lateness p99/);
    assert.match(summary.invalidReasons[1]!, /^trial 4: no load generator result/);
    assert.deepEqual(
      trials.map((t) => usable(t)),
      [true, true, false, false, false],
    );
  });

  it("summarises only the valid trials", () => {
    assert.equal(summary.verdictToWeightsEvent!.n, 2);
    assert.equal(summary.verdictToWeightsEvent!.max, 30);
    assert.equal(summary.achievedFraction!.min, 0.99);
    assert.equal(summary.latenessP99Ms!.max, 0.1);
    assert.equal(summary.latencyP99Ms!.max, 3);
    assert.equal(summary.warmupRequestsTotal, 200);
    assert.equal(summary.warmupFailedTotal, 3);
    assert.equal(summary.canaryAnswersAfterVerdictTotal, 2);
    assert.ok(Math.abs(summary.expectedShare - 0.03) < 1e-12);
  });
});

describe("the rollback load on the shared generator", () => {
  let server: LocalHttpServer;
  let port: number;
  const ledger = new ProcessLedger();

  before(async () => {
    // Stands in for the data plane in front of the demo app: the endpoint's name in
    // x-homeostat-instance, the app's own in x-instance; every fourth answer a 500.
    let n = 0;
    server = await listenLocal((_req, res) => {
      const k = n++;
      const name = `checkout-${k % 2}`;
      res
        .writeHead(k % 4 === 3 ? 500 : 200, { [INSTANCE_HEADER]: name, [APP_INSTANCE_HEADER]: name })
        .end('{"version":"not read"}');
    });
    port = server.port;
  });

  after(async () => {
    await server.close();
    ledger.sweep();
  });

  it("keeps both instance headers and the generator's health", async () => {
    const load = new OpenLoad({ port, path: "/", ratePerSecond: 100, timeoutMs: 1000, ledger });
    assert.equal(load.started, false);
    await assert.rejects(load.stop(), /not started/);
    const t0 = load.start();
    assert.ok(load.started);
    await new Promise((resolve) => setTimeout(resolve, t0 + 400 - epochNow()));
    const result = await load.stop();
    assert.equal(await load.stop(), result, "stop() again: the same result");
    assert.ok(Math.abs(result.t0 - t0) < 0.01, "t0 as start() asked for it, to the µs");
    const { records } = result;
    assert.ok(records.length >= 30 && records.length <= 60, `${records.length} requests`);
    for (const [i, r] of records.entries()) {
      assert.ok(Math.abs(r.due - (t0 + i * 10)) < 0.01, `due ${r.due - t0}`);
      assert.ok(r.written !== null && r.written >= r.due && r.sent === r.written);
      assert.ok(r.done >= r.written);
      assert.match(r.instance ?? "", /^checkout-[01]$/);
      assert.equal(r.appInstance, r.instance);
      assert.equal(r.version, null, "no version until attributed");
    }
    assert.ok(records.some((r) => r.status === 500) && records.some((r) => r.status === 200));
    assert.equal(result.health.due, records.length);
    assert.equal(result.health.offeredRatePerSecond, 100);
    assert.ok(result.health.latenessP99Ms !== null && result.health.latenessP99Ms < 50);
  });
});
