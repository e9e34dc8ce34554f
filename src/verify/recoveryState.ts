/**
 * Recovery states: what `status` says about each instance, service, zone and the fleet, derived
 * from observations each time (never stored, so it cannot drift from what is seen). The point is
 * that a half-done recovery is never shown as "healthy": an instance on an old config, a zone
 * still half-shifted, fewer ready instances than replicas, or invariants nobody checked yet are
 * each named.
 *
 * States, from worst to best (a service, zone or the fleet shows the worst of its parts, with
 * every part's reasons):
 *
 * - `failing`: an instance has an open incident and no action under way: its process is gone
 *   (exited, stopped) or unhealthy, and no start or stop runs (not acted on yet, or waiting out a
 *   restart backoff); a service with a broken security invariant.
 * - `recovering`: an open incident with an action under way (the instance starting, stopping,
 *   or started and not ready yet) and not mitigated yet; a rollback under way.
 * - `recovered-unverified`: mitigated (ready again, or the rollback's target serves) but the
 *   verification gate has not passed yet (stabilization window, convergence, SLO, invariants).
 * - `degraded`: serving, but something is partial: not ready without an incident, not converged
 *   (another release, an old config or old secret versions, launch facts unknown), mixed
 *   releases, fewer ready than replicas, a zone (half-)shifted, invariants not yet checked.
 * - `verified`: an incident of this part passed the gate within the display window, and nothing
 *   above applies.
 * - `healthy`: no recent incident, ready, converged, invariants ok.
 *
 * Pure: a snapshot in, states with reasons and the list of partial findings out.
 */

import { type Drift, describeDrift } from "./convergence.ts";
import type { InvariantVerdict } from "./invariants.ts";
import type { GateVerdict } from "./verificationGate.ts";

/** How long after its incident was verified a part shows `verified` (then `healthy`). */
export const VERIFIED_DISPLAY_MS = 60_000;

export type RecoveryStateName =
  | "healthy"
  | "degraded"
  | "failing"
  | "recovering"
  | "recovered-unverified"
  | "verified";

/** Instance statuses with no process serving and none being started or stopped. */
const NO_ACTION_UNDER_WAY: ReadonlySet<string> = new Set(["exited", "stopped", "unhealthy"]);

/** Worst first: the rank a roll-up compares. */
const SEVERITY: Record<RecoveryStateName, number> = {
  failing: 5,
  recovering: 4,
  "recovered-unverified": 3,
  degraded: 2,
  verified: 1,
  healthy: 0,
};

/** Why a part is in its state: a stable code for programs, a sentence for people. */
export interface RecoveryCause {
  code:
    | "incident-open"
    | "action-started"
    | "mitigated"
    | "gate-blocked"
    | "verified"
    | "not-ready"
    | "drift"
    | "mixed-releases"
    | "ready-below-replicas"
    | "invariant-broken"
    | "invariant-unchecked"
    | "zone-shifted"
    | "rollback";
  message: string;
}

export interface Recovery {
  state: RecoveryStateName;
  /** One sentence per cause (what `status` prints). */
  reasons: string[];
  causes: RecoveryCause[];
}

export type PartialKind =
  | "mixed-releases"
  | "old-config"
  | "old-secrets"
  | "old-release"
  | "half-shifted-zone"
  | "ready-below-replicas"
  | "release-edited";

/** A recovery that is partial, named: never hidden behind a healthy summary. */
export interface PartialFinding {
  kind: PartialKind;
  service?: string;
  zone?: string;
  instances?: string[];
  detail: string;
}

/** An incident as the derivation needs it. */
export interface IncidentFacts {
  id: number;
  kind: string;
  status: "open" | "closed";
  detectedAt: number;
  actionStartedAt: number | null;
  mitigatedAt: number | null;
  verifiedAt: number | null;
  detail: string;
}

export interface InstanceFacts {
  name: string;
  zone: string;
  /** The status view's state: ready, starting, unready, unhealthy, exited, stopped, stopping. */
  status: string;
  statusReason: string;
  release: string | null;
  /** How its launch facts differ from the desired ones; empty: converged. */
  drift: Drift[];
  /** Its open incident, if any. */
  openIncident: IncidentFacts | null;
  /** Its latest incident verified within the display window, if any. */
  recentlyVerified: IncidentFacts | null;
}

export interface ServiceFacts {
  name: string;
  replicas: number;
  ready: number;
  runningReleases: string[];
  instances: InstanceFacts[];
  /** Open service-level incidents (rollbacks, broken invariants). */
  openIncidents: IncidentFacts[];
  /** Service-level incidents verified within the display window. */
  recentlyVerified: IncidentFacts[];
  invariants: InvariantVerdict;
  /** The verification gate now (why an unverified recovery waits). */
  gate: GateVerdict;
}

