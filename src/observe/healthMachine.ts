/**
 * The per-instance health state machine, with Kubernetes probe semantics. Pure: no timers, no
 * I/O; the scheduler (`prober.ts`) feeds it results and acts on what it returns.
 *
 * - Until the startup probe passes (successThreshold consecutive successes) the instance is
 *   `starting` and readiness/liveness results are ignored; failureThreshold consecutive startup
 *   failures make it `unhealthy`.
 * - After startup (or with no startup probe): readiness successes reaching successThreshold make
 *   it `ready`, failures reaching failureThreshold make it `unready`. With no readiness probe it
 *   is `ready` as soon as startup passes; with no probes at all, as soon as it runs.
 * - Liveness failures reaching failureThreshold make it `unhealthy`, which is terminal for this
 *   run of the process: the instance must be replaced, and later results are ignored.
 * - A single failure below its threshold changes nothing but the counters.
 */

import type { ProbeSet, ProbeSpec } from "../spec/model.ts";
import type { HealthState, InstanceHealth, ProbeKind, ProbeResult } from "./health.ts";

/** Consecutive outcomes of one probe kind. One of the two is always zero. */
export interface ProbeStreak {
  successes: number;
  failures: number;
}

/** Everything the machine remembers about one instance: the public health plus the counters. */
export interface InstanceHealthState {
  health: InstanceHealth;
  /** True once the startup probe has passed, or from the start when there is none. */
  startupPassed: boolean;
  streaks: Record<ProbeKind, ProbeStreak>;
}

const NO_STREAK: ProbeStreak = { successes: 0, failures: 0 };

/** The public health of an instance that has just started running (at `now`, epoch ms). */
export function initialHealth(now: number, probes: ProbeSet): InstanceHealth {
  if (probes.startup !== undefined) {
    return { state: "starting", lastGoodAt: null, since: now, reason: "waiting for the startup probe" };
  }
  if (probes.readiness !== undefined) {
    return { state: "starting", lastGoodAt: null, since: now, reason: "waiting for the readiness probe" };
  }
  // Nothing gates readiness: running is all that can be known, so running counts as good.
  const reason = probes.liveness === undefined ? "running (no probes)" : "running (no readiness probe)";
  return { state: "ready", lastGoodAt: now, since: now, reason };
}

/** The full machine state of an instance that has just started running. */
export function initialHealthState(now: number, probes: ProbeSet): InstanceHealthState {
  return {
    health: initialHealth(now, probes),
    startupPassed: probes.startup === undefined,
    streaks: { startup: NO_STREAK, readiness: NO_STREAK, liveness: NO_STREAK },
  };
}

/**
 * Whether probes of `kind` are meaningful in `state`: startup only until it passes, readiness
 * and liveness only after, nothing once unhealthy. Whether the instance has such a probe at all
 * is the caller's business.
 */
export function shouldRun(kind: ProbeKind, state: InstanceHealthState): boolean {
  if (state.health.state === "unhealthy") return false;
  return kind === "startup" ? !state.startupPassed : state.startupPassed;
}

/**
 * Fold one probe result into the state (returns a new state; the input is not modified). A
 * result the current state ignores returns the input itself. `since` moves only when
 * `health.state` changes, `reason` when the state changes or startup passes, `lastGoodAt` on
 * every good result (to the result's `at`, or kept when a good result that started later came first).
 */
export function applyProbeResult(
  health: InstanceHealthState,
  result: ProbeResult,
  probes: ProbeSet,
): InstanceHealthState {
  const spec = probes[result.kind];
  if (spec === undefined || !shouldRun(result.kind, health)) return health;

  const previous = health.streaks[result.kind];
  const streak: ProbeStreak = result.ok
    ? { successes: previous.successes + 1, failures: 0 }
    : { successes: 0, failures: previous.failures + 1 };
  const next: InstanceHealthState = {
    // Never backwards: readiness and liveness leave together (one grid point) and may answer in
    // either order, so a good result can arrive after one that started later.
    health: result.ok
      ? { ...health.health, lastGoodAt: Math.max(health.health.lastGoodAt ?? result.at, result.at) }
      : health.health,
    startupPassed: health.startupPassed,
    streaks: { ...health.streaks, [result.kind]: streak },
  };

  const verdict = judge(result, streak, spec, probes);
  if (verdict === null) return next;
  const startupJustPassed = result.kind === "startup" && verdict.state !== "unhealthy";
  if (startupJustPassed) next.startupPassed = true;
  if (verdict.state !== next.health.state) {
    next.health = { ...next.health, state: verdict.state, since: result.at, reason: verdict.reason };
  } else if (startupJustPassed) {
    // Still `starting`, but now for a different reason (waiting on readiness instead).
    next.health = { ...next.health, reason: verdict.reason };
  }
  return next;
}

interface Verdict {
  state: HealthState;
  reason: string;
}

/** The state a threshold crossing calls for, or null when no threshold is reached. */
function judge(result: ProbeResult, streak: ProbeStreak, spec: ProbeSpec, probes: ProbeSet): Verdict | null {
  const failed = !result.ok && streak.failures >= spec.failureThreshold;
  const passed = result.ok && streak.successes >= spec.successThreshold;
  switch (result.kind) {
    case "startup":
      if (failed) return { state: "unhealthy", reason: failureReason(result, streak) };
      if (!passed) return null;
      return probes.readiness === undefined
        ? { state: "ready", reason: "startup probe passed (no readiness probe)" }
        : { state: "starting", reason: "startup probe passed, waiting for the readiness probe" };
    case "readiness":
      if (failed) return { state: "unready", reason: failureReason(result, streak) };
      return passed ? { state: "ready", reason: "readiness probe passing" } : null;
    case "liveness":
      return failed ? { state: "unhealthy", reason: failureReason(result, streak) } : null;
  }
}

function failureReason(result: ProbeResult, streak: ProbeStreak): string {
  const plural = streak.failures === 1 ? "failure" : "failures";
  const detail = result.detail === undefined ? "" : ` (${result.detail})`;
  return `${result.kind}: ${streak.failures} consecutive ${plural}${detail}`;
}
