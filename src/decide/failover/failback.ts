/**
 * Failback with hysteresis: a recovered zone gets traffic back only after staying healthy for a
 * whole stabilization window, then gradually; any failure on the way drops it to nothing at once and
 * restarts the window. A zone that flaps therefore never gets traffic between its failures.
 * Pure: the caller passes the time and keeps the state.
 */

import { HomeostatError } from "../../errors.ts";
import { duration } from "./words.ts";

/** `down`: no traffic. `stabilizing`: healthy, waiting out the window. `ramping`: traffic returning. `restored`: all of it back. */
export type FailbackPhase = "down" | "stabilizing" | "ramping" | "restored";

export interface FailbackState {
  zone: string;
  phase: FailbackPhase;
  /** Start of the current unbroken healthy stretch (epoch ms); null while unhealthy. */
  healthySince: number | null;
  /** Share of its normal traffic the zone gets now, 0..100. */
  sharePercent: number;
  /** When the share last grew; null before the ramp starts. */
  lastStepAt: number | null;
  /** How many times the zone failed again after it had started to recover. */
  relapses: number;
}

export interface FailbackInput {
  zone: string;
  healthy: boolean;
  now: number;
  stabilizationMs: number;
  /** Share of the zone's normal traffic each ramp step gives back (0 < p ≤ 100). */
  stepPercent: number;
  stepIntervalMs: number;
}

export interface FailbackResult {
  state: FailbackState;
  /** Share of its normal traffic the zone should get now, 0..100. */
  shareForZone: number;
  /** What changed at this call, in words (empty when nothing did). */
  events: string[];
  /** The same changes, typed, in the same order as `events`. */
  changes: FailbackChange[];
}

/** `waiting`: healthy, window started. `returning`/`step`: share grew. `restored`: all back. `relapsed`: failed again. */
export type FailbackChangeKind = "waiting" | "returning" | "step" | "restored" | "relapsed";

export interface FailbackChange {
  kind: FailbackChangeKind;
  message: string;
}

/**
 * Advances a zone's failback by one observation. `state` null starts tracking a zone that has just
 * failed (no traffic). The share grows by at most one step per call, so a late call never jumps
 * several steps at once.
 */
export function failbackStep(state: FailbackState | null, input: FailbackInput): FailbackResult {
  validate(state, input);
  const { zone, now } = input;
  const current: FailbackState = state ?? {
    zone,
    phase: "down",
    healthySince: null,
    sharePercent: 0,
    lastStepAt: null,
    relapses: 0,
  };

  if (!input.healthy) {
    if (current.phase === "down") return result({ ...current }, []);
    const when = relapseWords(current, input);
    return result(
      {
        zone,
        phase: "down",
        healthySince: null,
        sharePercent: 0,
        lastStepAt: null,
        relapses: current.relapses + 1,
      },
      [
        {
          kind: "relapsed",
          message: `${zone} failed again ${when}: traffic back to 0 %; the ${duration(input.stabilizationMs)} stabilization window restarts once it is healthy`,
        },
      ],
    );
  }

  const next = { ...current };
  const changes: FailbackChange[] = [];
  if (next.phase === "down") {
    next.phase = "stabilizing";
    next.healthySince = now;
    changes.push({
      kind: "waiting",
      message: `${zone} is healthy: no traffic until it stays healthy for ${duration(input.stabilizationMs)}`,
    });
  }
  if (next.phase === "stabilizing") {
    const healthyFor = now - next.healthySince!;
    if (healthyFor >= input.stabilizationMs) {
      next.phase = "ramping";
      grow(next, input);
      changes.push({
        kind: "returning",
        message: `${zone} stayed healthy for ${duration(healthyFor)}: traffic returns, ${next.sharePercent} % of its share`,
      });
    }
  } else if (next.phase === "ramping" && now - next.lastStepAt! >= input.stepIntervalMs) {
    grow(next, input);
    changes.push({ kind: "step", message: `${zone} failback: ${next.sharePercent} % of its share` });
  }
  if (next.phase === "ramping" && next.sharePercent >= 100) {
    next.phase = "restored";
    changes.push({ kind: "restored", message: `${zone} has all its traffic back` });
  }
  return result(next, changes);
}

function grow(state: FailbackState, input: FailbackInput): void {
  state.sharePercent = Math.min(100, Number((state.sharePercent + input.stepPercent).toFixed(9)));
  state.lastStepAt = input.now;
}

function relapseWords(state: FailbackState, input: FailbackInput): string {
  switch (state.phase) {
    case "stabilizing":
      return `${duration(Math.max(0, input.now - state.healthySince!))} into its stabilization window`;
    case "ramping":
      return `during failback at ${state.sharePercent} %`;
    default:
      return "after failback completed";
  }
}

function result(state: FailbackState, changes: FailbackChange[]): FailbackResult {
  return { state, shareForZone: state.sharePercent, events: changes.map((c) => c.message), changes };
}

function validate(state: FailbackState | null, input: FailbackInput): void {
  const problems: string[] = [];
  if (state !== null && state.zone !== input.zone)
    problems.push(`state is for ${state.zone}, input for ${input.zone}`);
  if (!(input.stepPercent > 0 && input.stepPercent <= 100))
    problems.push(`stepPercent ${input.stepPercent} not in (0, 100]`);
  if (!(input.stabilizationMs >= 0)) problems.push(`stabilizationMs ${input.stabilizationMs} is negative`);
  if (!(input.stepIntervalMs >= 0)) problems.push(`stepIntervalMs ${input.stepIntervalMs} is negative`);
  if (problems.length > 0) {
    throw new HomeostatError("HS_BAD_REQUEST", `failback: ${problems.join("; ")}`, { details: { problems } });
  }
}
