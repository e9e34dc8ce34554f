/**
 * The progressive-deploy state machine: starting → stepping (each of `deploy.steps`) → soaking →
 * proven, or → rolling-back → rolled-back from any of the first three. Pure: time and the traffic
 * figures come in `RolloutInputs`; the controller carries out the returned effects in order.
 *
 * It is level-triggered like the reconcile core: called every 250 ms with the same inputs, it
 * returns the same state object and no effects. Verdicts are appended only when they change or
 * decide something, never four times a second.
 *
 * Choices that differ from the usual tools, on purpose:
 * - **No data is never a pass.** An inconclusive step keeps being judged until its deadline, then
 *   the deploy aborts (release marked `rolled-back`: not shown bad, but not shown good either).
 * - **An inconclusive soak aborts too.** A release nobody used is not proven; Homeostat keeps the
 *   release that was. (A `soakMs` of 0 proves the release on its passing 100 % step alone.)
 * - **A failing canary rolls back as soon as it fails**, even before the step's duration is over:
 *   rollback time is not `interval × threshold` (Flagger). Passes still wait for the full step.
 * - **Traffic moves back first**, and never onto a bank that has nothing ready (see `rollBack.ts`).
 * - The previous release keeps its status until the new one is proven; it is marked `superseded`
 *   only then, so a rollback during the soak returns to a record nobody touched.
 */

import { HomeostatError } from "../../errors.ts";
import type { ServiceSpec } from "../../spec/model.ts";
import { RING_SECONDS } from "../../traffic/stats/windowRing.ts";
import { type Judgement, judgeAgainstSlo, judgeCanary } from "../../verify/canaryAnalysis.ts";
import { isKnown, specDuration } from "../../verify/figures.ts";
import type { ProofEvidence } from "../rollback/types.ts";
import {
  type RolloutAdvance,
  rolloutEvent,
  splitTraffic,
  stepLabel,
  stopBank,
  unchanged,
} from "./effects.ts";
import { advanceRollingBack, beginRollback } from "./rollBack.ts";
import type { RolloutEffect, RolloutInputs, RolloutState, StepVerdict, WindowStats } from "./types.ts";

export type { RolloutAdvance } from "./effects.ts";

/** The longest window the data plane answers (`TrafficStats.window`). */
const MAX_WINDOW_MS = RING_SECONDS * 1000;

/**
 * The window that judges a phase begun at `startedAt`: every whole second it touched, from the
 * start of the second it began in (a window reads whole seconds back from the current one, and
 * the current one has barely begun at a phase's end: the data plane has not even reported it yet
 * when it is under 250 ms old). Judging a 1 s soak over `min(elapsed, soak)` read that second
 * alone — 0 requests, the release rolled back although it served well for the whole soak. The
 * part of the first second before the phase began is the same release on the previous step's
 * share (a soak follows the 100 % step): the rates it adds are the release's own.
 */
function phaseWindowMs(startedAt: number, now: number): number {
  return Math.min(now - Math.floor(startedAt / 1000) * 1000, MAX_WINDOW_MS);
}

export interface StartRolloutArgs {
  id: number;
  service: ServiceSpec;
  from: string;
  to: string;
  fromBank: 0 | 1;
  toBank: 0 | 1;
  now: number;
}

/**
 * A new rollout in phase `starting` (the new bank's instances are starting, no traffic yet).
 *
 * @throws HomeostatError `HS_BAD_REQUEST` when `from` and `to` (or their banks) are the same, a
 * release is unknown to the service, or the service's steps are not increasing and ending at 100.
 */
export function startRollout(args: StartRolloutArgs): RolloutState {
  const { service, from, to } = args;
  const problems: string[] = [];
  if (from === to) problems.push(`the new release must differ from the running one (both ${from})`);
  if (args.fromBank === args.toBank) problems.push(`both releases are on bank ${args.fromBank}`);
  for (const version of [from, to]) {
    if (service.releases[version] === undefined) problems.push(`${service.name} has no release ${version}`);
  }
  const steps = service.deploy.steps;
  const increasing = steps.every((step, i) => step > 0 && step <= 100 && (i === 0 || step > steps[i - 1]!));
  if (steps.length === 0 || !increasing || steps.at(-1) !== 100) {
    problems.push(`deploy steps must increase and end at 100, got [${steps.join(", ")}]`);
  }
  if (problems.length > 0) {
    throw new HomeostatError(
      "HS_BAD_REQUEST",
      `cannot start a rollout of ${service.name} from ${from} to ${to}: ${problems.join("; ")}`,
      { details: { service: service.name, from, to, problems } },
    );
  }
  return {
    id: args.id,
    service: service.name,
    from,
    to,
    fromBank: args.fromBank,
    toBank: args.toBank,
    phase: "starting",
    stepIndex: 0,
    phaseStartedAt: args.now,
    startedAt: args.now,
    endedAt: null,
    verdicts: [],
    reason: null,
    failedAt: null,
    evidence: null,
    stableStopped: false,
  };
}

