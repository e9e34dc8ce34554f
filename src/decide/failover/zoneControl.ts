/**
 * Which zones are shifted out of traffic, and by how much: the state machine behind `failover`,
 * `failback` and automatic evacuation. A zone that is down is evacuated at once (its instances
 * serve nothing, so there is nothing to move gradually); a zone evacuated while it still serves
 * (degraded, or by hand) loses its traffic in steps. Traffic comes back only through the failback
 * hysteresis: healthy for a whole stabilization window, then in steps, and back to nothing at the
 * first relapse. Every change carries a typed reason. Pure: time and health are inputs.
 */

import { HomeostatError } from "../../errors.ts";
import type { FailoverSpec } from "../../spec/model.ts";
import type { ReasonCode } from "../reasons.ts";
import { type FailbackChangeKind, type FailbackState, failbackStep } from "./failback.ts";
import { checkFailoverAllowed, type FailoverDecision } from "./safetyRules.ts";
import type { DomainHealth } from "./types.ts";
import { duration } from "./words.ts";

/** `evacuating`: traffic leaving in steps. `evacuated`: none left. `failing-back`: returning in steps. */
export type ShiftPhase = "evacuating" | "evacuated" | "failing-back";

export interface ZoneShift {
  zone: string;
  phase: ShiftPhase;
  /** Share of its normal traffic the zone keeps now, 0..1. */
  share: number;
  trigger: "automatic" | "manual";
  /** Why the zone was evacuated, in words. */
  reason: string;
  startedAt: number;
  /** When the share last changed. */
  lastStepAt: number;
  /** Failback hysteresis; null until failback may begin (automatic: once evacuated; manual: once asked). */
  failback: FailbackState | null;
  /** Set while the next evacuation step waits for added capacity: since when, and why. */
  held?: { since: number; reason: string } | null;
}

/**
 * Why the next step of an evacuation (the zone keeping `nextShare`) must wait — capacity being
 * added in the other zones that is not ready yet — or null when it may go ahead. The caller
 * starts that capacity when it answers.
 */
export type StepGate = (zone: string, nextShare: number) => string | null;

/** A step waits for added capacity at most this many step intervals; then shedding covers the rest. */
export const MAX_HOLD_STEPS = 3;

export interface ZoneControlState {
  shifts: ZoneShift[];
  /** When the last automated evacuation started (the minimum interval counts from it). */
  lastAutomatedAt: number | null;
  /** The last refusal reported per zone, so a refusal is announced once, not every tick. */
  refused: Record<string, string>;
  /** Since when each zone has been down without a break (automatic evacuation waits `confirmMs`). */
  downSince: Record<string, number>;
}

export const EMPTY_ZONE_CONTROL: ZoneControlState = Object.freeze({
  shifts: [],
  lastAutomatedAt: null,
  refused: {},
  downSince: {},
}) as ZoneControlState;

export interface ZoneEvent {
  type:
    | "failover.started"
    | "failover.step"
    | "failover.step-held"
    | "failover.completed"
    | "failover.refused"
    | "failback.waiting"
    | "failback.step"
    | "failback.relapsed"
    | "failback.completed";
  zone: string;
  code: ReasonCode;
  message: string;
  share: number;
}

export interface ZoneTick {
  now: number;
  /** Health of every zone of the fleet. */
  zones: readonly DomainHealth[];
  spec: FailoverSpec;
  /** Scale-up before moving: may hold an evacuation step (none: steps go on time). */
  gate?: StepGate;
  /**
   * Automation brakes (a pause, failovers per hour, the blast radius), asked about an automatic
   * evacuation the safety rules allow, last thing before it starts: a reason holds it (the caller
   * records and announces the hold), null lets it go. Absent: never held.
   */
  brake?: AutomationBrake;
}

/** See {@link ZoneTick.brake}: why automation may not evacuate `zone` now, or null. */
export type AutomationBrake = (zone: string) => string | null;

export interface ZoneControlResult {
  state: ZoneControlState;
  events: ZoneEvent[];
}

/**
 * One control pass: start automatic evacuations of zones that are down (when the spec allows and
 * the safety rules agree), move evacuating zones one step when their step interval has passed,
 * and drive failback for evacuated zones.
 */
