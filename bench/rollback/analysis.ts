/**
 * What one failing-canary trial measured, from the controller's events and the load's own records.
 * Pure: same inputs, same figures.
 *
 * Every time is epoch ms. The controller stamps events with `Date.now()`; the load stamps its
 * requests with the same wall clock (one machine), so the two can be subtracted. A request's time
 * in every window below is its `sent` time: when its bytes went on a socket (after any wait for
 * one of the generator's connections), not when it was due.
 *
 * Which release answered is derived from the answering instance and the controller's
 * `instance.started` events (attribution.ts), not read from the body: the records' own `version`
 * is ignored and set here.
 */

import type { EventRecord } from "../../src/store/index.ts";
import { releaseTimeline, withReleases } from "./attribution.ts";
import type { LoadRecord } from "./openLoad.ts";

export interface CanaryTrialInput {
  service: string;
  stable: string;
  canary: string;
  /** The deploy's rollout id (events carry it in `data.rollout`). */
  rollout: number;
  /** `RolloutState.failedAt`: the tick that reached the failing verdict, before any effect ran. */
  decidedAt: number | null;
  events: EventRecord[];
  records: LoadRecord[];
  /** The first step's weight (%) and the canary's injected error rate (0..1), from the fleet file. */
  firstStepPercent: number;
  canaryErrorRate: number;
}

/** Requests sent in a time window, and how many of them did not get a 200. */
export interface WindowCount {
  fromAt: number;
  toAt: number;
  requests: number;
  failed: number;
  /** failed / requests, null without requests. */
  failedShare: number | null;
  /** Requests answered by a canary instance. */
  byCanary: number;
  /** byCanary / requests. */
  canaryShare: number | null;
  /** Failed among those answered by the canary. */
  canaryErrorRate: number | null;
}

export interface CanaryTrialFigures {
  /** Event times (epoch ms). */
  at: {
    deployStarted: number;
    /** Weights moved to the first step (the canary takes traffic). */
    canaryWeights: number;
    /** The failing verdict: `deploy.rolling-back` (recorded after the weights moved). */
    verdict: number;
    /** The tick that reached it (`RolloutState.failedAt`), before the safety checks and the weights. */
    decided: number | null;
    /** Weights back to 100 % stable (`traffic.weights`). */
    weightsBack: number;
    /** The last canary instance's `instance.stopped`. */
    canaryStopped: number | null;
  };
  verdictReason: string;
  verdictMessage: string;
  canaryInstances: string[];
  /** (a) Verdict → 100 % of traffic on the stable release. */
  rollback: {
    /** `traffic.weights` (back) − verdict, ms: when the controller applied the weights. */
    weightsEventMs: number;
    /** `traffic.weights` (back) − the deciding tick, ms: the checks and writes before traffic moves. */
    decidedToWeightsMs: number | null;
    /** Sent (written) time of the last request the canary release answered − verdict, ms (≤ 0: sent before it). */
    lastCanarySendMs: number | null;
    /** When that last canary answer came back − verdict, ms. */
    lastCanaryAnswerMs: number | null;
    /** Requests sent after the verdict that a canary instance still answered: should be 0. */
    canaryAnswersSentAfterVerdict: number;
  };
  /**
   * Requests a canary instance answered that were sent before the first step's weights: the
   * canary should get no traffic while it starts (should be 0), and how many of them failed.
   */
  beforeFirstStep: { canaryAnswers: number; failed: number; firstSentMs: number | null };
  /** (b) Errors clients saw. */
  errors: {
    /** From the deploy's start to the verdict (includes the start-up, when the canary had no traffic). */
    deployToVerdict: WindowCount;
    /** From the first step's weights to the verdict: the canary's exposure. */
    canaryToVerdict: WindowCount;
    /** After the verdict, until the load stopped. */
    afterVerdict: WindowCount;
    /** Failures answered by a stable instance over the whole run (should be 0). */
    failedOnStable: number;
    /** Failures with no HTTP answer at all (connection errors, timeouts). */
    unanswered: number;
    /** firstStepPercent × canaryErrorRate: the share of failures the first step should cost. */
    expectedShare: number;
  };
  /** (c) Durations, ms. */
  durations: {
    /** Deploy start → canary instances ready and the first weights set. */
    starting: number;
    /** First weights → failing verdict: how long the canary was judged before it failed. */
    judging: number;
    /** Deploy start → verdict: the canary's total duration as the controller saw it. */
    deployToVerdict: number;
    /** First weights → weights back: how long clients were exposed to the canary. */
    exposure: number;
    /** Deploy start → the last canary instance stopped. */
    deployToCanaryStopped: number | null;
  };
  load: { requests: number; failed: number; sentFrom: number; sentTo: number };
  /**
   * The bench's warm-up: requests sent before the deploy started (the stable release alone), and
   * how many of them did not get a 200. Counted, not in any window above.
   */
  warmup: { requests: number; failed: number };
  /** Answers by release (derived from the answering instance), and answers with none. */
  byRelease: Record<string, number>;
  /** Requests per second from the deploy's start (second 0) to the end: sent, failed, by canary. */
  timeline: { second: number; requests: number; failed: number; byCanary: number }[];
  /** Why an answer's attribution is in doubt (each should be 0). */
  attribution: {
    /** The app named itself (`x-instance`) differently from the data plane's `x-homeostat-instance`. */
    instanceMismatches: number;
    /** An answer (status ≠ 0) with no instance header, or from an instance not started by then. */
    unattributed: number;
    /** Answered by the canary release from an instance that was not started for this deploy. */
    canaryOutsideDeploy: number;
  };
  /** instanceMismatches + canaryOutsideDeploy: answers whose release cannot be trusted (should be 0). */
  attributionMismatches: number;
}

