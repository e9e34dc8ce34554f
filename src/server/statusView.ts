/**
 * The status document served by `GET /v1/status` and printed by `homeostat status`. Derived, never
 * stored: service state is computed from instance states each time (as Argo derives a rollout's
 * phase), so it cannot drift from what is observed.
 */

import type { SpecStatus } from "../controller/specHistory.ts";
import { staticStability } from "../decide/failover/staticStability.ts";
import type { ServiceCapacity } from "../decide/failover/types.ts";
import { percent, rps } from "../decide/failover/words.ts";
import type { SlotState } from "../decide/slotState.ts";
import type { BankTarget, ObservedInstance } from "../decide/snapshot.ts";
import {
  type FleetSpec,
  instanceName,
  type ProbeSpec,
  placementOf,
  type ServiceSpec,
} from "../spec/model.ts";
import { startupBudgetMs } from "../spec/probes.ts";
import type { IncidentRecord } from "../store/index.ts";
import type { DataPlaneStatus } from "../traffic/dataPlaneControl.ts";
import type { Drift } from "../verify/convergence.ts";
import type { InvariantVerdict } from "../verify/invariants.ts";
import {
  deriveRecovery,
  type IncidentFacts,
  type PartialFinding,
  type Recovery,
  type ServiceFacts,
  VERIFIED_DISPLAY_MS,
  type ZoneFacts,
} from "../verify/recoveryState.ts";
import type { GateVerdict } from "../verify/verificationGate.ts";

export type InstanceStatusState =
  | "ready"
  | "starting"
  | "unready"
  | "unhealthy"
  | "exited"
  | "stopped"
  | "stopping";

export interface InstanceStatus {
  name: string;
  service: string;
  slot: number;
  port: number;
  zone: string;
  host: string;
  release: string | null;
  state: InstanceStatusState;
  reason: string;
  since: number | null;
  pid: number | null;
  startedAt: number | null;
  consecutiveFailures: number;
  crashLoop: boolean;
  nextStartAt: number | null;
  openIncident: number | null;
  /** Recovery state (healthy … verified) with reasons; see docs/incidents.md. */
  recovery: RecoveryView;
}

/** A part's recovery state as the status document carries it. */
export interface RecoveryView {
  state: Recovery["state"];
  reasons: string[];
  /** The reasons' stable codes, in the same order. */
  codes: string[];
}

export type ServiceState = "healthy" | "degraded" | "down" | "rolling" | "starting";

export interface ServiceStatus {
  name: string;
  release: string;
  /** Every release that has a running instance; more than one means a mixed-version fleet. */
  runningReleases: string[];
  replicas: number;
  ready: number;
  state: ServiceState;
  /** Why the service is not plainly healthy, e.g. "mixed releases v1, v2", "1 of 3 ready". */
  warnings: string[];
  instances: InstanceStatus[];
  /** The worst of its instances' and its own (invariants, rollbacks, replicas) recovery state. */
  recovery: RecoveryView;
  /** The verification gate now: what a recovery of this service waits for. */
  gate?: { passed: boolean; converged: string; slo: string; invariants: string; blocking: string[] };
  /** The probes in force, and whether they are defaults (the fleet file declares none). */
  probes?: ProbesInForce;
}

/**
 * A service's probes as they run: each kind in words ("tcp :port every 1s, unready after 3
 * failures"), and `defaults` when Homeostat chose them because the fleet file declares none:
 * `tcp` (a TCP connect on the instance port) or `process` (no probe: judged by its process).
 */
export interface ProbesInForce {
  defaults: "tcp" | "process" | null;
  startup: string | null;
  readiness: string | null;
  liveness: string | null;
  /** How long an instance may take to become ready before it is reported; null: ready once running. */
  startupBudgetMs: number | null;
}

/** The probes in force for `service` (see ProbesInForce). */
export function probesInForce(service: ServiceSpec): ProbesInForce {
  const words = (probe: ProbeSpec | undefined, verdict: string): string | null => {
    if (probe === undefined) return null;
    const check = probe.check;
    const target =
      check.kind === "exec"
        ? `exec ${[check.command, ...check.args].join(" ")}`
        : `${check.kind === "http" ? `http ${check.path}` : "tcp"} :${check.port ?? "port"}`;
    return `${target} every ${probe.intervalMs}ms, ${verdict} after ${probe.failureThreshold} failures`;
  };
  return {
    defaults: service.probeDefaults ?? null,
    startup: words(service.probes.startup, "unhealthy"),
    readiness: words(service.probes.readiness, "unready"),
    liveness: words(service.probes.liveness, "restarted"),
    startupBudgetMs: startupBudgetMs(service.probes),
  };
}

