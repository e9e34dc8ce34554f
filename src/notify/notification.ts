/**
 * Which stored facts are worth telling people about, as notifications: a pure reading of the
 * store's changes. An incident opened (or, when another instance of the same service is already
 * failing, escalated), an incident escalated to a crash loop or by an automation brake holding
 * its recovery, an incident verified, a deploy rolled back, a zone failover started and ended.
 */

import type { NotificationEvent } from "../spec/notifications.ts";
import type { EventRecord, IncidentRecord } from "../store/index.ts";

/** An incident as a notification shows it. */
export interface IncidentSummary {
  id: number;
  instance: string;
  kind: string;
  status: string;
  reason: string;
  detectedAt: number;
  mitigatedAt: number | null;
  closedAt: number | null;
  verifiedAt: number | null;
  ttdMs: number | null;
  ttrMs: number | null;
  detail: string;
}

/** One thing to tell the webhooks. */
export interface Notification {
  /** Unique per fact (`<fleet>:e<seq>`): a receiver drops the duplicates retries can cause. */
  id: string;
  type: NotificationEvent;
  /** Epoch ms of the fact. */
  at: number;
  fleet: string;
  service?: string;
  incident?: IncidentSummary;
  /** The reason code of the fact (`crash-loop`, `canary-failed`, `domain-down`, …). */
  reason: string;
  /** One sentence a person can act on. */
  message: string;
  data: Record<string, unknown>;
}

/** What the reading needs from the store. */
export interface NotificationContext {
  fleet: string;
  incident(id: number): IncidentRecord | null;
  /** Open incidents of `service`. */
  openIncidents(service: string): IncidentRecord[];
}

/** The notification a stored event calls for, or null. */
export function notificationFor(event: EventRecord, context: NotificationContext): Notification | null {
  const data = (event.data ?? {}) as Record<string, unknown>;
  const base = {
    id: `${context.fleet}:e${event.seq}`,
    at: event.at,
    fleet: context.fleet,
    ...(event.service === undefined ? {} : { service: event.service }),
    reason: event.reason,
  };
  const incidentOf = (): IncidentRecord | null =>
    typeof data.incident === "number" ? context.incident(data.incident) : null;
  switch (event.type) {
    case "incident.opened": {
      const incident = incidentOf();
      // A rollback's own incident: `deploy.rolled-back` is the news (its verification is notified).
      if (incident === null || incident.kind === "rollback") return null;
      const others = instanceFailure(incident)
        ? context.openIncidents(incident.service).filter((i) => i.id !== incident.id && instanceFailure(i))
        : [];
      if (others.length > 0) {
        const failing = [...others.map((i) => i.instance), incident.instance].sort();
        return {
          ...base,
          type: "incident.escalated",
          service: incident.service,
          incident: summary(incident),
          reason: "service-wide",
          message: `${incident.service}: ${failing.length} instances failing at once (${failing.join(", ")}); latest ${incident.instance}: ${incident.detail}`,
          data: {
            escalation: "service-wide",
            instances: failing,
            incidents: [...others.map((i) => i.id), incident.id],
          },
        };
      }
      return {
        ...base,
        type: "incident.opened",
        service: incident.service,
        incident: summary(incident),
        message: `${incident.instance}: incident #${incident.id} opened (${incident.kind}): ${incident.detail}`,
        data: {},
      };
    }
    case "incident.crash-loop": {
      const incident = incidentOf();
      if (incident === null) return null;
      return {
        ...base,
        type: "incident.escalated",
        service: incident.service,
        incident: summary(incident),
        reason: "crash-loop",
        message: `${incident.instance}: incident #${incident.id} escalated: crash-looping (${incident.detail})`,
        data: { escalation: "crash-loop" },
      };
    }
    case "incident.verified": {
      const incident = incidentOf();
      if (incident === null) return null;
      const verifiedAt = incident.verifiedAt ?? event.at;
      return {
        ...base,
        type: "incident.verified",
        service: incident.service,
        incident: summary(incident),
        message: `${incident.instance}: incident #${incident.id} recovered and verified ${seconds(verifiedAt - incident.detectedAt)} after detection (TTD ${ms(incident.ttdMs)}, TTR ${ms(incident.ttrMs)})`,
        data: {},
      };
    }
    case "deploy.rolling-back":
    case "rollback.started":
      return {
        ...base,
        type: "deploy.rolled-back",
        message: event.message,
        data: {
          automatic: event.type === "deploy.rolling-back",
          ...(data.rollout === undefined ? {} : { rollout: data.rollout }),
          ...(data.forced === undefined ? {} : { forced: data.forced }),
        },
      };
    case "failover.started":
      return {
        ...base,
        type: "failover.started",
        message: `failover: ${event.message}`,
        data: { zone: data.zone },
      };
    case "automation.held":
      // An automation brake held what automation would have done: a person must decide.
      return {
        ...base,
        type: "incident.escalated",
        message: `automation held: ${event.message}`,
        data: {
          escalation: "automation-held",
          rule: data.rule,
          kind: data.kind,
          target: data.target,
        },
      };
    case "failback.completed":
      return {
        ...base,
        type: "failover.ended",
        message: `failover ended: ${event.message}`,
        data: { zone: data.zone },
      };
    default:
      return null;
  }
}

/** Incidents that are one instance failing (not a rollback, not a broken invariant). */
function instanceFailure(incident: IncidentRecord): boolean {
  return incident.kind !== "rollback" && incident.kind !== "invariant-broken";
}

function summary(incident: IncidentRecord): IncidentSummary {
  return {
    id: incident.id,
    instance: incident.instance,
    kind: incident.kind,
    status: incident.status,
    reason: incident.reason,
    detectedAt: incident.detectedAt,
    mitigatedAt: incident.mitigatedAt,
    closedAt: incident.closedAt,
    verifiedAt: incident.verifiedAt,
    ttdMs: incident.ttdMs,
    ttrMs: incident.ttrMs,
    detail: incident.detail,
  };
}

function ms(value: number | null): string {
  return value === null ? "n/a" : seconds(value);
}

function seconds(value: number): string {
  return `${Math.round(value / 100) / 10}s`;
}
