/**
 * The failover bench's reading of a trial (bench/failover/analysis.ts), its own checks on each
 * trial, the pairing by round, the headline derived from the data, and HAProxy's configurations
 * (the passive checks of its best one).
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { RequestRecords } from "../../bench/common/loadgen/summary.ts";
import {
  analyzeTrial,
  checksPass,
  failoverHeadline,
  HAPROXY_RETRIES,
  HOMEOSTAT_ATTEMPTS,
  HOMEOSTAT_HEDGED,
  HOMEOSTAT_SHED,
  INSTANCE_HEADER,
  pairByRound,
  type TrialCheckInput,
  type TrialFigures,
  trialChecks,
} from "../../bench/failover/analysis.ts";
import { haproxyFailoverConfig } from "../../bench/failover/haproxyConfig.ts";
import {
  type FailoverTrial,
  haproxyBestOf,
  headlineOf,
  pairedComparisons,
  summarizeScenario,
} from "../../bench/failover/results.ts";

const KILL = 5_000;

/**
 * Requests due every 10 ms from 0 to 10 s (the kill at 5 s), each sent on time and answered 200
 * in 6 ms by api-0, api-1, api-2 in turn; `header` is the retry header, "1"/"0" (not retried).
 */
function records(header: string): RequestRecords {
  const dueMs = Array.from({ length: 1_000 }, (_, i) => i * 10);
  return {
    dueMs,
    sentMs: [...dueMs],
    written: dueMs.map(() => true),
    doneMs: dueMs.map((d) => d + 6),
    status: dueMs.map(() => 200),
    error: dueMs.map(() => null),
    headerClass: dueMs.map(() => 0),
    headers: {
      [INSTANCE_HEADER]: dueMs.map((_, i) => `api-${i % 3}`),
      [header]: dueMs.map(() => (header === HOMEOSTAT_ATTEMPTS ? "1" : "0")),
      [HOMEOSTAT_SHED]: dueMs.map(() => null),
    },
  };
}

