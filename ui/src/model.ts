/**
 * What the dashboard reads from the API, typed loosely (the server's types live in src/, which
 * the browser bundle does not import; only the invariant verdict's are imported, type-only), and
 * the recovery state of an instance, service or zone.
 */

import type { BrokenInvariant, InvariantVerdict } from "../../src/verify/invariants.ts";

export type RecoveryState =
  | "healthy"
  | "degraded"
  | "failing"
  | "recovering"
  | "recovered-unverified"
  | "verified";

/** The `recovery` field the status document carries per instance, service, zone and fleet. */
export interface RecoveryInfo {
  state: RecoveryState;
  reasons?: string[];
}

export interface Instance {
  name: string;
  service: string;
  slot: number;
  port: number;
  zone: string;
  host: string;
  release: string | null;
  state: string;
  reason: string;
  since: number | null;
  pid: number | null;
  consecutiveFailures: number;
  crashLoop: boolean;
  nextStartAt: number | null;
  openIncident: number | null;
  recovery?: RecoveryInfo | RecoveryState;
}

export interface Service {
  name: string;
  release: string;
  runningReleases: string[];
  replicas: number;
  ready: number;
  state: string;
  warnings: string[];
  instances: Instance[];
  recovery?: RecoveryInfo | RecoveryState;
  /** The verification gate now: each condition's detail and the ones that block. */
  gate?: ServiceGate;
}

/** The verification gate of a service (`services[].gate`). */
export interface ServiceGate {
  passed: boolean;
  converged: string;
  slo: string;
  invariants: string;
  /** The details of the conditions that block, in order (absent from an older controller). */
  blocking?: string[];
}

/**
 * A service's security-invariant verdict (`status.invariants[service]`) and one invariant that
 * does not hold: the server's own types (src/verify/invariants.ts imports nothing, and a type-only
 * import leaves nothing in the bundle).
 */
export type { BrokenInvariant, InvariantVerdict };

export interface PartialRecovery {
  kind: string;
  service?: string;
  zone?: string;
  instances?: string[];
  detail: string;
}

export interface StatusDoc {
  fleet: { name: string; file: string };
  controller: { pid: number; startedAt: number; apiPort: number; now: number };
  services: Service[];
  openIncidents: number;
  domains: {
    zone: string;
    survivorPeakUtilization: number | null;
    survivesLoss: boolean;
    headroomRps: number;
  }[];
  staticStability: { ok: boolean; warning?: string; skipped: { service: string; reason: string }[] };
  dataPlane?: { connected?: boolean; pid?: number | null; mode?: string };
  recovery?: RecoveryInfo & {
    partial?: PartialRecovery[];
    zones?: Record<string, RecoveryInfo> | ({ zone: string } & RecoveryInfo)[];
  };
  partial?: PartialRecovery[];
  /** Each zone's recovery state. */
  zones?: { zone: string; recovery?: RecoveryInfo }[];
  /** Per service that declares security invariants: their verdict now. */
  invariants?: Record<string, InvariantVerdict>;
  /** Replicated stores (docs/redis.md): topology, replication lag, epoch. */
  stores?: StoreDoc[];
  /** Automation brakes (docs/brakes.md): the pause, each limit and how close it is, held actions. */
  brakes?: BrakesDoc;
}

/** A rate limit's window as the status document carries it. */
export interface WindowDoc {
  used: number;
  max: number;
  windowMs: number;
  /** When one more is allowed (null: now). */
  freeAt: number | null;
}

/** The automation brakes in the status document (GET /v1/brakes). */
export interface BrakesDoc {
  paused: { by: string; reason: string; since: number } | null;
  usage: {
    services: {
      service: string;
      restarts: WindowDoc;
      actedOn: { instances: string[]; limit: number; share: number; size: number };
    }[];
    fleet: {
      actedOn: { count: number; limit: number; share: number; size: number };
      rollbacks: WindowDoc;
      failovers: WindowDoc;
    };
  };
  held: {
    kind: "restart" | "rollback" | "failover";
    target: string;
    service: string | null;
    rule: string;
    reason: { code: string; message: string };
    since: number;
    until: number | null;
  }[];
}

/** One replicated store as the status document carries it (GET /v1/stores). */
export interface StoreDoc {
  name: string;
  kind: "redis";
  epoch: number;
  primary: string;
  phase: string;
  endpoint: { address: string; port: number; primary: string | null };
  sentinel: { port: number; announce: string } | null;
  members: {
    name: string;
    zone: string;
    port: number;
    pid: number | null;
    process: "running" | "exited";
    reachable: boolean;
    role: "primary" | "replica" | null;
    offset: number | null;
    lagBytes: number | null;
    linkUp: boolean;
    follows: string | null;
  }[];
  lastFailover: {
    at: number;
    from: string;
    to: string;
    epoch: number;
    kind: string;
    lossBytes: number;
  } | null;
  openIncident: number | null;
}

export interface TimelineStep {
  at: number;
  phase: string;
  detail?: string;
}