/**
 * One step of the machine at `inputs.now`. Returns `state` itself and no effects when nothing
 * changes. Effects are to be carried out in order (on a rollback, the weights come first).
 */
export function advanceRollout(
  state: RolloutState,
  service: ServiceSpec,
  inputs: RolloutInputs,
): RolloutAdvance {
  switch (state.phase) {
    case "starting":
      return advanceStarting(state, service, inputs);
    case "stepping":
      return advanceStepping(state, service, inputs);
    case "soaking":
      return advanceSoaking(state, service, inputs);
    case "rolling-back":
      return advanceRollingBack(state, inputs);
    case "proven":
    case "rolled-back":
      return unchanged(state);
  }
}

function advanceStarting(state: RolloutState, service: ServiceSpec, inputs: RolloutInputs): RolloutAdvance {
  const { now, canaryReady, canaryWanted } = inputs;
  if (canaryReady >= canaryWanted) {
    const weight = service.deploy.steps[0] ?? 100;
    const message =
      `${state.to}: ${canaryReady} of ${canaryWanted} instances ready; ` +
      `${stepLabel(0, weight)}: ${state.to} takes ${weight} % of traffic`;
    return {
      state: { ...state, phase: "stepping", stepIndex: 0, phaseStartedAt: now },
      effects: [splitTraffic(state, weight), rolloutEvent("rollout-step", "canary-ready", message)],
    };
  }
  const deadline = service.deploy.stepDeadlineMs;
  if (now - state.phaseStartedAt > deadline) {
    return beginRollback(state, inputs, {
      status: "rolled-back",
      code: "instances-not-ready",
      reason: `new instances not ready within ${specDuration(deadline)}: ${canaryReady} of ${canaryWanted} ready`,
    });
  }
  return unchanged(state);
}

function advanceStepping(state: RolloutState, service: ServiceSpec, inputs: RolloutInputs): RolloutAdvance {
  const { now } = inputs;
  const elapsed = now - state.phaseStartedAt;
  if (elapsed <= 0) return unchanged(state);
  const { deploy } = service;
  const index = Math.min(state.stepIndex, deploy.steps.length - 1);
  const weight = deploy.steps[index] ?? 100;
  const label = stepLabel(index, weight);

  const windowMs = phaseWindowMs(state.phaseStartedAt, now);
  const canary = inputs.stats(state.to, windowMs);
  // At 100 % the previous release serves nothing: there is no baseline, only the SLO.
  const baseline = weight >= 100 ? null : inputs.stats(state.from, windowMs);
  const judgement =
    baseline === null
      ? judgeAgainstSlo(canary, service.slo, deploy.analysis.minRequests)
      : judgeCanary(canary, baseline, deploy.analysis);
  const verdict = stepVerdict(index, weight, now, judgement, canary, baseline);

  if (judgement.verdict === "fail") {
    return beginRollback(state, inputs, {
      status: "failed",
      code: "canary-failed",
      reason: `${label} failed: ${judgement.reasons.join("; ")}`,
      verdict,
    });
  }
  if (elapsed < deploy.stepDurationMs) return unchanged(state);

  if (judgement.verdict === "pass") {
    const decided: RolloutState = { ...state, verdicts: [...state.verdicts, verdict] };
    const passed = `${label} passed (${judgement.reasons.join("; ")})`;
    const nextWeight = deploy.steps[index + 1];
    if (nextWeight !== undefined) {
      const message = `${passed}; ${stepLabel(index + 1, nextWeight)}: ${state.to} takes ${nextWeight} % of traffic`;
      return {
        state: { ...decided, stepIndex: index + 1, phaseStartedAt: now },
        effects: [splitTraffic(state, nextWeight), rolloutEvent("rollout-step", "canary-passed", message)],
      };
    }
    if (deploy.soakMs <= 0) return prove(decided, now, evidenceOf(canary, windowMs, now), passed);
    return promote(decided, service, now, passed);
  }

  if (elapsed >= deploy.stepDeadlineMs) {
    return beginRollback(state, inputs, {
      status: "rolled-back",
      code: "step-deadline",
      reason: `${label} had no conclusive verdict within its deadline: ${judgement.reasons.join("; ")}`,
      verdict,
    });
  }
  return recordIfChanged(state, verdict);
}

/** The new release serves everything: soak it; stop the previous bank now unless it is kept warm. */
function promote(state: RolloutState, service: ServiceSpec, now: number, passed: string): RolloutAdvance {
  const soak = specDuration(service.deploy.soakMs);
  const effects: RolloutEffect[] = [];
  let stableStopped = state.stableStopped === true;
  let previous = `${state.from} kept warm for a fast rollback`;
  if (!service.deploy.keepStableWarm) {
    effects.push(stopBank(state.fromBank, state.from));
    stableStopped = true;
    previous = `${state.from} stopped (keepStableWarm: false)`;
  }
  const message = `${passed}; ${state.to} serves all traffic, soaking ${soak} against the SLO; ${previous}`;
  effects.push(rolloutEvent("rollout-soaking", "promoted", message));
  return { state: { ...state, phase: "soaking", phaseStartedAt: now, stableStopped }, effects };
}