describe("failover bench: one trial's figures", () => {
  it("counts failed, retried and the last request that hit the killed instance (HAProxy's %rc)", () => {
    const r = records(HAPROXY_RETRIES);
    // Two requests sent after the kill failed (503 and no answer), three were retried: "+1"
    // (redispatched), "1" (same server), "0" is not a retry.
    r.status[502] = 503;
    r.status[503] = 0;
    r.error[503] = "timeout";
    r.headers[HAPROXY_RETRIES]![504] = "+1";
    r.headers[HAPROXY_RETRIES]![505] = "1";
    r.headers[HAPROXY_RETRIES]![530] = "+1";
    r.sentMs[530] = 5_303; // sent 3 ms after its due time
    const f = analyzeTrial(r, KILL, "api-2", HAPROXY_RETRIES);
    assert.equal(f.requests, 1_000);
    assert.equal(f.failed, 2);
    assert.deepEqual(f.failures, { "503": 1, timeout: 1 });
    assert.equal(f.retried, 3);
    assert.equal(f.lastTouchedMs, 303, "the send time of the last retried request, from the kill");
    assert.equal(f.lastFailedMs, 30);
    assert.equal(f.failedLongBeforeKill, 0);
    assert.equal(f.maxLatenessMs, 3);
    // api-2 answered every third request before the kill: due 20, 50, … 4,970 ms.
    assert.equal(f.victimServedBeforeKill, 166);
  });

  it("reads Homeostat's attempts header: more than one attempt is a retry, and a shed 503 names its reason", () => {
    const r = records(HOMEOSTAT_ATTEMPTS);
    r.headers[HOMEOSTAT_ATTEMPTS]![501] = "2";
    r.headers[HOMEOSTAT_ATTEMPTS]![502] = "3";
    r.status[100] = 503;
    r.headers[HOMEOSTAT_SHED]![100] = "queue-full";
    const f = analyzeTrial(r, KILL, "api-1", HOMEOSTAT_ATTEMPTS);
    assert.equal(f.retried, 2);
    assert.equal(f.failed, 1);
    assert.deepEqual(f.failures, { "503 queue-full": 1 });
    assert.equal(f.failedLongBeforeKill, 1, "due 4 s before the kill: not the kill's doing");
    assert.equal(f.lastTouchedMs, 20);
  });

  it("does not take a hedge for a retry: a hedged request with 2 attempts is not touched, one with 3 is", () => {
    const r = records(HOMEOSTAT_ATTEMPTS);
    r.headers[HOMEOSTAT_HEDGED] = r.dueMs.map(() => null);
    // A hedge 4 s after the kill (2 attempts: the first and its hedge): not the dead instance's doing.
    r.headers[HOMEOSTAT_ATTEMPTS]![900] = "2";
    r.headers[HOMEOSTAT_HEDGED]![900] = "1";
    // Right after the kill: a retry and then a hedge of the retried attempt (3 attempts).
    r.headers[HOMEOSTAT_ATTEMPTS]![501] = "3";
    r.headers[HOMEOSTAT_HEDGED]![501] = "1";
    const f = analyzeTrial(r, KILL, "api-1", HOMEOSTAT_ATTEMPTS);
    assert.equal(f.hedged, 2);
    assert.equal(f.retried, 1);
    assert.equal(f.lastTouchedMs, 10, "the retried request, not the late hedge (which would say 4,000 ms)");
  });

  it("finds when the replacement first answered: the victim's name among requests due after the kill", () => {
    const r = records(HOMEOSTAT_ATTEMPTS);
    // api-0 is dead from the kill; its name comes back at 5,600 ms (a replacement).
    for (let i = 500; i < 1_000; i++)
      if (r.headers[INSTANCE_HEADER]![i] === "api-0") r.headers[INSTANCE_HEADER]![i] = "api-1";
    r.headers[INSTANCE_HEADER]![560] = "api-0";
    r.headers[INSTANCE_HEADER]![700] = "api-0";
    const f = analyzeTrial(r, KILL, "api-0", HOMEOSTAT_ATTEMPTS);
    assert.equal(f.replacementServesMs, 606);
    assert.equal(f.failed, 0);
    assert.equal(f.lastTouchedMs, null);
  });
});

function figures(overrides: Partial<TrialFigures> = {}): TrialFigures {
  const r = records(HOMEOSTAT_ATTEMPTS);
  return { ...analyzeTrial(r, KILL, "api-0", HOMEOSTAT_ATTEMPTS), ...overrides };
}

function checkInput(overrides: Partial<TrialCheckInput> = {}): TrialCheckInput {
  return {
    ran: true,
    figures: figures(),
    warmupFailed: 0,
    quietBefore: true,
    killSeenMs: 18,
    maxLatenessMs: 100,
    generator: { valid: true, invalidReason: null },
    ...overrides,
  };
}

describe("failover bench: the bench's own checks on a trial", () => {
  it("passes a clean trial, every check named", () => {
    const checks = trialChecks(checkInput());
    assert.deepEqual(
      checks.map((c) => c.name),
      [
        "ran",
        "victim-took-traffic",
        "no-failure-before-kill",
        "clean-warm-up",
        "generator-on-time",
        "generator-kept-rate",
        "quiet-machine",
        "kill-seen",
      ],
    );
    assert.equal(checksPass(checks), true);
  });

  it("fails a trial on each thing that would make its figures mean something else", () => {
    const failing = (overrides: Partial<TrialCheckInput>) =>
      trialChecks(checkInput(overrides))
        .filter((c) => !c.ok)
        .map((c) => c.name);
    assert.deepEqual(failing({ warmupFailed: 976 }), ["clean-warm-up"]);
    assert.deepEqual(failing({ warmupFailed: null }), ["clean-warm-up"]);
    assert.deepEqual(failing({ figures: figures({ failedLongBeforeKill: 3 }) }), ["no-failure-before-kill"]);
    assert.deepEqual(failing({ figures: figures({ victimServedBeforeKill: 0 }) }), ["victim-took-traffic"]);
    assert.deepEqual(failing({ figures: figures({ maxLatenessMs: 454 }) }), ["generator-on-time"]);
    assert.deepEqual(failing({ generator: { valid: false, invalidReason: "achieved 90 %" } }), [
      "generator-kept-rate",
    ]);
    assert.deepEqual(failing({ quietBefore: false }), ["quiet-machine"]);
    assert.deepEqual(failing({ killSeenMs: null }), ["kill-seen"]);
    // Not read at all is not a failure of the machine.
    assert.deepEqual(failing({ quietBefore: null, generator: null }), []);
  });

  it("reports a trial that did not run as one failed check with the error's first line", () => {
    const checks = trialChecks(checkInput({ ran: false, error: "every server UP: timed out\nstack…" }));
    assert.deepEqual(checks, [{ name: "ran", ok: false, detail: "every server UP: timed out" }]);
    assert.equal(checksPass(checks), false);
    assert.equal(checksPass([]), false);
  });
});