export function failed(record: LoadRecord): boolean {
  return record.status !== 200 || record.error !== null;
}

function eventOf(
  events: readonly EventRecord[],
  match: (event: EventRecord) => boolean,
  what: string,
): EventRecord {
  const event = events.find(match);
  if (event === undefined) throw new Error(`no ${what} event`);
  return event;
}

function rolloutOf(event: EventRecord): unknown {
  return (event.data as { rollout?: unknown } | undefined)?.rollout;
}

function weightsOf(event: EventRecord): Record<string, number> {
  return ((event.data as { weights?: Record<string, number> } | undefined)?.weights ?? {}) as Record<
    string,
    number
  >;
}

function countWindow(
  records: readonly LoadRecord[],
  fromAt: number,
  toAt: number,
  isCanary: (r: LoadRecord) => boolean,
): WindowCount {
  let requests = 0;
  let failures = 0;
  let byCanary = 0;
  let canaryFailures = 0;
  for (const r of records) {
    if (r.sent < fromAt || r.sent >= toAt) continue;
    requests++;
    const bad = failed(r);
    if (bad) failures++;
    if (isCanary(r)) {
      byCanary++;
      if (bad) canaryFailures++;
    }
  }
  return {
    fromAt,
    toAt,
    requests,
    failed: failures,
    failedShare: requests === 0 ? null : failures / requests,
    byCanary,
    canaryShare: requests === 0 ? null : byCanary / requests,
    canaryErrorRate: byCanary === 0 ? null : canaryFailures / byCanary,
  };
}