/**
 * The data plane reports its traffic every 250 ms: figures this much older than `now` are late, and
 * an end-of-soak window read from them is missing its last part.
 */
export const STATS_LAG_TOLERANCE_MS = 750;

function advanceSoaking(state: RolloutState, service: ServiceSpec, inputs: RolloutInputs): RolloutAdvance {
  const { now } = inputs;
  const elapsed = now - state.phaseStartedAt;
  if (elapsed <= 0) return unchanged(state);
  const { soakMs, analysis } = service.deploy;
  // The soak so far, all of it (also while it waits for late figures past its end).
  const windowMs = phaseWindowMs(state.phaseStartedAt, now);
  const stats = inputs.stats(state.to, windowMs);
  const judgement = judgeAgainstSlo(stats, service.slo, analysis.minRequests);
  const verdict = stepVerdict(-1, 100, now, judgement, stats, null);

  if (judgement.verdict === "fail") {
    return beginRollback(state, inputs, {
      status: "failed",
      code: "soak-failed",
      reason: `soak: ${judgement.reasons.join("; ")}`,
      verdict,
    });
  }
  if (elapsed < soakMs) return recordIfChanged(state, verdict);

  if (judgement.verdict === "pass" && isKnown(stats.errorRate)) {
    const decided: RolloutState = { ...state, verdicts: [...state.verdicts, verdict] };
    const passed = `soak of ${specDuration(soakMs)} passed (${judgement.reasons.join("; ")})`;
    return prove(decided, now, evidenceOf(stats, windowMs, now), passed);
  }
  // Too little traffic may only mean that the window's last part has not been reported yet (a
  // loaded machine, a data plane reconnecting): wait for the figures, up to a step deadline.
  const lagMs = inputs.statsLagMs ?? 0;
  if (
    stats.requests < analysis.minRequests &&
    lagMs > STATS_LAG_TOLERANCE_MS &&
    elapsed < soakMs + service.deploy.stepDeadlineMs
  ) {
    return recordIfChanged(state, verdict);
  }
  const lagNote =
    lagMs <= STATS_LAG_TOLERANCE_MS
      ? ""
      : Number.isFinite(lagMs)
        ? `; the data plane's figures are ${Math.round(lagMs)} ms behind`
        : "; the data plane is not reporting its figures";
  const reason =
    stats.requests >= analysis.minRequests
      ? `soak ended without a conclusive verdict on ${state.to}: ${judgement.reasons.join("; ")}`
      : `soak ended without enough traffic to prove ${state.to} ` +
        `(${stats.requests} requests, need ${analysis.minRequests}${lagNote})`;
  return beginRollback(state, inputs, { status: "rolled-back", code: "soak-inconclusive", reason, verdict });
}

/**
 * The new release is proven. Effects: mark it proven with its evidence, mark the previous one
 * superseded, stop the previous bank if it was still running, event.
 */
function prove(state: RolloutState, now: number, evidence: ProofEvidence, passed: string): RolloutAdvance {
  const effects: RolloutEffect[] = [
    { type: "mark-release", version: state.to, status: "proven", evidence },
    { type: "mark-release", version: state.from, status: "superseded" },
  ];
  if (state.stableStopped !== true) effects.push(stopBank(state.fromBank, state.from));
  effects.push(rolloutEvent("rollout-proven", "soak-passed", `${passed}: ${state.to} is proven`));
  return {
    state: { ...state, phase: "proven", phaseStartedAt: now, endedAt: now, evidence, stableStopped: true },
    effects,
  };
}

/** Only called on a pass, which needs a known error rate. */
function evidenceOf(stats: WindowStats, windowMs: number, now: number): ProofEvidence {
  return {
    windowMs,
    requests: stats.requests,
    errorRate: stats.errorRate ?? Number.NaN,
    p99Ms: isKnown(stats.p99Ms) ? stats.p99Ms : null,
    at: now,
  };
}

function stepVerdict(
  step: number,
  weight: number,
  at: number,
  judgement: Judgement,
  canary: WindowStats,
  baseline: WindowStats | null,
): StepVerdict {
  return { step, weight, verdict: judgement.verdict, at, reasons: judgement.reasons, canary, baseline };
}

/** Appends an interim verdict only when it differs from the last one for the same step. */
function recordIfChanged(state: RolloutState, verdict: StepVerdict): RolloutAdvance {
  const last = state.verdicts.at(-1);
  if (last !== undefined && last.step === verdict.step && last.verdict === verdict.verdict) {
    return unchanged(state);
  }
  return { state: { ...state, verdicts: [...state.verdicts, verdict] }, effects: [] };
}