describe("failover bench: pairs by round and the headline", () => {
  it("pairs trials of the same round; a round counts only when both passed and the divisor is above 0", () => {
    const a = [
      { repeat: 0, checksOk: true, value: 4 },
      { repeat: 1, checksOk: true, value: 6 },
      { repeat: 2, checksOk: true, value: 3 },
      { repeat: 3, checksOk: false, value: 100 },
      { repeat: 4, checksOk: true, value: 5 },
    ];
    const b = [
      { repeat: 2, checksOk: true, value: 150 },
      { repeat: 0, checksOk: true, value: 100 },
      { repeat: 1, checksOk: true, value: 200 },
      { repeat: 3, checksOk: true, value: 100 },
      { repeat: 4, checksOk: true, value: 0 },
    ];
    const p = pairByRound(a, b);
    assert.equal(p.rounds, 5);
    assert.equal(p.valid, 3);
    assert.deepEqual(p.ratio?.values, [0.04, 0.03, 0.02]);
    assert.equal(p.ratio?.median, 0.03);
    assert.equal(p.ratio?.min, 0.02);
    assert.equal(p.ratio?.max, 0.04);

    const short = pairByRound(a.slice(0, 2), b);
    assert.equal(short.valid, 2);
    assert.equal(short.ratio, null, "2 rounds: not shown");
  });

  it("says 'both 0 failed' when neither failed, and names no winner where there is none", () => {
    const h = { label: "Homeostat", failed: [0, 0, 0], trialsRun: 3, trialsOk: 3 };
    const best = { label: "HAProxy, tuned + passive", failed: [0, 0, 0], trialsRun: 3, trialsOk: 2 };
    const both = failoverHeadline(h, best);
    assert.match(both, /^Both 0 failed/);
    assert.match(both, /HAProxy, tuned \+ passive: 2 of 3 trials passed every check/);

    assert.match(
      failoverHeadline(h, { ...best, failed: [12, 0, 3] }),
      /HAProxy, tuned \+ passive failed 15 \(per trial 12 \/ 0 \/ 3\)/,
    );
    assert.match(
      failoverHeadline({ ...h, failed: [0, 2321, 0] }, best),
      /^Homeostat failed 2321 \(per trial 0 \/ 2321 \/ 0\); .* failed 0 in 3 trials/,
    );
    assert.match(
      failoverHeadline({ ...h, failed: [1, 0, 0] }, { ...best, failed: [0, 4, 0] }),
      /^Both failed requests/,
    );
    assert.match(failoverHeadline(undefined, best), /no Homeostat trial ran/);
    assert.match(failoverHeadline(h, { ...best, trialsRun: 0, failed: [] }), /did not run/);
  });

  it("derives the headline and pairs from the trials, against HAProxy's best configuration that ran", () => {
    const trial = (
      scenario: FailoverTrial["scenario"],
      repeat: number,
      failed: number,
      retried: number,
      ok = true,
    ) =>
      ({
        scenario,
        repeat,
        ok: true,
        checksOk: ok,
        figures: figures({ failed, retried, lastTouchedMs: 10 + repeat }),
        warmup: { due: 100, ok: 100, non2xx: 0, errors: 0 },
        controller: null,
        markedDownMs: null,
        before: null,
      }) as FailoverTrial;
    const trials = [
      trial("homeostat", 0, 0, 5),
      trial("homeostat", 1, 0, 4),
      trial("homeostat", 2, 0, 6, false),
      trial("haproxy-passive", 0, 0, 10),
      trial("haproxy-passive", 1, 0, 8),
      trial("haproxy-passive", 2, 0, 12),
      trial("haproxy-tuned", 0, 99, 0),
    ];
    assert.equal(
      haproxyBestOf(["homeostat", "haproxy-default", "haproxy-tuned", "haproxy-redispatch"]),
      "haproxy-redispatch",
    );
    assert.equal(
      haproxyBestOf(["haproxy-tuned", "haproxy-passive", "haproxy-redispatch"]),
      "haproxy-passive",
    );
    assert.equal(haproxyBestOf(["homeostat"]), null);
    assert.match(
      headlineOf(trials, "haproxy-passive"),
      /^Both 0 failed: neither Homeostat nor HAProxy, tuned \+ passive/,
    );
    assert.match(headlineOf(trials, "haproxy-passive"), /Homeostat: 2 of 3 trials passed every check/);
    assert.match(headlineOf(trials, "haproxy-tuned"), /HAProxy, tuned checks \(probe only\) failed 99/);

    const [retried] = pairedComparisons(trials, "haproxy-passive");
    assert.equal(retried?.what, "retried requests");
    assert.equal(retried?.pairs.rounds, 3);
    assert.equal(retried?.pairs.valid, 2, "round 3's Homeostat trial failed a check");
    assert.equal(retried?.pairs.ratio, null);
    assert.deepEqual(pairedComparisons(trials, null), []);

    const summary = summarizeScenario("homeostat", trials);
    assert.equal(summary.trials, 3);
    assert.equal(summary.ok, 3);
    assert.equal(summary.checksOk, 2);
    assert.deepEqual(summary.retried.runs, [5, 4, 6]);
  });
});