export interface Incident {
  id: number;
  service: string;
  instance: string;
  kind: string;
  status: string;
  reason: string;
  detectedAt: number;
  lastGoodAt: number | null;
  actionStartedAt: number | null;
  mitigatedAt: number | null;
  closedAt: number | null;
  stabilizedAt?: number | null;
  verifiedAt?: number | null;
  ttdMs: number | null;
  ttrMs: number | null;
  ttmMs?: number | null;
  ttsMs?: number | null;
  ttvMs?: number | null;
  detail: string;
  timeline?: TimelineStep[];
}

export interface EventRecord {
  seq: number;
  at: number;
  type: string;
  reason: string;
  message: string;
  service?: string;
  instance?: string;
}

export interface Verdict {
  step: number;
  weight: number;
  verdict: string;
  at: number;
  reasons: string[];
  canary?: { requests: number; errors: number; errorRate: number; p99Ms: number | null };
  baseline?: { requests: number; errors: number; errorRate: number; p99Ms: number | null };
}

export interface Rollout {
  id: number;
  kind: string;
  finished: boolean;
  state: {
    id: number;
    service: string;
    from: string | null;
    to: string;
    phase: string;
    stepIndex: number;
    startedAt: number;
    endedAt: number | null;
    verdicts: Verdict[];
    reason: string | null;
    evidence?: unknown;
  };
}

export interface ReleaseRecord {
  service: string;
  version: string;
  contentHash: string;
  status: string;
  deployedAt: number | null;
  provenAt: number | null;
  evidence: unknown;
}

export interface ReleasesDoc {
  active: string;
  history: ReleaseRecord[];
  rollouts: Rollout[];
}

export interface FailoverZone {
  zone: string;
  state: string;
  healthyInstances: number;
  totalInstances: number;
  reason: string;
  share: number;
  shift: null | Record<string, unknown>;
}

/** How failover protects a service's survivors now. */
export interface FailoverService {
  service: string;
  demandRps: number;
  servingCapacityRps: number;
  /** null: nothing serves (JSON has no Infinity). */
  projectedUtilization: number | null;
  ceiling: number;
  /** Share of each criticality being shed (0..1). */
  shed: Record<string, number>;
  addedInstances: string[];
  reasons: string[];
}

export interface FailoverDoc {
  automatic: boolean;
  zones: FailoverZone[];
  services: FailoverService[];
  lastAutomatedAt: number | null;
}

export interface CheckDoc {
  findings: { kind?: string; severity?: string; message?: string; detail?: string; [k: string]: unknown }[];
  headroom: unknown[];
  skipped: { service: string; reason: string }[];
}

export interface TrafficService {
  service: string;
  port: number;
  healthy: number;
  members: number;
  panic: boolean;
  weights: Record<string, number> | null;
  shedding: unknown;
  requestsInFlight: number;
  endpoints: { instance: string; ejected: boolean; stalled: boolean; draining: boolean }[];
  /** Absent: embedded. */
  engine?: "embedded" | "haproxy";
  haproxy?: { pid: number | null; reloads: number; lastError: string | null };
}

/** Who the token belongs to (`GET /v1/whoami`). */
export interface Whoami {
  name: string;
  role: "viewer" | "operator" | "admin" | null;
}

const STATES: readonly RecoveryState[] = [
  "healthy",
  "degraded",
  "failing",
  "recovering",
  "recovered-unverified",
  "verified",
];

function stateOf(value: RecoveryInfo | RecoveryState | undefined): RecoveryState | undefined {
  if (value === undefined) return undefined;
  const state = typeof value === "string" ? value : value.state;
  return STATES.includes(state) ? state : undefined;
}

/** Reasons the recovery field gives, if any. */
export function reasonsOf(value: RecoveryInfo | RecoveryState | undefined): string[] {
  return typeof value === "object" && value !== null ? (value.reasons ?? []) : [];
}

/**
 * An instance's recovery state: the controller's own (`recovery`) when it reports one, else
 * derived from the older fields — an open incident on a ready instance is mitigated but not yet
 * verified, never "healthy".
 */
export function instanceRecovery(i: Instance): RecoveryState {
  const own = stateOf(i.recovery);
  if (own !== undefined) return own;
  if (i.state === "ready") return i.openIncident === null ? "healthy" : "recovered-unverified";
  if (i.state === "starting" || i.state === "stopping")
    return i.openIncident === null ? "healthy" : "recovering";
  if (i.state === "stopped") return "degraded";
  return "failing";
}

/** A service's recovery state (its own when reported, else the worst of its instances). */
export function serviceRecovery(s: Service): RecoveryState {
  const own = stateOf(s.recovery);
  if (own !== undefined) return own;
  const states = s.instances.map(instanceRecovery);
  for (const worst of ["failing", "recovering", "recovered-unverified"] as const) {
    if (states.includes(worst)) return worst;
  }
  return s.state === "healthy" ? "healthy" : "degraded";
}

