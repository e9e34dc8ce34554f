/**
 * Restart bookkeeping of one instance slot: how many times in a row it failed, when it may start
 * again, and whether it is crash-looping. Pure transitions; the store persists the value so a
 * controller restart does not reset backoff.
 */

import type { RestartSpec } from "../spec/model.ts";
import { restartDelayMs } from "./backoff.ts";

export interface SlotState {
  instance: string;
  consecutiveFailures: number;
  /** Epoch ms of recent failures, only those inside the crash-loop window. */
  restartTimes: number[];
  /** Do not start before this (epoch ms); null = no wait. */
  nextStartAt: number | null;
  crashLoop: boolean;
  updatedAt: number;
}

export function freshSlot(instance: string, now: number): SlotState {
  return {
    instance,
    consecutiveFailures: 0,
    restartTimes: [],
    nextStartAt: null,
    crashLoop: false,
    updatedAt: now,
  };
}

/** A failure of the slot's instance was observed at `now`. */
export function recordFailure(slot: SlotState, spec: RestartSpec, now: number, random: number): SlotState {
  const failures = slot.consecutiveFailures + 1;
  const windowStart = now - spec.crashLoop.windowMs;
  const restartTimes = [...slot.restartTimes.filter((t) => t > windowStart), now];
  const crashLoop = slot.crashLoop || restartTimes.length >= spec.crashLoop.failures;
  // In a crash loop we keep trying at the longest delay: never hammering, yet recovering on its
  // own if the cause was outside (a dependency, a full disk) and goes away.
  const delay = crashLoop ? spec.backoff.maxMs : restartDelayMs(spec.backoff, failures, random);
  return {
    instance: slot.instance,
    consecutiveFailures: failures,
    restartTimes,
    nextStartAt: now + delay,
    crashLoop,
    updatedAt: now,
  };
}

/** The instance has stayed ready long enough: forget its failures. */
export function recordStable(slot: SlotState, now: number): SlotState {
  return freshSlot(slot.instance, now);
}

/** An operator changed what the slot should run (new release): the old release's failures do not count. */
export function resetForNewRelease(slot: SlotState, now: number): SlotState {
  return freshSlot(slot.instance, now);
}