/** What losing one zone would do now, at current load, with no scale-up and no shedding (N−1). */
export interface DomainStatus {
  zone: string;
  /** The busiest service's survivors' utilization if this zone were lost; null: a service with load would have no survivor. */
  survivorPeakUtilization: number | null;
  survivesLoss: boolean;
  /** Spare requests/s under the ceiling the tightest service's survivors would have (negative: short by that much). */
  headroomRps: number;
}

/** Static stability: can the fleet lose any one zone at current load without passing a ceiling? */
export interface StaticStabilityStatus {
  /** True when every zone's loss leaves the survivors at or under their ceiling (also when nothing could be checked: see `skipped`). */
  ok: boolean;
  /** Present when `ok` is false: which zones the fleet cannot lose, and by how much. */
  warning?: string;
  /** Services left out of the check, and why (no declared capacity). */
  skipped: { service: string; reason: string }[];
}

export interface StatusDocument {
  fleet: { name: string; file: string };
  /** The data plane serving the service ports (absent when no service has a `port`). */
  dataPlane?: DataPlaneStatus;
  controller: { pid: number; startedAt: number; apiPort: number; stateDir: string; now: number };
  services: ServiceStatus[];
  openIncidents: number;
  /** Headroom per zone, from the declared capacity and the measured load; empty without capacity data. */
  domains: DomainStatus[];
  staticStability: StaticStabilityStatus;
  /** Per zone: the worst recovery state of its instances, and its own (a shifted zone). */
  zones: { zone: string; recovery: RecoveryView }[];
  /** The fleet's recovery state: the worst of every service and zone. */
  recovery: RecoveryView;
  /** Partial recoveries, named: mixed releases, old config or secrets, half-shifted zones, missing replicas. */
  partial: PartialFinding[];
  /** The security-invariant verdict of each service that declares some (the controller adds it). */
  invariants?: Record<string, InvariantVerdict>;
  /**
   * The applied spec revision and whether the fleet file on disk still matches it (drift; the
   * controller adds it, absent before any revision). Instances differing from the spec are in `partial`.
   */
  spec?: SpecStatus;
}

/** What the recovery states are derived from, besides the instances (the controller gathers it). */
export interface StatusRecoveryInputs {
  /** The verification gate of each service now. */
  gates: ReadonlyMap<string, GateVerdict>;
  /** How each running instance differs from what it should run (absent or empty: converged). */
  drift: ReadonlyMap<string, Drift[]>;
  invariants: ReadonlyMap<string, InvariantVerdict>;
  /** Incidents verified within the display window (closed, `verifiedAt` set). */
  recentlyVerified: readonly IncidentRecord[];
  /** Zones and how much of their traffic they keep (failover). */
  zones: readonly ZoneFacts[];
}

/**
 * The capacity picture the static-stability check works on: per service, declared capacity and
 * measured load per instance (the controller's `capacityPicture` has this shape).
 */
export interface StatusCapacityInput {
  services: readonly ServiceCapacity[];
  zones: readonly string[];
  skipped: readonly { service: string; reason: string }[];
}

export interface StatusInputs {
  fleet: FleetSpec;
  /** Which slots should run which release (both banks during a deploy); absent: slots 0..replicas-1. */
  targets?: ReadonlyMap<string, readonly BankTarget[]>;
  /** The release each service runs as its own (deployed), when known. */
  activeRelease?: (service: string) => string;
  instances: ObservedInstance[];
  pids: ReadonlyMap<string, number | null>;
  slots: SlotState[];
  busy: string[];
  openIncidents: IncidentRecord[];
  controller: StatusDocument["controller"];
  /** Declared capacity and measured load; absent: `domains` is empty and nothing is checked. */
  capacity?: StatusCapacityInput;
  /** Gate verdicts, drift, invariants, recent verifications, zone shifts; absent: none known. */
  recovery?: StatusRecoveryInputs;
}

