/**
 * Building blocks of the rollout state machine's answers: the effects it asks for, spelled once.
 */

import type { RolloutEffect, RolloutState } from "./types.ts";

/** What one step of the machine returns: the next state and what the controller must do, in order. */
export interface RolloutAdvance {
  state: RolloutState;
  effects: RolloutEffect[];
}

/** Nothing changed: the very same state object, no effects (the controller calls every 250 ms). */
export function unchanged(state: RolloutState): RolloutAdvance {
  return { state, effects: [] };
}

/** The new release takes `canaryPercent` of the traffic, the previous one the rest. */
export function splitTraffic(state: RolloutState, canaryPercent: number): RolloutEffect {
  return { type: "set-weights", weights: { [state.from]: 100 - canaryPercent, [state.to]: canaryPercent } };
}

export function stopBank(bank: 0 | 1, release: string): RolloutEffect {
  return { type: "stop-bank", bank, release };
}

/** An event for the store: `event` is its type, `reason` a kebab-case code, `message` a sentence. */
export function rolloutEvent(event: string, reason: string, message: string): RolloutEffect {
  return { type: "event", event, reason, message };
}

/** "step 2 (50 %)": steps are numbered from 1 for people (`StepVerdict.step` is the index). */
export function stepLabel(index: number, weight: number): string {
  return `step ${index + 1} (${weight} %)`;
}