describe("failover bench: HAProxy's configurations", () => {
  const config = (scenario: Parameters<typeof haproxyFailoverConfig>[0]["scenario"]) =>
    haproxyFailoverConfig({
      scenario,
      port: 9000,
      upstreamPorts: [9001, 9002, 9003],
      socket: "/tmp/haproxy.sock",
      tuning: { intervalMs: 200, timeoutMs: 150, failureThreshold: 2, successThreshold: 1 },
      errorLimit: 1,
    });

  it("gives the passive scenario passive checks, tuned active checks and redispatched retries", () => {
    const passive = config("haproxy-passive");
    assert.match(
      passive,
      /default-server inter 200ms fall 2 rise 1 observe layer7 error-limit 1 on-error mark-down/,
    );
    assert.match(passive, /option httpchk GET \/ready/);
    assert.match(passive, /option redispatch 1/);
    assert.match(passive, /retry-on conn-failure empty-response response-timeout/);
    assert.equal(passive.match(/server api-\d 127\.0\.0\.1:900\d check/g)?.length, 3);
  });

  it("keeps the probe-only scenarios without passive checks, and the default one without tuning", () => {
    for (const s of ["haproxy-tuned", "haproxy-redispatch"] as const) {
      assert.doesNotMatch(config(s), /observe|on-error|error-limit/);
      assert.match(config(s), /inter 200ms fall 2 rise 1/);
    }
    assert.doesNotMatch(config("haproxy-tuned"), /redispatch/);
    assert.match(config("haproxy-redispatch"), /option redispatch 1/);
    assert.doesNotMatch(config("haproxy-default"), /httpchk|default-server|redispatch|observe/);
  });
});
