/**
 * Incident lifecycle, as pure transitions. An incident is detected when an instance that should
 * run fails; it is mitigated when its slot has a ready instance again; it is closed only after the
 * slot stayed ready for a stabilization window — recovery is verified, not assumed. A failure
 * before that window ends reopens the mitigation: a restart that fails again did not recover.
 *
 * Timings: `ttdMs` = detected − last good observation; `ttrMs` = mitigated − detected;
 * stabilization = closed − detected.
 */

import type { InstanceHealth } from "../observe/health.ts";

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
    | "stabilized";
  detail: string;
}

export interface IncidentPatch {
  status?: "open" | "closed";
  reason?: string;
  actionStartedAt?: number | null;
  mitigatedAt?: number | null;
  closedAt?: number | null;
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
        kind: FailureKind;
        reason: IncidentReason;
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
 * The slot's current instance has this health at `now`. Mitigated once ready; closed once it has
 * stayed ready for `stabilizeMs` since mitigation.
 */
export function onHealth(
  open: IncidentView,
  health: InstanceHealth,
  now: number,
  stabilizeMs: number,
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
  if (now - readySince >= stabilizeMs) {
    return {
      type: "update",
      id: open.id,
      patch: { status: "closed", closedAt: now },
      timeline: {
        at: now,
        phase: "stabilized",
        detail: `ready without interruption for ${Math.round((now - readySince) / 1000)}s`,
      },
    };
  }
  return null;
}