export interface ZoneFacts {
  zone: string;
  /** Share of its normal traffic the zone keeps (1: not shifted). */
  share: number;
  /** Failover phase, when shifted ("evacuating", "evacuated", "failing-back"). */
  phase: string | null;
  reason: string | null;
}

export interface RecoverySnapshot {
  services: readonly ServiceFacts[];
  zones: readonly ZoneFacts[];
}

export interface RecoveryReport {
  instances: Map<string, Recovery>;
  services: Map<string, Recovery>;
  zones: Map<string, Recovery>;
  fleet: Recovery;
  partial: PartialFinding[];
}

/** Derive every part's state and the partial findings. */
export function deriveRecovery(snapshot: RecoverySnapshot): RecoveryReport {
  const instances = new Map<string, Recovery>();
  const services = new Map<string, Recovery>();
  const partial: PartialFinding[] = [];
  const byZone = new Map<string, Recovery[]>();

  for (const service of snapshot.services) {
    const parts: Recovery[] = [];
    for (const i of service.instances) {
      const r = instanceRecovery(i, service);
      instances.set(i.name, r);
      parts.push(r);
      const list = byZone.get(i.zone) ?? [];
      list.push(r);
      byZone.set(i.zone, list);
    }
    const own = serviceOwn(service);
    partial.push(...servicePartials(service));
    services.set(service.name, worst([own, ...parts]));
  }

  const zones = new Map<string, Recovery>();
  const zoneNames = [...new Set([...byZone.keys(), ...snapshot.zones.map((z) => z.zone)])].sort();
  for (const zone of zoneNames) {
    const facts = snapshot.zones.find((z) => z.zone === zone);
    const own: Recovery = { state: "healthy", reasons: [], causes: [] };
    if (facts !== undefined && facts.share < 1) {
      const how = `${facts.phase ?? "shifted"}: keeps ${Math.round(facts.share * 100)}% of its traffic${facts.reason ? ` (${facts.reason})` : ""}`;
      add(own, "degraded", { code: "zone-shifted", message: `zone ${zone} ${how}` });
      if (facts.share > 0) {
        partial.push({ kind: "half-shifted-zone", zone, detail: `zone ${zone} is half-shifted: ${how}` });
      }
    }
    const members = byZone.get(zone) ?? [];
    zones.set(zone, worst([own, ...members]));
  }

  const fleetParts: Recovery[] = [
    ...services.values(),
    // A zone's instances are already in their services; only its own shift adds to the fleet.
    ...[...zones.values()].map(zoneOnly),
  ];
  return { instances, services, zones, fleet: worst(fleetParts), partial };
}

/** One instance's state. */
export function instanceRecovery(i: InstanceFacts, service: Pick<ServiceFacts, "gate">): Recovery {
  const r: Recovery = { state: "healthy", reasons: [], causes: [] };
  const ready = i.status === "ready";
  const open = i.openIncident;
  if (open !== null) {
    if (open.mitigatedAt !== null && ready) {
      add(r, "recovered-unverified", {
        code: "mitigated",
        message: `${i.name}: incident #${open.id} mitigated, not verified yet`,
      });
      for (const blocking of service.gate.blocking) {
        add(r, "recovered-unverified", { code: "gate-blocked", message: `${i.name}: waits for ${blocking}` });
      }
    } else if (ready || !NO_ACTION_UNDER_WAY.has(i.status)) {
      add(r, "recovering", {
        code: "action-started",
        message: `${i.name}: recovering from incident #${open.id} (${i.status}: ${i.statusReason})`,
      });
    } else {
      add(r, "failing", {
        code: "incident-open",
        message: `${i.name}: ${i.status}, incident #${open.id} open, no action under way (${i.statusReason})`,
      });
    }
  } else if (!ready) {
    add(r, "degraded", { code: "not-ready", message: `${i.name}: ${i.status} (${i.statusReason})` });
  }
  for (const d of i.drift) add(r, "degraded", { code: "drift", message: `${i.name} ${describeDrift(d)}` });
  if (r.state === "healthy" && i.recentlyVerified !== null) {
    add(r, "verified", {
      code: "verified",
      message: `${i.name}: incident #${i.recentlyVerified.id} verified`,
    });
  }
  return r;
}