export function advanceZones(state: ZoneControlState, tick: ZoneTick): ZoneControlResult {
  const events: ZoneEvent[] = [];
  const downSince: Record<string, number> = {};
  for (const zone of tick.zones) {
    if (zone.state === "down") downSince[zone.zone] = state.downSince[zone.zone] ?? tick.now;
  }
  let next: ZoneControlState = {
    ...state,
    shifts: [...state.shifts],
    refused: { ...state.refused },
    downSince,
  };
  const health = new Map(tick.zones.map((zone) => [zone.zone, zone]));

  if (tick.spec.automatic) {
    for (const zone of tick.zones) {
      if (zone.state !== "down" || next.shifts.some((shift) => shift.zone === zone.zone)) continue;
      // A crashed instance is replaced in place within moments: only a zone that stays down moves.
      if (tick.now - downSince[zone.zone]! < tick.spec.confirmMs) continue;
      const outcome = startEvacuation(next, {
        domain: zone.zone,
        zones: tick.zones,
        now: tick.now,
        spec: tick.spec,
        automated: true,
        why: `${zone.zone} is down (for ${duration(tick.now - downSince[zone.zone]!)}): ${zone.reason}`,
        ...(tick.brake ? { brake: tick.brake } : {}),
      });
      next = outcome.state;
      events.push(...outcome.events);
    }
  }
  for (const zone of Object.keys(next.refused)) {
    if (health.get(zone)?.state !== "down") delete next.refused[zone];
  }

  next.shifts = next.shifts.flatMap((shift) => {
    const zoneHealth = health.get(shift.zone);
    const moved = moveShift(shift, zoneHealth, tick);
    events.push(...moved.events);
    return moved.shift === null ? [] : [moved.shift];
  });
  return { state: next, events };
}

export interface EvacuationRequest {
  domain: string;
  zones: readonly DomainHealth[];
  now: number;
  spec: FailoverSpec;
  automated: boolean;
  /** Why, in words: the detected condition, or the person's reason. */
  why: string;
  /** A person stepping over `one-at-a-time` and `min-interval` (manual only). */
  override?: { reason: string };
  /** Scale-up before moving: may hold the first step. */
  gate?: StepGate;
  /** Automation brakes, asked once the safety rules allow an automated request (see {@link ZoneTick.brake}). */
  brake?: AutomationBrake;
}

/**
 * Start evacuating `domain` if the safety rules allow it. A zone already shifted (evacuating,
 * evacuated or failing back) is refused with HS_CONFLICT for a manual request; for an automated
 * one it is not allowed and changes nothing.
 */
export function startEvacuation(
  state: ZoneControlState,
  request: EvacuationRequest,
): ZoneControlResult & { decision: FailoverDecision } {
  const { domain, now } = request;
  const existing = state.shifts.find((shift) => shift.zone === domain);
  if (existing !== undefined) {
    const already = `${domain} is already ${existing.phase} (share ${Math.round(existing.share * 100)} %)`;
    // Automation asking again is not an error, but it must never stack a second shift on the zone.
    if (request.automated) return { state, events: [], decision: { allowed: false, reason: already } };
    throw new HomeostatError(
      "HS_CONFLICT",
      `${already}; use \`homeostat failback ${domain}\` to bring traffic back`,
      { details: { zone: domain, phase: existing.phase } },
    );
  }
  const decision = checkFailoverAllowed({
    domain,
    zones: request.zones,
    evacuated: state.shifts.map((shift) => shift.zone),
    lastAutomatedAt: state.lastAutomatedAt,
    now,
    minIntervalMs: request.spec.minIntervalMs,
    automated: request.automated,
    ...(request.override ? { override: request.override } : {}),
  });
  if (!decision.allowed) {
    if (!request.automated) return { state, events: [], decision };
    const refusal = decision.rule ?? "refused";
    if (state.refused[domain] === refusal) return { state, events: [], decision };
    return {
      state: { ...state, refused: { ...state.refused, [domain]: refusal } },
      events: [
        {
          type: "failover.refused",
          zone: domain,
          code: "failover-refused",
          message: `not evacuating ${domain} automatically: ${decision.reason}`,
          share: 1,
        },
      ],
      decision,
    };
  }
  const braked = request.automated ? (request.brake?.(domain) ?? null) : null;
  if (braked !== null) return { state, events: [], decision: { allowed: false, reason: braked } };
  const zone = request.zones.find((z) => z.zone === domain);
  const down = zone?.state === "down";
  const shift: ZoneShift = {
    zone: domain,
    phase: down ? "evacuated" : "evacuating",
    share: down ? 0 : 1,
    trigger: request.automated ? "automatic" : "manual",
    reason: request.why,
    startedAt: now,
    lastStepAt: now,
    failback: null,
  };
  const how = down
    ? "all of its traffic leaves at once: its instances serve nothing, so there is nothing to move gradually"
    : `its traffic leaves in steps of ${request.spec.stepPercent} % every ${duration(request.spec.stepIntervalMs)}`;
  const events: ZoneEvent[] = [
    {
      type: "failover.started",
      zone: domain,
      code: request.automated ? (down ? "domain-down" : "domain-degraded") : "failover-manual",
      message: `evacuating ${domain} (${request.automated ? "automatic" : "manual"}): ${request.why}; ${how}; ${decision.reason}`,
      share: shift.share,
    },
  ];
  let placed = shift;
  if (!down) {
    const moved = nextStep(shift, now, request.spec, request.gate);
    placed = moved.shift;
    events.push(...moved.events);
  }
  const refused = { ...state.refused };
  delete refused[domain];
  return {
    state: {
      ...state,
      shifts: [...state.shifts, placed],
      lastAutomatedAt: request.automated ? now : state.lastAutomatedAt,
      refused,
    },
    events,
    decision,
  };
}