export function buildStatus(inputs: StatusInputs): StatusDocument {
  const observed = new Map(inputs.instances.map((i) => [i.name, i]));
  const slots = new Map(inputs.slots.map((s) => [s.instance, s]));
  const busy = new Set(inputs.busy);
  const incidentByInstance = new Map(inputs.openIncidents.map((i) => [i.instance, i.id]));
  const services = inputs.fleet.services.map((service): ServiceStatus => {
    const instances: InstanceStatus[] = [];
    const wantedSlots = (
      inputs.targets?.get(service.name) ?? [{ slots: Array.from({ length: service.replicas }, (_, i) => i) }]
    ).flatMap((b) => [...b.slots]);
    // Instances no bank wants any more still show until they are gone (they are being stopped).
    const leaving = inputs.instances
      .filter((i) => i.service === service.name && !wantedSlots.includes(i.slot) && i.runtime === "running")
      .map((i) => i.slot);
    const shownSlots = [...new Set([...wantedSlots, ...leaving])].sort((a, b) => a - b);
    const activeRelease = inputs.activeRelease?.(service.name) ?? service.release;
    for (const slot of shownSlots) {
      const name = instanceName(service.name, slot);
      const o = observed.get(name);
      const s = slots.get(name);
      const place = placementOf(service, slot);
      const { state, reason, since } = instanceState(o, busy.has(name), s, inputs.controller.now);
      instances.push({
        name,
        service: service.name,
        slot,
        port: service.basePort + slot,
        zone: place.zone,
        host: place.host,
        release: o?.release ?? null,
        state,
        reason,
        since,
        pid: o?.runtime === "running" ? (inputs.pids.get(name) ?? null) : null,
        startedAt: o?.startedAt ?? null,
        consecutiveFailures: s?.consecutiveFailures ?? 0,
        crashLoop: s?.crashLoop ?? false,
        nextStartAt: s?.nextStartAt != null && s.nextStartAt > inputs.controller.now ? s.nextStartAt : null,
        openIncident: incidentByInstance.get(name) ?? null,
        recovery: { state: "healthy", reasons: [], codes: [] },
      });
    }
    const ready = instances.filter((i) => i.state === "ready" && i.release === activeRelease).length;
    const runningReleases = [
      ...new Set(
        instances
          .filter((i) => i.state !== "exited" && i.state !== "stopped")
          .flatMap((i) => i.release ?? []),
      ),
    ].sort();
    const warnings: string[] = [];
    if (runningReleases.length > 1) warnings.push(`mixed releases running: ${runningReleases.join(", ")}`);
    if (ready < service.replicas) warnings.push(`${ready} of ${service.replicas} instances ready`);
    const looping = instances.filter((i) => i.crashLoop).map((i) => i.name);
    if (looping.length > 0) warnings.push(`crash-looping: ${looping.join(", ")}`);
    let state: ServiceState;
    if (ready >= service.replicas && runningReleases.length <= 1) state = "healthy";
    else if (runningReleases.length > 1) state = "rolling";
    else if (ready === 0 && instances.every((i) => i.state === "starting")) state = "starting";
    else if (ready === 0) state = "down";
    else state = "degraded";
    return {
      name: service.name,
      release: activeRelease,
      runningReleases,
      replicas: service.replicas,
      ready,
      state,
      warnings,
      instances,
      probes: probesInForce(service),
      recovery: { state: "healthy", reasons: [], codes: [] },
    };
  });
  const recovery = recoveryOf(inputs, services);
  return {
    fleet: { name: inputs.fleet.name, file: inputs.fleet.file },
    controller: inputs.controller,
    services: recovery.services,
    openIncidents: inputs.openIncidents.length,
    ...zoneHeadroom(inputs.capacity),
    zones: recovery.zones,
    recovery: recovery.fleet,
    partial: recovery.partial,
  };
}

/** Recovery states under which a service may still be called healthy. */
const QUIET: ReadonlySet<string> = new Set(["healthy", "verified"]);

/** The recovery states of every part, from the status built so far and the recovery inputs. */
function recoveryOf(
  inputs: StatusInputs,
  services: ServiceStatus[],
): {
  services: ServiceStatus[];
  zones: StatusDocument["zones"];
  fleet: RecoveryView;
  partial: PartialFinding[];
} {
  const r = inputs.recovery;
  const now = inputs.controller.now;
  const facts = (i: IncidentRecord): IncidentFacts => ({
    id: i.id,
    kind: i.kind,
    status: i.status,
    detectedAt: i.detectedAt,
    actionStartedAt: i.actionStartedAt,
    mitigatedAt: i.mitigatedAt,
    verifiedAt: i.verifiedAt ?? null,
    detail: i.detail,
  });
  const recent = (r?.recentlyVerified ?? []).filter(
    (i) => i.verifiedAt != null && now - i.verifiedAt <= VERIFIED_DISPLAY_MS,
  );
  const open = inputs.openIncidents;
  const instanceNames = new Set(services.flatMap((s) => s.instances.map((i) => i.name)));
  const noGate: GateVerdict = {
    passed: true,
    converged: { ok: true, detail: "" },
    slo: { ok: true, detail: "" },
    invariants: { ok: true, detail: "" },
    blocking: [],
  };
  const serviceFacts: ServiceFacts[] = services.map((s) => ({
    name: s.name,
    replicas: s.replicas,
    ready: s.ready,
    runningReleases: s.runningReleases,
    instances: s.instances.map((i) => {
      const openOne = open.find((o) => o.instance === i.name);
      const verified = recent.find((o) => o.instance === i.name);
      return {
        name: i.name,
        zone: i.zone,
        status: i.state,
        statusReason: i.reason,
        release: i.release,
        drift: r?.drift.get(i.name) ?? [],
        openIncident: openOne ? facts(openOne) : null,
        recentlyVerified: verified ? facts(verified) : null,
      };
    }),
    // Service-level incidents (rollbacks, invariants) are those not on one of its instances.
    openIncidents: open.filter((o) => o.service === s.name && !instanceNames.has(o.instance)).map(facts),
    recentlyVerified: recent.filter((o) => o.service === s.name && !instanceNames.has(o.instance)).map(facts),
    invariants: r?.invariants.get(s.name) ?? { ok: true, checked: true, broken: [], lastCheckedAt: null },
    gate: r?.gates.get(s.name) ?? noGate,
  }));
  const report = deriveRecovery({ services: serviceFacts, zones: r?.zones ?? [] });
  const view = (x: Recovery | undefined): RecoveryView =>
    x === undefined
      ? { state: "healthy", reasons: [], codes: [] }
      : { state: x.state, reasons: x.reasons, codes: x.causes.map((c) => c.code) };
  return {
    services: services.map((s) => {
      const gate = r?.gates.get(s.name);
      return {
        ...s,
        instances: s.instances.map((i) => ({ ...i, recovery: view(report.instances.get(i.name)) })),
        // A partial recovery is never summed up as "healthy", in the old field either.
        state:
          s.state === "healthy" && !QUIET.has(report.services.get(s.name)?.state ?? "healthy")
            ? "degraded"
            : s.state,
        recovery: view(report.services.get(s.name)),
        ...(gate === undefined
          ? {}
          : {
              gate: {
                passed: gate.passed,
                converged: gate.converged.detail,
                slo: gate.slo.detail,
                invariants: gate.invariants.detail,
                blocking: gate.blocking,
              },
            }),
      };
    }),
    zones: [...report.zones].map(([zone, x]) => ({ zone, recovery: view(x) })),
    fleet: view(report.fleet),
    partial: report.partial,
  };
}

