/**
 * Stalled instances: an instance that has requests waiting and has answered none of them for far
 * longer than its peers is hung (SIGSTOPped, deadlocked, swapping), not slow. Outlier detection
 * only learns of it when attempts time out, seconds later, and every request sent to it meanwhile
 * waits that long; this notices it from the silence itself. Pure: ages and thresholds are arguments.
 *
 * "Silence" is measured per instance as the time since it last answered (a response head) while
 * attempts kept waiting on it, or since its first waiting attempt when it was idle before: the age
 * of its oldest unanswered wait, without keeping a list of attempts per instance.
 */

import type { TrafficSpec } from "../../spec/model.ts";

export type StallSettings = TrafficSpec["stallDetection"];

/** One member as the detector sees it. */
export interface StallCandidate {
  instance: string;
  /** Attempts waiting for a response head now. */
  waiting: number;
  /** How long it has had attempts waiting without answering any (0 when none waits). */
  silentMs: number;
  /** Already out of the balancer (ejected or stalled): not a peer that proves the service answers. */
  out: boolean;
}

/** The silence after which an instance counts as stalled: max(hedge delay × multiplier, minTime). */
export function stallThresholdMs(hedgeDelayMs: number, settings: StallSettings): number {
  return Math.max(hedgeDelayMs * settings.multiplier, settings.minTimeMs);
}

/**
 * The instances to stop sending new requests to, longest silent first: silent for more than
 * `thresholdMs`, while at least one other member (in the balancer) is not. When every member is
 * silent the service itself is slow (a dependency, a lock, a burst): avoiding instances then would
 * only move the wait, so nothing is stalled. Members already out are left out of the answer.
 */
export function findStalled(candidates: readonly StallCandidate[], thresholdMs: number): string[] {
  let answering = 0;
  const silent: StallCandidate[] = [];
  for (const candidate of candidates) {
    if (candidate.waiting > 0 && candidate.silentMs > thresholdMs) {
      if (!candidate.out) silent.push(candidate);
    } else if (!candidate.out) answering++;
  }
  if (answering === 0 || silent.length === 0) return [];
  return silent.sort((a, b) => b.silentMs - a.silentMs).map((candidate) => candidate.instance);
}