/**
 * A person asks for `domain`'s traffic back. Traffic returns only through the failback hysteresis:
 * the zone must stay healthy for the stabilization window (counted from now), then it ramps up.
 *
 * @throws HomeostatError HS_NOT_FOUND when the zone is not shifted
 */
export function requestFailback(
  state: ZoneControlState,
  request: { domain: string; now: number; why: string },
): ZoneControlResult {
  const shift = state.shifts.find((s) => s.zone === request.domain);
  if (shift === undefined) {
    throw new HomeostatError("HS_NOT_FOUND", `${request.domain} is not evacuated: it has all its traffic`, {
      details: { zone: request.domain },
    });
  }
  if (shift.failback !== null) return { state, events: [] };
  const updated: ZoneShift = {
    ...shift,
    // A failback asked for in the middle of an evacuation stops it where it is: the share is held
    // (degraded or not) until the window passes, and drops to 0 if the zone goes down (moveShift).
    phase: shift.share > 0 ? "failing-back" : "evacuated",
    trigger: "manual",
    failback: {
      zone: shift.zone,
      phase: "down",
      healthySince: null,
      sharePercent: Math.round(shift.share * 100),
      lastStepAt: null,
      relapses: 0,
    },
  };
  return {
    state: { ...state, shifts: state.shifts.map((s) => (s.zone === shift.zone ? updated : s)) },
    events: [
      {
        type: "failback.waiting",
        zone: shift.zone,
        code: "failback-waiting",
        message: `failback of ${shift.zone} requested: ${request.why}; traffic returns once it stays healthy for the stabilization window`,
        share: shift.share,
      },
    ],
  };
}

/** Zone → share of its traffic it keeps, for every shifted zone. */
export function zoneShares(state: ZoneControlState): Record<string, number> {
  return Object.fromEntries(state.shifts.map((shift) => [shift.zone, shift.share]));
}