/** Headroom per zone and the N−1 verdict, from the capacity picture. */
export function zoneHeadroom(
  capacity: StatusCapacityInput | undefined,
): Pick<StatusDocument, "domains" | "staticStability"> {
  const skipped = [...(capacity?.skipped ?? [])];
  if (capacity === undefined || capacity.services.length === 0 || capacity.zones.length === 0) {
    return { domains: [], staticStability: { ok: true, skipped } };
  }
  const domains = staticStability(capacity.services, capacity.zones).map(
    (h): DomainStatus => ({
      zone: h.zone,
      // JSON has no Infinity: a lost zone that leaves a loaded service without survivors is null.
      survivorPeakUtilization: Number.isFinite(h.survivorPeakUtilization) ? h.survivorPeakUtilization : null,
      survivesLoss: h.survivesLoss,
      headroomRps: h.headroomRps,
    }),
  );
  const lost = domains.filter((d) => !d.survivesLoss);
  if (lost.length === 0) return { domains, staticStability: { ok: true, skipped } };
  const ceilings = [...new Set(capacity.services.map((s) => s.ceiling))];
  const ceiling = ceilings.length === 1 ? `their ceiling of ${percent(ceilings[0]!)}` : "their ceilings";
  const each = lost.map(
    (d) =>
      `${d.zone}: survivors at ${d.survivorPeakUtilization === null ? "∞ % (none left)" : percent(d.survivorPeakUtilization)}, short ${rps(-d.headroomRps)}`,
  );
  const names = lost.length === domains.length ? "any one zone" : lost.map((d) => d.zone).join(", ");
  return {
    domains,
    staticStability: {
      ok: false,
      warning: `the fleet cannot lose ${names} at current load (N−1) without pushing the survivors past ${ceiling} (${each.join("; ")})`,
      skipped,
    },
  };
}

function instanceState(
  o: ObservedInstance | undefined,
  busy: boolean,
  slot: SlotState | undefined,
  now: number,
): { state: InstanceStatusState; reason: string; since: number | null } {
  if (o === undefined || o.runtime === "absent") {
    return { state: busy ? "starting" : "stopped", reason: busy ? "starting" : "not started", since: null };
  }
  if (o.runtime === "exited") {
    const wait =
      slot?.nextStartAt != null && slot.nextStartAt > now
        ? `; next start in ${slot.nextStartAt - now}ms`
        : "";
    const why = slot?.crashLoop ? "crash-loop" : "exited";
    // A start that failed before any process ran says why (a held port names its holder).
    const cause = o.lastExit?.detail === undefined ? "" : `: ${o.lastExit.detail}`;
    return {
      state: busy ? "starting" : "exited",
      reason: `${why}${cause}${wait}`,
      since: o.lastExit?.at ?? null,
    };
  }
  if (busy) return { state: "stopping", reason: "being replaced", since: null };
  const health = o.health;
  if (health === null) return { state: "starting", reason: "no probe result yet", since: o.startedAt };
  return { state: health.state, reason: health.reason, since: health.since };
}
