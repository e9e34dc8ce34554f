/**
 * Rolling a progressive deploy back. Traffic goes back to the previous release first — it is the
 * one thing that ends the harm — then the new instances are stopped and the release is marked.
 *
 * One exception, on purpose: traffic never moves onto a bank with nothing ready to serve it. When
 * the previous release's bank was stopped at promotion (`keepStableWarm: false`) or has no ready
 * instance, the rollback records its verdict at once but leaves the weights alone until that bank
 * is ready again (`desiredBanks` puts it back in the desired set, so the controller restarts it).
 * Sending everything to an empty or broken bank is how Flagger #1931 turned a bad canary into an
 * outage. The wait has no deadline: the alternative would be to route to nothing.
 */

import { type RolloutAdvance, rolloutEvent, stopBank, unchanged } from "./effects.ts";
import type { RolloutEffect, RolloutInputs, RolloutState, StepVerdict } from "./types.ts";

/** Why a rollout is rolled back, and how the new release is marked. */
export interface RollbackCause {
  /** `failed`: the release was shown bad. `rolled-back`: it was not shown good in time (deadline). */
  status: "failed" | "rolled-back";
  /** Kebab-case reason code of the event. */
  code: string;
  /** The sentence kept in `RolloutState.reason`. */
  reason: string;
  /** The verdict that decided it, appended to the history. */
  verdict?: StepVerdict;
}

function trafficBack(state: RolloutState): RolloutEffect[] {
  return [
    { type: "set-weights", weights: { [state.from]: 100, [state.to]: 0 } },
    stopBank(state.toBank, state.to),
  ];
}

/** Whether the previous release's bank can take all traffic back now. */
function stableCanServe(state: RolloutState, inputs: RolloutInputs): boolean {
  if (state.stableStopped === true) return inputs.stableReady >= inputs.canaryWanted;
  return inputs.stableReady > 0;
}

/**
 * Decides the rollback: phase `rolling-back`, `failedAt` = now. Effects, in order: set-weights
 * (previous release 100 %), stop-bank (new), mark-release (new), event — or, when the previous
 * bank cannot serve yet and the new release holds traffic, only mark-release and event.
 */
export function beginRollback(
  state: RolloutState,
  inputs: RolloutInputs,
  cause: RollbackCause,
): RolloutAdvance {
  const { now } = inputs;
  const holdsTraffic = state.phase === "stepping" || state.phase === "soaking";
  const mustWait = holdsTraffic && !stableCanServe(state, inputs);
  const next: RolloutState = {
    ...state,
    phase: "rolling-back",
    phaseStartedAt: now,
    failedAt: now,
    reason: cause.reason,
    verdicts: cause.verdict === undefined ? state.verdicts : [...state.verdicts, cause.verdict],
    stableStopped: mustWait,
  };
  const mark: RolloutEffect = { type: "mark-release", version: state.to, status: cause.status };
  if (mustWait) {
    const waiting =
      `${cause.reason}; ${state.to} keeps its traffic until ${state.from} is ready again ` +
      `(${inputs.stableReady} of ${inputs.canaryWanted} ready)`;
    return { state: next, effects: [mark, rolloutEvent("rollout-rolling-back", cause.code, waiting)] };
  }
  const message = `${cause.reason}; traffic back on ${state.from}, ${state.to} stopping`;
  return {
    state: next,
    effects: [...trafficBack(state), mark, rolloutEvent("rollout-rolling-back", cause.code, message)],
  };
}

/**
 * `rolling-back`: if traffic is still waiting for the previous bank, move it once that bank is
 * ready; otherwise (weights set and stop issued on an earlier call) the rollout is `rolled-back`.
 */
export function advanceRollingBack(state: RolloutState, inputs: RolloutInputs): RolloutAdvance {
  if (state.stableStopped !== true) {
    return { state: { ...state, phase: "rolled-back", endedAt: inputs.now }, effects: [] };
  }
  if (!stableCanServe(state, inputs)) return unchanged(state);
  const message =
    `${state.from} ready again (${inputs.stableReady} of ${inputs.canaryWanted}): ` +
    `traffic back on ${state.from}, ${state.to} stopping`;
  return {
    state: { ...state, stableStopped: false },
    effects: [...trafficBack(state), rolloutEvent("rollout-traffic-restored", "stable-ready", message)],
  };
}