function moveShift(
  shift: ZoneShift,
  health: DomainHealth | undefined,
  tick: ZoneTick,
): { shift: ZoneShift | null; events: ZoneEvent[] } {
  const { now, spec } = tick;
  if (shift.phase === "evacuating") {
    if (health?.state === "down") {
      const next = { ...shift, phase: "evacuated" as const, share: 0, lastStepAt: now };
      return {
        shift: next,
        events: [
          {
            type: "failover.completed",
            zone: shift.zone,
            code: "failover-complete",
            message: `${shift.zone} went down during its evacuation: its remaining traffic leaves at once`,
            share: 0,
          },
        ],
      };
    }
    if (now - shift.lastStepAt < spec.stepIntervalMs) return { shift, events: [] };
    return nextStep(shift, now, spec, tick.gate);
  }

  // Evacuated or failing back: automatic evacuations fail back by themselves, manual ones once asked.
  const failback = shift.failback;
  if (failback === null && shift.trigger === "manual") return { shift, events: [] };
  if (failback?.phase === "down" && failback.sharePercent > 0 && health?.state === "down") {
    // A failback asked for mid-evacuation holds the share where it was (see requestFailback), in
    // failback's `down` phase, which failbackStep leaves alone while the zone is unhealthy: a zone
    // that goes down while held is emptied here, since a down zone serves nothing.
    const dropped: FailbackState = { ...failback, sharePercent: 0, relapses: failback.relapses + 1 };
    return {
      shift: { ...shift, failback: dropped, share: 0, phase: "evacuated", lastStepAt: now },
      events: [
        {
          type: "failback.relapsed",
          zone: shift.zone,
          code: "failback-relapsed",
          message: `${shift.zone} went down while its failback was pending: traffic back to 0 % at once; the ${duration(spec.stabilizationMs)} stabilization window starts once it is healthy`,
          share: 0,
        },
      ],
    };
  }
  const healthy = health?.state === "healthy";
  const step = failbackStep(failback, {
    zone: shift.zone,
    healthy,
    now,
    stabilizationMs: spec.stabilizationMs,
    stepPercent: spec.stepPercent,
    stepIntervalMs: spec.stepIntervalMs,
  });
  const share = step.shareForZone / 100;
  const events: ZoneEvent[] = step.changes.map(({ kind, message }) => ({
    ...FAILBACK_EVENTS[kind],
    zone: shift.zone,
    message,
    share,
  }));
  if (step.state.phase === "restored") return { shift: null, events };
  return {
    shift: {
      ...shift,
      failback: step.state,
      share,
      phase: share > 0 ? "failing-back" : "evacuated",
      lastStepAt: share !== shift.share ? now : shift.lastStepAt,
    },
    events,
  };
}

const FAILBACK_EVENTS: Record<FailbackChangeKind, Pick<ZoneEvent, "type" | "code">> = {
  waiting: { type: "failback.waiting", code: "failback-waiting" },
  returning: { type: "failback.step", code: "failback-step" },
  step: { type: "failback.step", code: "failback-step" },
  restored: { type: "failback.completed", code: "failback-complete" },
  relapsed: { type: "failback.relapsed", code: "failback-relapsed" },
};

/**
 * The next evacuation step of `shift`, unless the gate holds it for capacity being added (at most
 * MAX_HOLD_STEPS step intervals; a hold is announced once, and so is going ahead without it). A
 * step of 100 % empties the zone in one move: it is evacuated, not evacuating at 0 %.
 */
function nextStep(
  shift: ZoneShift,
  now: number,
  spec: FailoverSpec,
  gate: StepGate | undefined,
): { shift: ZoneShift; events: ZoneEvent[] } {
  const share = stepDown(shift.share, spec.stepPercent);
  const why = gate?.(shift.zone, share) ?? null;
  const held = shift.held ?? null;
  if (why !== null) {
    const waited = held === null ? 0 : now - held.since;
    if (waited < MAX_HOLD_STEPS * spec.stepIntervalMs) {
      if (held !== null) return { shift, events: [] };
      return {
        shift: { ...shift, held: { since: now, reason: why } },
        events: [
          {
            type: "failover.step-held",
            zone: shift.zone,
            code: "failover-step-held",
            message: `${shift.zone} stays at ${Math.round(shift.share * 100)} % for now: ${why}`,
            share: shift.share,
          },
        ],
      };
    }
  }
  const next: ZoneShift = {
    ...shift,
    share,
    lastStepAt: now,
    phase: share === 0 ? "evacuated" : "evacuating",
    held: null,
  };
  const event = share === 0 ? completedEvent(next) : stepEvent(next);
  if (why !== null && held !== null) {
    event.message += ` (after waiting ${duration(now - held.since)} for added capacity: ${why}; shedding covers the rest)`;
  } else if (held !== null) {
    event.message += ` (the added capacity is ready after ${duration(now - held.since)})`;
  }
  return { shift: next, events: [event] };
}

function stepDown(share: number, stepPercent: number): number {
  return Math.max(0, Number((share - stepPercent / 100).toFixed(9)));
}

function stepEvent(shift: ZoneShift): ZoneEvent {
  return {
    type: "failover.step",
    zone: shift.zone,
    code: "failover-step",
    message: `${shift.zone} keeps ${Math.round(shift.share * 100)} % of its traffic; the rest goes to the other zones`,
    share: shift.share,
  };
}

function completedEvent(shift: ZoneShift): ZoneEvent {
  return {
    type: "failover.completed",
    zone: shift.zone,
    code: "failover-complete",
    message: `${shift.zone} is evacuated: it gets no traffic until it fails back`,
    share: 0,
  };
}