export function analyzeCanaryTrial(input: CanaryTrialInput): CanaryTrialFigures {
  const { events, canary, stable, rollout } = input;
  const records = withReleases(input.records, releaseTimeline(events, input.service));
  const ofRollout = (e: EventRecord) => rolloutOf(e) === rollout;
  const started = eventOf(events, (e) => e.type === "deploy.started" && ofRollout(e), "deploy.started");
  const canaryWeights = eventOf(
    events,
    (e) => e.type === "traffic.weights" && ofRollout(e) && (weightsOf(e)[canary] ?? 0) > 0,
    `traffic.weights giving ${canary} traffic`,
  );
  const verdict = eventOf(
    events,
    (e) => e.type === "deploy.rolling-back" && ofRollout(e),
    "deploy.rolling-back",
  );
  const back = eventOf(
    events,
    (e) =>
      e.type === "traffic.weights" &&
      ofRollout(e) &&
      e.at >= canaryWeights.at &&
      e.seq > canaryWeights.seq &&
      weightsOf(e)[stable] === 100,
    `traffic.weights back to ${stable} 100 %`,
  );
  const canaryInstances = [
    ...new Set(
      events
        .filter(
          (e) =>
            e.type === "instance.started" &&
            e.service === input.service &&
            e.seq > started.seq &&
            (e.data as { release?: unknown } | undefined)?.release === canary,
        )
        .map((e) => e.instance ?? ""),
    ),
  ];
  if (canaryInstances.length === 0) throw new Error(`no instance of ${canary} was started`);
  const canarySet = new Set(canaryInstances);
  const stops = events.filter(
    (e) => e.type === "instance.stopped" && e.seq > verdict.seq && canarySet.has(e.instance ?? ""),
  );
  const canaryStopped =
    new Set(stops.map((e) => e.instance)).size === canarySet.size
      ? Math.max(...stops.map((e) => e.at))
      : null;

  const isCanary = (r: LoadRecord) => r.version === canary;
  const instanceMismatches = records.filter(
    (r) => r.instance !== null && r.appInstance !== null && r.appInstance !== r.instance,
  ).length;
  const unattributed = records.filter((r) => r.status !== 0 && r.version === null).length;
  const canaryOutsideDeploy = records.filter(
    (r) => isCanary(r) && (r.instance === null || !canarySet.has(r.instance)),
  ).length;
  const byRelease: Record<string, number> = {};
  for (const r of records) {
    if (r.status === 0) continue;
    const key = r.version ?? "(unknown)";
    byRelease[key] = (byRelease[key] ?? 0) + 1;
  }
  const beforeDeploy = records.filter((r) => r.sent < started.at);

  let lastCanary: LoadRecord | null = null;
  for (const r of records)
    if (isCanary(r) && (lastCanary === null || r.sent > lastCanary.sent)) lastCanary = r;
  let sentFrom = records.length === 0 ? 0 : Number.POSITIVE_INFINITY;
  let sentTo = records.length === 0 ? 0 : Number.NEGATIVE_INFINITY;
  for (const r of records) {
    sentFrom = Math.min(sentFrom, r.sent);
    sentTo = Math.max(sentTo, r.sent);
  }

  const timeline: CanaryTrialFigures["timeline"] = [];
  for (const r of records) {
    const second = Math.floor((r.sent - started.at) / 1000);
    if (second < 0) continue;
    while (timeline.length <= second)
      timeline.push({ second: timeline.length, requests: 0, failed: 0, byCanary: 0 });
    const slot = timeline[second]!;
    slot.requests++;
    if (failed(r)) slot.failed++;
    if (isCanary(r)) slot.byCanary++;
  }

  const early = records.filter((r) => isCanary(r) && r.sent < canaryWeights.at);
  return {
    at: {
      deployStarted: started.at,
      canaryWeights: canaryWeights.at,
      verdict: verdict.at,
      decided: input.decidedAt,
      weightsBack: back.at,
      canaryStopped,
    },
    verdictReason: verdict.reason,
    verdictMessage: verdict.message,
    canaryInstances,
    rollback: {
      weightsEventMs: back.at - verdict.at,
      decidedToWeightsMs: input.decidedAt === null ? null : back.at - input.decidedAt,
      lastCanarySendMs: lastCanary === null ? null : lastCanary.sent - verdict.at,
      lastCanaryAnswerMs: lastCanary === null ? null : lastCanary.done - verdict.at,
      canaryAnswersSentAfterVerdict: records.filter((r) => isCanary(r) && r.sent >= verdict.at).length,
    },
    beforeFirstStep: {
      canaryAnswers: early.length,
      failed: early.filter(failed).length,
      firstSentMs: early[0] === undefined ? null : early[0].sent - canaryWeights.at,
    },
    errors: {
      deployToVerdict: countWindow(records, started.at, verdict.at, isCanary),
      canaryToVerdict: countWindow(records, canaryWeights.at, verdict.at, isCanary),
      afterVerdict: countWindow(records, verdict.at, Number.POSITIVE_INFINITY, isCanary),
      failedOnStable: records.filter((r) => failed(r) && r.status !== 0 && !isCanary(r)).length,
      unanswered: records.filter((r) => r.status === 0).length,
      expectedShare: (input.firstStepPercent / 100) * input.canaryErrorRate,
    },
    durations: {
      starting: canaryWeights.at - started.at,
      judging: verdict.at - canaryWeights.at,
      deployToVerdict: verdict.at - started.at,
      exposure: back.at - canaryWeights.at,
      deployToCanaryStopped: canaryStopped === null ? null : canaryStopped - started.at,
    },
    load: { requests: records.length, failed: records.filter(failed).length, sentFrom, sentTo },
    warmup: { requests: beforeDeploy.length, failed: beforeDeploy.filter(failed).length },
    byRelease,
    timeline,
    attribution: { instanceMismatches, unattributed, canaryOutsideDeploy },
    attributionMismatches: instanceMismatches + canaryOutsideDeploy,
  };
}
