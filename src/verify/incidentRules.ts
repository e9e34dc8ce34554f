/**
 * Incident lifecycle, as pure transitions. An incident is detected when an instance that should
 * run fails; it is mitigated when its slot has a ready instance again; it is `stabilized` once
 * the slot stayed ready for a stabilization window, and it is verified (and closed) only when the
 * verification gate also passes: the whole service converged, the SLO held, the security
 * invariants hold (see `verificationGate.ts`) — recovery is verified, not assumed. Between
 * mitigation and verification the incident is "recovered, unverified". A failure before it is
 * verified reopens the mitigation: a restart that fails again did not recover.
 *
 * A rollback is a recovery too: it opens a service-level incident (kind `rollback`), mitigated
 * when the rollback's target serves all traffic, verified through the same gate.
 *
 * Timings: `ttdMs` = detected − last good observation; `ttrMs` = mitigated − detected;
 * TTS = verifiedAt − detected.
 */

import type { InstanceHealth } from "../observe/health.ts";
import type { GateVerdict } from "./verificationGate.ts";

export type FailureKind = "exited" | "liveness-failed" | "startup-failed";

/** The reason an incident shows; `crash-loop` replaces the kind once the slot is crash-looping. */
export type IncidentReason = FailureKind | "crash-loop" | "lost-while-controller-down";

export interface IncidentView {
  id: number;
  status: "open" | "closed";
  reason: string;
  detectedAt: number;
  lastGoodAt: number | null;
  actionStartedAt: number | null;
  mitigatedAt: number | null;
  closedAt: number | null;
  /** When the stabilization window had passed while the gate still blocked (null: not yet). */
  stabilizedAt: number | null;
  /** When the verification gate passed (the incident closed then). */
  verifiedAt: number | null;
}

export interface FailureObservation {
  instance: string;
  service: string;
  kind: FailureKind;
  reason: IncidentReason;
  /** "exited with code 1", "liveness: 3 consecutive failures (timeout after 300ms)". */
  detail: string;
  at: number;
  lastGoodAt: number | null;
}

export interface TimelineEntry {
  at: number;
  phase:
    | "detected"
    | "failed-again"
    | "crash-loop"
    | "action-started"
    | "mitigated"
    | "regressed"
    | "stabilized"
    | "verified"
    | "rollback-failed"
    | "escalated";
  detail: string;
}

export interface IncidentPatch {
  status?: "open" | "closed";
  reason?: string;
  actionStartedAt?: number | null;
  mitigatedAt?: number | null;
  closedAt?: number | null;
  stabilizedAt?: number | null;
  verifiedAt?: number | null;
  ttdMs?: number | null;
  ttrMs?: number | null;
  detail?: string;
}

export type IncidentChange =
  | {
      type: "open";
      incident: {
        service: string;
        instance: string;
        kind: FailureKind | "rollback";
        reason: IncidentReason | "rollback";
        detectedAt: number;
        lastGoodAt: number | null;
        ttdMs: number | null;
        detail: string;
      };
      timeline: TimelineEntry;
    }
  | { type: "update"; id: number; patch: IncidentPatch; timeline: TimelineEntry };

/** A failure was observed; `open` is the instance's open incident, if any. */
export function onFailure(open: IncidentView | null, failure: FailureObservation): IncidentChange {
  if (open === null) {
    const ttdMs = failure.lastGoodAt === null ? null : Math.max(0, failure.at - failure.lastGoodAt);
    return {
      type: "open",
      incident: {
        service: failure.service,
        instance: failure.instance,
        kind: failure.kind,
        reason: failure.reason,
        detectedAt: failure.at,
        lastGoodAt: failure.lastGoodAt,
        ttdMs,
        detail: failure.detail,
      },
      timeline: { at: failure.at, phase: "detected", detail: failure.detail },
    };
  }
  const patch: IncidentPatch = { detail: failure.detail };
  let phase: TimelineEntry["phase"] = "failed-again";
  if (open.mitigatedAt !== null) {
    // It came back but did not stay: the earlier mitigation was not a recovery.
    patch.mitigatedAt = null;
    patch.ttrMs = null;
    patch.stabilizedAt = null;
    phase = "regressed";
  }
  if (failure.reason === "crash-loop" && open.reason !== "crash-loop") {
    patch.reason = "crash-loop";
    phase = "crash-loop";
  }
  return { type: "update", id: open.id, patch, timeline: { at: failure.at, phase, detail: failure.detail } };
}

/** The controller began acting on the incident's slot (stop or start). Only the first counts. */
export function onActionStarted(open: IncidentView, at: number, detail: string): IncidentChange | null {
  if (open.actionStartedAt !== null) return null;
  return {
    type: "update",
    id: open.id,
    patch: { actionStartedAt: at },
    timeline: { at, phase: "action-started", detail },
  };
}