/** The fleet's recovery state (its own when reported, else the worst of its services). */
export function fleetRecovery(status: StatusDoc): RecoveryState {
  const own = stateOf(status.recovery);
  if (own !== undefined) return own;
  const states = status.services.map(serviceRecovery);
  for (const s of ["failing", "recovering", "recovered-unverified", "degraded"] as const) {
    if (states.includes(s)) return s;
  }
  return "healthy";
}

/** A zone's recovery state, when the controller reports one. */
export function zoneRecovery(status: StatusDoc, zone: string): RecoveryInfo | undefined {
  const own = status.zones?.find((z) => z.zone === zone)?.recovery;
  if (own !== undefined && stateOf(own) !== undefined) return own;
  const zones = status.recovery?.zones;
  if (zones === undefined) return undefined;
  const found = Array.isArray(zones) ? zones.find((z) => z.zone === zone) : zones[zone];
  return found !== undefined && stateOf(found) !== undefined ? found : undefined;
}

/** Partial recoveries the controller names (mixed releases, an old config, a half-shifted zone). */
export function partialsOf(status: StatusDoc): PartialRecovery[] {
  return status.recovery?.partial ?? status.partial ?? [];
}

/** A broken invariant with every instance that breaks it. */
export interface BrokenGroup {
  invariant: string;
  instances: string[];
  details: string[];
  since: number;
}

/**
 * A service's invariant verdict in words: `broken` (naming each invariant and its instances),
 * `unchecked` (not ok, not broken: nothing proves they hold yet), `held`, or `none` (the service
 * declares none); undefined when the controller reports no verdicts at all.
 */
export type InvariantSummary =
  | { verdict: "broken"; broken: BrokenGroup[]; lastCheckedAt: number | null }
  | { verdict: "unchecked" | "held"; lastCheckedAt: number | null }
  | { verdict: "none" };

/** A service's {@link InvariantSummary} from the status document. */
export function invariantsOf(status: StatusDoc, service: string): InvariantSummary | undefined {
  if (status.invariants === undefined) return undefined;
  const v = status.invariants[service];
  if (v === undefined) return { verdict: "none" };
  if (v.broken.length > 0) {
    const groups = new Map<string, BrokenGroup>();
    for (const b of v.broken) {
      const g = groups.get(b.invariant) ?? {
        invariant: b.invariant,
        instances: [],
        details: [],
        since: b.since,
      };
      if (b.instance !== undefined && !g.instances.includes(b.instance)) g.instances.push(b.instance);
      g.details.push(b.detail);
      g.since = Math.min(g.since, b.since);
      groups.set(b.invariant, g);
    }
    return { verdict: "broken", broken: [...groups.values()], lastCheckedAt: v.lastCheckedAt };
  }
  return { verdict: v.ok && v.checked ? "held" : "unchecked", lastCheckedAt: v.lastCheckedAt };
}

/**
 * What keeps an incident from being verified, for an incident that is mitigated and not verified
 * yet: the blocking conditions of its service's verification gate (empty: the gate passes now, the
 * stabilization window is what it waits for); undefined when the incident is not in that state or
 * the controller reports no gate.
 */
export function gateWaitOf(status: StatusDoc | null, incident: Incident): string[] | undefined {
  if (status === null || incident.status !== "open" || incident.mitigatedAt === null) return undefined;
  if (incident.verifiedAt != null) return undefined;
  const gate = status.services.find((s) => s.name === incident.service)?.gate;
  if (gate === undefined) return undefined;
  if (gate.blocking !== undefined) return gate.blocking;
  if (gate.passed) return [];
  // An older controller without `blocking`: every condition's detail, as it gave them.
  return [gate.converged, gate.slo, gate.invariants];
}

/**
 * An incident's phases in order with their times (detected, action started, mitigated, verified or
 * closed), from its timeline when it has one, else from its fields.
 */
export function phasesOf(incident: Incident): TimelineStep[] {
  if (incident.timeline !== undefined && incident.timeline.length > 0) return incident.timeline;
  const steps: TimelineStep[] = [{ at: incident.detectedAt, phase: "detected", detail: incident.detail }];
  if (incident.actionStartedAt !== null)
    steps.push({ at: incident.actionStartedAt, phase: "action-started" });
  if (incident.mitigatedAt !== null) steps.push({ at: incident.mitigatedAt, phase: "mitigated" });
  if (incident.verifiedAt != null) steps.push({ at: incident.verifiedAt, phase: "verified" });
  if (incident.closedAt !== null) steps.push({ at: incident.closedAt, phase: "closed" });
  return steps;
}

/** Time to detect, to mitigate and to stabilize/verify, from the fields or the timestamps. */
export function timingsOf(incident: Incident): {
  ttd: number | null;
  ttm: number | null;
  tts: number | null;
} {
  const ttd = incident.ttdMs;
  const ttm =
    incident.ttmMs ??
    incident.ttrMs ??
    (incident.mitigatedAt === null ? null : incident.mitigatedAt - incident.detectedAt);
  const settled = incident.verifiedAt ?? incident.closedAt;
  const tts = incident.ttsMs ?? incident.ttvMs ?? (settled == null ? null : settled - incident.detectedAt);
  return { ttd, ttm, tts };
}