/** What belongs to the service itself: its invariants, rollbacks, replicas, releases. */
function serviceOwn(s: ServiceFacts): Recovery {
  const r: Recovery = { state: "healthy", reasons: [], causes: [] };
  for (const b of s.invariants.broken) {
    add(r, "failing", { code: "invariant-broken", message: `${s.name}: invariant broken: ${b.detail}` });
  }
  if (s.invariants.broken.length === 0 && !s.invariants.checked) {
    add(r, "degraded", {
      code: "invariant-unchecked",
      message: `${s.name}: security invariants not checked yet`,
    });
  }
  for (const incident of s.openIncidents) {
    if (incident.kind === "invariant-broken") continue; // told above, from the live verdict
    if (incident.mitigatedAt === null) {
      add(r, "recovering", {
        code: "rollback",
        message: `${s.name}: ${incident.detail} (incident #${incident.id})`,
      });
    } else {
      add(r, "recovered-unverified", {
        code: "mitigated",
        message: `${s.name}: incident #${incident.id} (${incident.kind}) mitigated, not verified yet`,
      });
      for (const blocking of s.gate.blocking) {
        add(r, "recovered-unverified", { code: "gate-blocked", message: `${s.name}: waits for ${blocking}` });
      }
    }
  }
  if (s.runningReleases.length > 1) {
    add(r, "degraded", {
      code: "mixed-releases",
      message: `${s.name}: mixed releases running: ${s.runningReleases.join(", ")}`,
    });
  }
  if (s.ready < s.replicas) {
    add(r, "degraded", {
      code: "ready-below-replicas",
      message: `${s.name}: ${s.ready} of ${s.replicas} instances ready`,
    });
  }
  if (r.state === "healthy" && s.recentlyVerified.length > 0) {
    add(r, "verified", {
      code: "verified",
      message: `${s.name}: incident #${s.recentlyVerified[0]!.id} (${s.recentlyVerified[0]!.kind}) verified`,
    });
  }
  return r;
}

/** The service's partial findings: drift by kind, mixed releases, ready below replicas. */
function servicePartials(s: ServiceFacts): PartialFinding[] {
  const found: PartialFinding[] = [];
  /** A finding of `kind` naming the instances with drift of kind `drift`, when there are any. */
  const drifted = (kind: PartialKind, drift: Drift["kind"]) => {
    const instances = s.instances.filter((i) => i.drift.some((d) => d.kind === drift));
    if (instances.length === 0) return;
    found.push({
      kind,
      service: s.name,
      instances: instances.map((i) => i.name),
      detail: instances
        .map((i) => `${i.name} ${describeDrift(i.drift.find((d) => d.kind === drift)!)}`)
        .join("; "),
    });
  };
  drifted("old-config", "config");
  drifted("old-secrets", "secrets");
  drifted("old-config", "unknown");
  if (s.runningReleases.length > 1) {
    found.push({
      kind: "mixed-releases",
      service: s.name,
      instances: s.instances.filter((i) => i.release !== null && i.status !== "exited").map((i) => i.name),
      detail: `${s.name} runs ${s.runningReleases.join(" and ")} at once`,
    });
  } else {
    drifted("old-release", "release");
  }
  if (s.ready < s.replicas) {
    const notReady = s.instances.filter((i) => i.status !== "ready").map((i) => i.name);
    found.push({
      kind: "ready-below-replicas",
      service: s.name,
      instances: notReady,
      detail: `${s.name}: ${s.ready} of ${s.replicas} instances ready${notReady.length > 0 ? ` (${notReady.join(", ")} not)` : ""}`,
    });
  }
  return found;
}

/** The worst state of `parts`; reasons of every part that is not healthy, without repeats. */
export function worst(parts: Recovery[]): Recovery {
  const out: Recovery = { state: "healthy", reasons: [], causes: [] };
  for (const p of parts) {
    if (SEVERITY[p.state] > SEVERITY[out.state]) out.state = p.state;
    for (const c of p.causes) {
      if (out.causes.some((o) => o.message === c.message)) continue;
      out.causes.push(c);
      out.reasons.push(c.message);
    }
  }
  return out;
}

/** A zone's own causes only (its instances are already counted in their services). */
function zoneOnly(r: Recovery): Recovery {
  const causes = r.causes.filter((c) => c.code === "zone-shifted");
  return { state: causes.length > 0 ? "degraded" : "healthy", reasons: causes.map((c) => c.message), causes };
}

/** Raise `r` to `state` if worse, and record why. */
function add(r: Recovery, state: RecoveryStateName, cause: RecoveryCause): void {
  if (SEVERITY[state] > SEVERITY[r.state]) r.state = state;
  r.causes.push(cause);
  r.reasons.push(cause.message);
}

/** True when `a` is worse than `b`. */
export function worseThan(a: RecoveryStateName, b: RecoveryStateName): boolean {
  return SEVERITY[a] > SEVERITY[b];
}