/**
 * The recovery automation would carry out is held by an automation brake (a pause, a rate limit,
 * the blast radius): the incident escalates — a person must decide — with the brake's reason.
 * Nothing else changes: its timings run on, and it is mitigated as usual once the slot is ready.
 */
export function onAutomationHeld(open: IncidentView, at: number, detail: string): IncidentChange {
  return { type: "update", id: open.id, patch: {}, timeline: { at, phase: "escalated", detail } };
}

/** What the rules read of the verification gate: passed, what blocks, and each check when known. */
type GateOutcome = Pick<GateVerdict, "passed" | "blocking"> &
  Partial<Pick<GateVerdict, "converged" | "slo" | "invariants">>;

/**
 * The slot's current instance has this health at `now`. Mitigated once ready; once it has stayed
 * ready for `stabilizeMs` since mitigation, verified and closed if `gate` passes, else marked
 * `stabilized` (once) and left open, recovered but unverified, until the gate passes.
 */
export function onHealth(
  open: IncidentView,
  health: InstanceHealth,
  now: number,
  stabilizeMs: number,
  gate: GateOutcome,
): IncidentChange | null {
  if (health.state !== "ready") return null;
  if (open.mitigatedAt === null) {
    const at = Math.max(health.since, open.detectedAt);
    return {
      type: "update",
      id: open.id,
      patch: { mitigatedAt: at, ttrMs: at - open.detectedAt },
      timeline: { at, phase: "mitigated", detail: "a replacement instance is ready" },
    };
  }
  // Readiness may have blinked after mitigation; stability counts from the latest ready edge.
  const readySince = Math.max(open.mitigatedAt, health.since);
  if (now - readySince < stabilizeMs) return null;
  const stable = `ready without interruption for ${Math.round((now - readySince) / 1000)}s`;
  return onStable(open, now, stable, gate);
}

/**
 * The recovery stayed up for its stabilization window (`stable` says how): verify and close it
 * when the gate passes, else record once that it waits for the gate, and why.
 */
export function onStable(
  open: IncidentView,
  now: number,
  stable: string,
  gate: GateOutcome,
): IncidentChange | null {
  if (gate.passed) {
    const evidence = [gate.converged, gate.slo, gate.invariants].flatMap((c) => (c ? [c.detail] : []));
    return {
      type: "update",
      id: open.id,
      patch: {
        status: "closed",
        closedAt: now,
        verifiedAt: now,
        ...(open.stabilizedAt === null ? { stabilizedAt: now } : {}),
      },
      timeline: {
        at: now,
        phase: "verified",
        detail: [stable, ...evidence].join("; "),
      },
    };
  }
  if (open.stabilizedAt !== null) return null;
  return {
    type: "update",
    id: open.id,
    patch: { stabilizedAt: now },
    timeline: {
      at: now,
      phase: "stabilized",
      detail: `${stable}; not verified: ${gate.blocking.join("; ")}`,
    },
  };
}

/** A rollback's progress, as the release manager reports it to the controller. */
export interface RollbackProgress {
  type: "started" | "done" | "failed";
  service: string;
  from: string;
  to: string;
  at: number;
  detail: string;
}

/** A rollback of `service` began: it opens a service-level incident of kind `rollback`. */
export function onRollbackStarted(rollback: {
  service: string;
  from: string;
  to: string;
  at: number;
  detail: string;
}): IncidentChange {
  return {
    type: "open",
    incident: {
      service: rollback.service,
      instance: rollback.service,
      kind: "rollback",
      reason: "rollback",
      detectedAt: rollback.at,
      lastGoodAt: null,
      ttdMs: null,
      detail: `rollback ${rollback.from} → ${rollback.to}: ${rollback.detail}`,
    },
    timeline: { at: rollback.at, phase: "detected", detail: rollback.detail },
  };
}

/** The rollback's target serves all traffic: its incident is mitigated (not yet verified). */
export function onRollbackDone(open: IncidentView, at: number, detail: string): IncidentChange {
  return {
    type: "update",
    id: open.id,
    patch: {
      mitigatedAt: at,
      ttrMs: at - open.detectedAt,
      actionStartedAt: open.actionStartedAt ?? open.detectedAt,
    },
    timeline: { at, phase: "mitigated", detail },
  };
}

/**
 * The rollback gave up (its target never became ready; the release it left keeps serving). Its
 * incident closes unverified: nothing was recovered, and nothing will be.
 */
export function onRollbackFailed(open: IncidentView, at: number, detail: string): IncidentChange {
  return {
    type: "update",
    id: open.id,
    patch: { status: "closed", closedAt: at },
    timeline: { at, phase: "rollback-failed", detail },
  };
}
