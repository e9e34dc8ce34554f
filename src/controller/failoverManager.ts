/**
 * Zone failover, wired to the world: judges each zone's health every controller pass (instance
 * readiness, outlier ejections, zone probes over the data plane's path), runs the zone state
 * machine (automatic and manual evacuations, failback with hysteresis), pushes zone shares to the
 * balancer, and protects the survivors — spare-slot scale-up first, then shedding by criticality —
 * while any zone is shifted. Its state is saved on every change, so a restarted controller keeps a
 * zone evacuated instead of sending traffic back into it.
 */

import { domainHealth, type ZoneMember } from "../decide/failover/domainHealth.ts";
import { zonesToAvoid } from "../decide/failover/independence.ts";
import { staticStability } from "../decide/failover/staticStability.ts";
import {
  type Protection,
  type ProtectionInput,
  protectSurvivors,
  type SpareSlot,
} from "../decide/failover/survivorProtection.ts";
import type { DomainHealth } from "../decide/failover/types.ts";
import { duration, percent } from "../decide/failover/words.ts";
import {
  advanceZones,
  EMPTY_ZONE_CONTROL,
  requestFailback,
  type StepGate,
  startEvacuation,
  type ZoneControlState,
  type ZoneEvent,
  type ZoneShift,
  zoneShares,
} from "../decide/failover/zoneControl.ts";
import type { Reason, ReasonCode } from "../decide/reasons.ts";
import type { BankTarget, ObservedInstance } from "../decide/snapshot.ts";
import { HomeostatError } from "../errors.ts";
import type { Scheduler } from "../lib/scheduler.ts";
import type { ProbeResult } from "../observe/health.ts";
import type { ProbeFn } from "../observe/prober.ts";
import { ZoneProber, type ZoneProbeTarget } from "../observe/zoneProbe.ts";
import { type FleetSpec, instanceName, placementOf, type ServiceSpec } from "../spec/model.ts";
import type { StateStore } from "../store/index.ts";
import type { DataPlaneControl } from "../traffic/dataPlaneControl.ts";
import { endpointOf } from "../traffic/endpointOf.ts";
import type { AutomationBrakes } from "./brakes.ts";
import { capacityPicture } from "./capacityPicture.ts";
import { type CrashBoundary, crashPoint, crashPointAfter } from "./crashPoints.ts";

/** Demand is measured over this window: short enough to follow a zone loss within a few seconds. */
export const DEMAND_WINDOW_MS = 5_000;
/** How often static stability (can the fleet lose any one zone?) is re-judged. */
const STATIC_STABILITY_EVERY_MS = 5_000;
/** A shed share that moved less than this is not announced again (it is recomputed every pass). */
const SHED_ANNOUNCE_STEP = 0.05;

export interface FailoverManagerOptions {
  fleet: FleetSpec;
  store: StateStore;
  dataPlane?: DataPlaneControl;
  note: (type: string, why: Reason, data: Record<string, unknown>) => void;
  now?: () => number;
  /** Timers of the zone probes (default: real ones; the simulation's virtual clock). */
  scheduler?: Scheduler;
  /** What runs a zone probe's check (default: over the network). */
  probe?: ProbeFn;
  /** Automation brakes, asked before every automatic evacuation (absent: nothing is ever held). */
  brakes?: Pick<AutomationBrakes, "automated">;
}

/** What the controller knows at one pass. */
export interface FleetView {
  instances: readonly ObservedInstance[];
  busy: ReadonlySet<string>;
  /** The release manager's bank targets, before failover adds its spare slots. */
  targets: ReadonlyMap<string, readonly BankTarget[]>;
  /**
   * True while instances adopted from a previous controller have no health verdict yet: their
   * capacity is unknown, not absent, so survivor protection keeps what it had (no scale-up or
   * scale-down on a picture that is not there yet).
   */
  settling?: boolean;
}

interface SavedState {
  zones: ZoneControlState;
  added: Record<string, number[]>;
}

export interface FailoverStatus {
  automatic: boolean;
  zones: (DomainHealth & { share: number; shift: ZoneShift | null })[];
  /** Per service: demand, serving capacity, shedding and added instances while a zone is shifted. */
  services: {
    service: string;
    demandRps: number;
    servingCapacityRps: number;
    projectedUtilization: number;
    ceiling: number;
    shed: { sheddable: number; default: number };
    addedInstances: string[];
    reasons: string[];
  }[];
  lastAutomatedAt: number | null;
}

export class FailoverManager {
  #fleet: FleetSpec;
  readonly #store: StateStore;
  readonly #dataPlane: DataPlaneControl | undefined;
  readonly #note: FailoverManagerOptions["note"];
  readonly #brakes: Pick<AutomationBrakes, "automated"> | undefined;
  readonly #now: () => number;
  readonly #prober: ZoneProber | null;
  #zoneNames: string[];
  #zones: ZoneControlState = EMPTY_ZONE_CONTROL;
  /** Service → spare slots started for the failover in effect. */
  #added = new Map<string, number[]>();
  #health: DomainHealth[] = [];
  #protection = new Map<string, Protection>();
  #announcedShed = new Map<string, { sheddable: number; default: number }>();
  #appliedShares = "";
  /** Instances seen ready since this controller started: only they count for zone health. */
  readonly #seenReady = new Set<string>();
  #lastView: FleetView | null = null;
  /** Instances the data plane has ejected, read once per pass. */
  #ejected: ReadonlySet<string> = new Set();
  #readyAnnounced = new Set<string>();
  #stabilityCheckedAt = Number.NEGATIVE_INFINITY;
  /** Since when every zone has been judged healthy without a break; null while one is not. */
  #allHealthySince: number | null = null;
  /** Zones whose loss the fleet could not take at the last check. */
  #cannotLose = new Set<string>();
  /** `fleet.services` by name, for the fleet it was built from: a pass looks one up per instance. */
  #servicesByName: { of: FleetSpec; byName: Map<string, ServiceSpec> } | null = null;
  /**
   * Each instance's zone-probe target, kept while its service spec and release stay the same:
   * building 10,000 of them every pass was a large part of a pass (bounded by the fleet's slots).
   */
  readonly #zoneTargets = new Map<string, { of: ServiceSpec; release: string; target: ZoneProbeTarget }>();
  /** A view's instances grouped by service, for the view they came from (one walk, not one per service). */
  #grouped: { of: readonly ObservedInstance[]; byService: Map<string, ObservedInstance[]> } | null = null;

  constructor(options: FailoverManagerOptions) {
    this.#fleet = options.fleet;
    this.#store = options.store;
    this.#dataPlane = options.dataPlane;
    this.#note = options.note;
    this.#brakes = options.brakes;
    this.#now = options.now ?? (options.scheduler ? () => options.scheduler!.now() : Date.now);
    this.#prober = options.dataPlane
      ? new ZoneProber({
          faults: options.dataPlane.faults,
          now: this.#now,
          ...(options.scheduler ? { scheduler: options.scheduler } : {}),
          ...(options.probe ? { probe: options.probe } : {}),
        })
      : null;
    this.#zoneNames = [
      ...new Set(options.fleet.services.flatMap((s) => s.placement.map((p) => p.zone))),
    ].sort();
  }

  /**
   * Take a newly applied spec (`homeostat apply`): failover settings, services and their zones
   * are read from it from the next pass on. Apply is refused while a failover is in effect.
   */
  setFleet(next: FleetSpec): void {
    this.#fleet = next;
    this.#zoneTargets.clear();
    this.#zoneNames = [...new Set(next.services.flatMap((s) => s.placement.map((p) => p.zone)))].sort();
  }

  /** Resume from the saved state (zones stay evacuated across controller restarts). */
  init(): void {
    const saved = this.#store.failoverState();
    if (saved === null) return;
    try {
      const parsed = JSON.parse(saved) as SavedState;
      const known = new Set(this.#zoneNames);
      this.#zones = {
        ...EMPTY_ZONE_CONTROL,
        ...parsed.zones,
        shifts: parsed.zones.shifts.filter((shift) => known.has(shift.zone)),
        refused: {},
        downSince: {},
      };
      for (const [service, slots] of Object.entries(parsed.added ?? {})) {
        const spec = this.#fleet.services.find((s) => s.name === service);
        if (spec !== undefined)
          this.#added.set(
            service,
            slots.filter((slot) => slot < 2 * spec.replicas),
          );
      }
      if (this.#zones.shifts.length > 0) {
        this.#note(
          "failover.resumed",
          {
            code: "failover-step",
            message: `resuming after a restart: ${this.#zones.shifts.map((s) => `${s.zone} at ${percent(s.share)}`).join(", ")}`,
          },
          { zones: zoneShares(this.#zones) },
        );
      }
    } catch {
      this.#note(
        "failover.state-discarded",
        {
          code: "failover-step",
          message: "the saved failover state could not be read; starting with every zone in",
        },
        {},
      );
    }
  }

  /** `targets` with the spare slots the failover added (they run the active release). */
  extend(targets: ReadonlyMap<string, readonly BankTarget[]>): Map<string, BankTarget[]> {
    const out = new Map<string, BankTarget[]>();
    for (const [service, banks] of targets) {
      const added = this.#added.get(service);
      if (added === undefined || added.length === 0 || banks.length !== 1) {
        out.set(service, [...banks]);
        continue;
      }
      const only = banks[0]!;
      out.set(service, [only, { bank: only.bank === 0 ? 1 : 0, release: only.release, slots: [...added] }]);
    }
    return out;
  }

  /** Why `service`'s spare bank is not free for a deploy, or null. */
  spareBankHeld(service: string): string | null {
    const added = this.#added.get(service) ?? [];
    if (added.length === 0) return null;
    return `a zone failover added ${added.map((slot) => instanceName(service, slot)).join(", ")} in ${service}'s spare bank; deploy once failback has completed`;
  }

  /** One pass: health, zone state machine, shares, survivor protection; saves any change. */
  tick(view: FleetView): void {
    this.#lastView = view;
    const now = this.#now();
    const before = this.#serialized();
    this.#ejected = this.#readEjected();
    this.#probeZones(view);
    this.#health = this.#judgeZones(view);
    if (this.#health.some((zone) => zone.state !== "healthy")) this.#allHealthySince = null;
    else this.#allHealthySince ??= now;
    // A controller that has just started moves no zone until its adopted instances are judged
    // (bounded by their startup budget) and the data plane has reported its traffic once: on
    // that picture the survivors look empty (every step would wait for capacity that is not
    // missing, until the wait runs out, MAX_HOLD_STEPS) or the demand looks like none (the last
    // step would go ahead before the capacity it needs is added, and default traffic be shed).
    // The saved shares stay in force meanwhile.
    const result =
      view.settling === true || this.#noDemandYet()
        ? { state: this.#zones, events: [] }
        : advanceZones(this.#zones, {
            now,
            zones: this.#health,
            spec: this.#fleet.failover,
            gate: this.#stepGate(view),
            ...(this.#brakes ? { brake: this.#brake(view) } : {}),
          });
    this.#zones = result.state;
    this.#announce(result.events);
    this.#applyShares();
    this.#protect(view);
    this.#checkStaticStability(view, now);
    const after = this.#serialized();
    if (after !== before) {
      this.#store.saveFailoverState(after, now);
      this.#crashPoints("zones.step-saved", "zones.step-pushed");
    }
  }

  /**
   * True when no pass is needed to keep failover in time: every zone judged healthy, nothing
   * shifted or being confirmed down, no capacity added or protection in force, no fault rule, no
   * ejection by the data plane, and no zone probe of its own running or failing (see
   * `Controller.quiet`). Zone probes that run on their own are started by passes, so they keep
   * passes at the loop's full rate.
   */
  quiet(): boolean {
    const zones = this.#zones;
    if (zones.shifts.length > 0 || Object.keys(zones.downSince).length > 0) return false;
    if (this.#protection.size > 0 || this.#health.some((zone) => zone.state !== "healthy")) return false;
    for (const slots of this.#added.values()) if (slots.length > 0) return false;
    if (this.#dataPlane?.faults.isEmpty() === false || this.#readEjected().size > 0) return false;
    return this.#prober?.quiet() ?? true;
  }

  /** True while a data-plane process has not reported its traffic to this controller yet. */
  #noDemandYet(): boolean {
    const status = this.#dataPlane?.status();
    return status?.mode === "process" && status.lastReportAt === null;
  }

  /** Crash points after a saved change: right away, and once the data plane serves its shares. */
  #crashPoints(saved: CrashBoundary, pushed: CrashBoundary): void {
    crashPoint(saved);
    const dataPlane = this.#dataPlane;
    if (dataPlane !== undefined) crashPointAfter(pushed, () => dataPlane.settled());
  }

  /**
   * A person evacuates `domain`. The safety rules apply; `override` (with `reason`) steps over
   * one-at-a-time and min-interval, never over never-evacuate-all.
   *
   * @throws HomeostatError HS_NOT_FOUND (no such zone), HS_CONFLICT (already shifted),
   *   HS_FAILOVER_REFUSED (a safety rule), HS_BAD_REQUEST (override without a reason)
   */
  failover(domain: string, request: { reason: string; override: boolean }): ZoneShift {
    this.#knownZone(domain);
    const why = request.reason.trim();
    if (request.override && why === "") {
      throw new HomeostatError("HS_BAD_REQUEST", "an override needs a reason (it is audited)");
    }
    const now = this.#now();
    const outcome = startEvacuation(this.#zones, {
      domain,
      zones: this.#health.length > 0 ? this.#health : this.#zoneNames.map(unjudged),
      now,
      spec: this.#fleet.failover,
      automated: false,
      why: why === "" ? "requested by an operator" : `operator: ${why}`,
      ...(request.override ? { override: { reason: why } } : {}),
      ...(this.#lastView !== null ? { gate: this.#stepGate(this.#lastView) } : {}),
    });
    if (!outcome.decision.allowed) {
      throw new HomeostatError(
        "HS_FAILOVER_REFUSED",
        `failover of ${domain} refused: ${outcome.decision.reason}`,
        {
          details: { zone: domain, rule: outcome.decision.rule ?? null, reason: outcome.decision.reason },
        },
      );
    }
    this.#zones = outcome.state;
    this.#announce(outcome.events);
    this.#applyShares();
    if (this.#lastView !== null) this.#protect(this.#lastView);
    this.#store.saveFailoverState(this.#serialized(), now);
    this.#crashPoints("failover.saved", "failover.pushed");
    return this.#zones.shifts.find((s) => s.zone === domain)!;
  }

  /**
   * A person asks for `domain`'s traffic back: it returns through the failback hysteresis.
   * @throws HomeostatError HS_NOT_FOUND when the zone is unknown or not shifted
   */
  failback(domain: string, request: { reason: string }): ZoneShift {
    this.#knownZone(domain);
    const now = this.#now();
    const why =
      request.reason.trim() === "" ? "requested by an operator" : `operator: ${request.reason.trim()}`;
    const outcome = requestFailback(this.#zones, { domain, now, why });
    this.#zones = outcome.state;
    this.#announce(outcome.events);
    this.#store.saveFailoverState(this.#serialized(), now);
    crashPoint("failback.saved");
    return this.#zones.shifts.find((s) => s.zone === domain)!;
  }

  /** Everything the API and the CLI show about zones now. */
  status(): FailoverStatus {
    const shifts = new Map(this.#zones.shifts.map((s) => [s.zone, s]));
    const health = this.#health.length > 0 ? this.#health : this.#zoneNames.map(unjudged);
    return {
      automatic: this.#fleet.failover.automatic,
      zones: health.map((zone) => ({
        ...zone,
        share: shifts.get(zone.zone)?.share ?? 1,
        shift: shifts.get(zone.zone) ?? null,
      })),
      services: [...this.#protection].map(([service, p]) => {
        const spec = this.#service(service);
        return {
          service,
          demandRps: round(p.demandRps),
          servingCapacityRps: round(p.servingCapacityRps),
          projectedUtilization: round(p.projectedUtilization),
          ceiling: spec.capacity.targetUtilization,
          shed: p.shed,
          addedInstances: (this.#added.get(service) ?? []).map((slot) => instanceName(service, slot)),
          reasons: p.reasons,
        };
      }),
      lastAutomatedAt: this.#zones.lastAutomatedAt,
    };
  }

  stop(): void {
    this.#prober?.stop();
  }

  /**
   * Continuous N−1 check: announce when the fleet can no longer lose a zone at current load
   * without pushing the survivors past their ceiling, and when it can again.
   */
  #checkStaticStability(view: FleetView, now: number): void {
    // Not on the picture of a controller that has just started: adopted instances not judged
    // yet would count as no capacity, and every zone would look impossible to lose.
    if (view.settling === true || now - this.#stabilityCheckedAt < STATIC_STABILITY_EVERY_MS) return;
    this.#stabilityCheckedAt = now;
    const picture = capacityPicture(this.#fleet, view.instances, view.busy, this.#dataPlane?.stats);
    if (picture.services.length === 0 || picture.zones.length < 2) return;
    for (const headroom of staticStability(picture.services, picture.zones)) {
      const zone = headroom.zone;
      if (!headroom.survivesLoss && !this.#cannotLose.has(zone)) {
        this.#cannotLose.add(zone);
        this.#note(
          "capacity.n-minus-1-lost",
          {
            code: "static-stability-lost",
            message: `the fleet cannot lose ${zone} at current load: the survivors would run at ${percent(headroom.survivorPeakUtilization)}, above their ceiling (short ${Math.round(-headroom.headroomRps * 100) / 100} rps)`,
          },
          { ...headroom },
        );
      } else if (headroom.survivesLoss && this.#cannotLose.delete(zone)) {
        this.#note(
          "capacity.n-minus-1-restored",
          {
            code: "static-stability-restored",
            message: `the fleet can lose ${zone} again: the survivors would run at ${percent(headroom.survivorPeakUtilization)}`,
          },
          { ...headroom },
        );
      }
    }
  }

  /** A result of an instance's own probe: the zone probe reuses it while no fault applies (zoneProbe.ts). */
  noteInstanceProbe(instance: string, result: ProbeResult): void {
    this.#prober?.noteInstanceProbe(instance, result.kind, result.ok, result.detail);
  }

  #probeZones(view: FleetView): void {
    const prober = this.#prober;
    const dataPlane = this.#dataPlane;
    if (prober === null || dataPlane === undefined) return;
    const targets: ZoneProbeTarget[] = [];
    for (const o of view.instances) {
      const service = this.#service(o.service, false);
      if (service === undefined || !dataPlane.hasProxy(service.name)) continue;
      if (o.runtime !== "running" || o.health?.state !== "ready") continue;
      let kept = this.#zoneTargets.get(o.name);
      if (kept?.of !== service || kept.release !== o.release) {
        const readiness = service.probes.readiness ?? service.probes.liveness;
        kept = {
          of: service,
          release: o.release,
          target: {
            endpoint: endpointOf(service, o.name, o.slot, o.release),
            check: readiness?.check ?? { kind: "tcp" },
            intervalMs: readiness?.intervalMs ?? 1_000,
            timeoutMs: readiness?.timeoutMs ?? 1_000,
            failureThreshold: readiness?.failureThreshold ?? 3,
            reuses:
              readiness === undefined || readiness.check.kind === "exec"
                ? null
                : service.probes.readiness !== undefined
                  ? "readiness"
                  : "liveness",
          },
        };
        this.#zoneTargets.set(o.name, kept);
      }
      targets.push(kept.target);
    }
    prober.run(targets);
  }

  #judgeZones(view: FleetView): DomainHealth[] {
    const wanted = this.#wantedSlots(view.targets);
    const ejected = this.#ejected;
    const members: ZoneMember[] = [];
    for (const o of view.instances) {
      const service = this.#service(o.service, false);
      if (service === undefined || !wanted(o)) continue;
      const ready = o.runtime === "running" && o.health?.state === "ready" && !view.busy.has(o.name);
      if (ready) this.#seenReady.add(o.name);
      if (!this.#seenReady.has(o.name)) continue;
      const probeProblem = this.#probeProblem(service, o.name);
      const problem = !ready
        ? o.runtime === "running"
          ? `not ready (${o.health?.state ?? "unknown"})`
          : `not running (${o.runtime})`
        : ejected.has(o.name)
          ? "ejected by the data plane"
          : probeProblem;
      members.push({ instance: o.name, zone: placementOf(service, o.slot).zone, problem });
    }
    return domainHealth(this.#zoneNames, members, this.#fleet.failover);
  }

  #readEjected(): Set<string> {
    const ejected = new Set<string>();
    if (this.#dataPlane === undefined) return ejected;
    for (const service of this.#fleet.services) {
      for (const name of this.#dataPlane.ejected(service.name)) ejected.add(name);
    }
    return ejected;
  }

  #probeProblem(service: ServiceSpec, instance: string): string | null {
    const readiness = service.probes.readiness ?? service.probes.liveness;
    return this.#prober?.failing(instance, readiness?.failureThreshold ?? 3) ?? null;
  }

  /** Whether some bank of its service wants an instance (by slot: no set of every name per pass). */
  #wantedSlots(targets: ReadonlyMap<string, readonly BankTarget[]>): (o: ObservedInstance) => boolean {
    return (o) => targets.get(o.service)?.some((bank) => bank.slots.includes(o.slot)) === true;
  }

  #applyShares(): void {
    const shares = zoneShares(this.#zones);
    const key = JSON.stringify(shares);
    if (key === this.#appliedShares || this.#dataPlane === undefined) return;
    this.#appliedShares = key;
    for (const service of this.#fleet.services) {
      this.#dataPlane.setZoneShares(service.name, Object.keys(shares).length > 0 ? shares : null);
    }
  }

  #protect(view: FleetView): void {
    if (view.settling === true) return;
    const dataPlane = this.#dataPlane;
    const shares = zoneShares(this.#zones);
    const shifted = this.#zones.shifts.length > 0;
    // With automation on, the survivors are protected from the first pass a zone fails — before
    // its evacuation is confirmed — since the data plane has already moved its traffic onto them.
    const failing = this.#fleet.failover.automatic && this.#health.some((zone) => zone.state !== "healthy");
    const active = shifted || failing;
    // Added capacity stays until every zone has all its traffic and has been healthy for the
    // stabilization window: a zone that fails again soon must not find the survivors shrunk.
    const now = this.#now();
    const settled =
      !active &&
      this.#allHealthySince !== null &&
      now - this.#allHealthySince >= this.#fleet.failover.stabilizationMs;
    if (settled) {
      for (const [service, slots] of this.#added) {
        if (slots.length === 0) continue;
        this.#note(
          "failover.scale-down",
          {
            code: "failback-complete",
            message: `every zone has all its traffic and has been healthy for ${duration(now - this.#allHealthySince!)}: ${slots.map((slot) => instanceName(service, slot)).join(", ")} added for the failover ${slots.length === 1 ? "is" : "are"} stopped (drained first)`,
          },
          { service },
        );
      }
      this.#added.clear();
    }
    for (const service of this.#fleet.services) {
      const rps = service.capacity.rps;
      if (dataPlane === undefined || !dataPlane.hasProxy(service.name) || rps === null) continue;
      if (!active) {
        if (this.#protection.has(service.name)) {
          dataPlane.setShedding(service.name, null);
          this.#shedChanged(service.name, { sheddable: 0, default: 0 }, []);
          this.#protection.delete(service.name);
        }
        continue;
      }
      const added = this.#added.get(service.name) ?? [];
      const protection = protectSurvivors({
        ...this.#protectionInput(view, dataPlane, service, rps, shares),
        wasShedding: isShedding(this.#protection.get(service.name)),
        spare: this.#spareSlots(service, view.targets.get(service.name) ?? [], added),
      });
      this.#protection.set(service.name, protection);
      this.#startAdded(service, protection, "");
      dataPlane.setShedding(
        service.name,
        protection.shed.sheddable > 0 || protection.shed.default > 0 ? protection.shed : null,
      );
      this.#shedChanged(service.name, protection.shed, protection.reasons);
      this.#announceCapacityReady(view, service, added);
    }
  }

  /** What protectSurvivors needs about `service` now, for the given zone shares. */
  #protectionInput(
    view: FleetView,
    dataPlane: DataPlaneControl,
    service: ServiceSpec,
    rps: number,
    shares: Readonly<Record<string, number>>,
  ): Omit<ProtectionInput, "spare"> {
    const ejected = this.#ejected;
    const added = this.#added.get(service.name) ?? [];
    const members = this.#instancesOf(view, service.name)
      .filter(
        (o) =>
          o.service === service.name && o.runtime === "running" && this.#isWanted(view, service, o, added),
      )
      .map((o) => ({
        instance: o.name,
        slot: o.slot,
        zone: placementOf(service, o.slot).zone,
        serving:
          o.health?.state === "ready" &&
          !view.busy.has(o.name) &&
          !ejected.has(o.name) &&
          this.#probeProblem(service, o.name) === null,
      }));
    return {
      service: service.name,
      avoidZones: this.#avoidZones(),
      ceiling: service.capacity.targetUtilization,
      instanceCapacityRps: rps,
      maxReplicas: service.capacity.maxReplicas,
      // Live demand: divided by the time the window covered, not by the whole window.
      demand: dataPlane.stats.criticalityRates(service.name, DEMAND_WINDOW_MS, "elapsed"),
      members,
      zoneShares: shares,
      added,
    };
  }

  /** Zones no instance is added in: failing or shifted ones, and those sharing their fate. */
  #avoidZones(): string[] {
    return zonesToAvoid(this.#fleet, [
      ...this.#health.filter((zone) => zone.state !== "healthy").map((zone) => zone.zone),
      ...this.#zones.shifts.map((shift) => shift.zone),
    ]);
  }

  /** Start the spare slots `protection` asks for, and say why. */
  #startAdded(service: ServiceSpec, protection: Protection, context: string): void {
    if (protection.addSlots.length === 0) return;
    const added = this.#added.get(service.name) ?? [];
    this.#added.set(service.name, [...added, ...protection.addSlots.map((s) => s.slot)]);
    const why = protection.reasons.find((r) => r.includes(" adds ")) ?? `${service.name}: adding capacity`;
    this.#note(
      "failover.scale-up",
      { code: "failover-scale-up", message: `${why}${context}` },
      {
        service: service.name,
        instances: protection.addSlots.map((s) => instanceName(service.name, s.slot)),
        zones: protection.addSlots.map((s) => s.zone),
      },
    );
  }

  /**
   * The brakes' say on an automatic evacuation of a zone: it acts on the zone's instances that still
   * serve — ready, not ejected, answering the zone probe over the data plane's path: those whose
   * traffic it takes away. A zone whose instances serve nothing (dead, or cut off from the data
   * plane) takes nothing away from anyone (docs/brakes.md).
   */
  #brake(view: FleetView): (zone: string) => string | null {
    return (zone) => {
      const services = new Map(this.#fleet.services.map((s) => [s.name, s]));
      const disrupts = view.instances
        .filter((o) => {
          const service = services.get(o.service);
          return (
            service !== undefined &&
            placementOf(service, o.slot).zone === zone &&
            o.runtime === "running" &&
            o.health?.state === "ready" &&
            !this.#ejected.has(o.name) &&
            this.#probeProblem(service, o.name) === null
          );
        })
        .map((o) => ({ instance: o.name, service: o.service }));
      const verdict = this.#brakes!.automated({ kind: "failover", service: null, target: zone, disrupts });
      return verdict.allowed ? null : verdict.hold.reason.message;
    };
  }

  /**
   * Scale-up before moving: the next step of an evacuation waits while it would put a service's
   * survivors over the ceiling and capacity is being added (started here if it is not yet).
   */
  #stepGate(view: FleetView): StepGate {
    return (zone, nextShare) => {
      const dataPlane = this.#dataPlane;
      if (dataPlane === undefined) return null;
      // Right after a restart the adopted instances have no verdict yet: their capacity is
      // unknown, not absent. Judged now, the survivors would look like no capacity at all and
      // twice the capacity needed would be added (seen in the crash tests); the step waits for
      // the picture instead (bounded by the adopted instances' startup budget).
      if (view.settling === true)
        return "instances adopted after a controller restart have no health verdict yet";
      if (this.#noDemandYet()) return "the data plane has not reported its traffic to this controller yet";
      const shares = { ...zoneShares(this.#zones), [zone]: nextShare };
      const waits: string[] = [];
      for (const service of this.#fleet.services) {
        const rps = service.capacity.rps;
        if (!dataPlane.hasProxy(service.name) || rps === null) continue;
        const input = this.#protectionInput(view, dataPlane, service, rps, shares);
        const projected = protectSurvivors({
          ...input,
          spare: this.#spareSlots(service, view.targets.get(service.name) ?? [], input.added),
        });
        if (projected.projectedUtilization <= service.capacity.targetUtilization) continue;
        this.#startAdded(service, projected, ` before ${zone} goes to ${Math.round(nextShare * 100)} %`);
        const serving = new Set(input.members.filter((m) => m.serving).map((m) => m.slot));
        const pending = (this.#added.get(service.name) ?? []).filter((slot) => !serving.has(slot));
        if (pending.length === 0) continue;
        waits.push(
          `${service.name} would run at ${percent(projected.projectedUtilization)} > ceiling ${percent(service.capacity.targetUtilization)}; waiting for ${pending.map((slot) => instanceName(service.name, slot)).join(", ")} to be ready`,
        );
      }
      return waits.length === 0 ? null : waits.join("; ");
    };
  }

  #announceCapacityReady(view: FleetView, service: ServiceSpec, added: readonly number[]): void {
    for (const slot of added) {
      const name = instanceName(service.name, slot);
      if (this.#readyAnnounced.has(name)) continue;
      const o = this.#instancesOf(view, service.name).find((i) => i.name === name);
      if (o?.runtime !== "running" || o.health?.state !== "ready") continue;
      this.#readyAnnounced.add(name);
      this.#note(
        "failover.capacity-ready",
        {
          code: "failover-capacity-ready",
          message: `${name} (added in ${placementOf(service, slot).zone}) is ready and takes traffic`,
        },
        { service: service.name, instance: name },
      );
    }
    for (const name of this.#readyAnnounced) {
      if (
        name.startsWith(`${service.name}-`) &&
        !added.some((slot) => instanceName(service.name, slot) === name)
      ) {
        this.#readyAnnounced.delete(name);
      }
    }
  }

  #isWanted(view: FleetView, service: ServiceSpec, o: ObservedInstance, added: readonly number[]): boolean {
    if (added.includes(o.slot)) return true;
    return (view.targets.get(service.name) ?? []).some((bank) => bank.slots.includes(o.slot));
  }

  #spareSlots(
    service: ServiceSpec,
    banks: readonly BankTarget[],
    added: readonly number[],
  ): SpareSlot[] | { unavailable: string } {
    if (banks.length !== 1) {
      return { unavailable: `a deploy or rollback of ${service.name} uses its spare bank` };
    }
    const spareBank = banks[0]!.bank === 0 ? 1 : 0;
    const slots: SpareSlot[] = [];
    for (let slot = spareBank * service.replicas; slot < (spareBank + 1) * service.replicas; slot++) {
      if (!added.includes(slot)) slots.push({ slot, zone: placementOf(service, slot).zone });
    }
    return slots;
  }

  #shedChanged(
    service: string,
    shed: { sheddable: number; default: number },
    reasons: readonly string[],
  ): void {
    const before = this.#announcedShed.get(service) ?? { sheddable: 0, default: 0 };
    const moved =
      Math.abs(before.sheddable - shed.sheddable) >= SHED_ANNOUNCE_STEP ||
      Math.abs(before.default - shed.default) >= SHED_ANNOUNCE_STEP ||
      ((before.sheddable > 0 || before.default > 0) && shed.sheddable === 0 && shed.default === 0) ||
      (before.sheddable === 0 && before.default === 0 && (shed.sheddable > 0 || shed.default > 0));
    if (!moved) return;
    this.#announcedShed.set(service, { ...shed });
    const stopped = shed.sheddable === 0 && shed.default === 0;
    this.#note(
      "failover.shedding",
      {
        code: "failover-shedding",
        message: stopped
          ? `${service}: shedding stopped: the serving capacity takes the demand under the ceiling`
          : reasons.filter((r) => r.includes(" sheds ") || r.includes("never shed")).join("; "),
      },
      { service, shed: { ...shed } },
    );
  }

  #announce(events: readonly ZoneEvent[]): void {
    for (const event of events) {
      this.#note(
        event.type,
        { code: event.code as ReasonCode, message: event.message },
        { zone: event.zone, share: event.share },
      );
    }
  }

  #serialized(): string {
    const saved: SavedState = {
      zones: { ...this.#zones, refused: {}, downSince: {} },
      added: Object.fromEntries(this.#added),
    };
    return JSON.stringify(saved);
  }

  #knownZone(zone: string): void {
    if (!this.#zoneNames.includes(zone)) {
      throw new HomeostatError(
        "HS_NOT_FOUND",
        `no zone ${zone} in this fleet (zones: ${this.#zoneNames.join(", ")})`,
        {
          details: { zone },
        },
      );
    }
  }

  /** The instances of `service` in `view`. */
  #instancesOf(view: FleetView, service: string): readonly ObservedInstance[] {
    if (this.#grouped?.of !== view.instances) {
      const byService = new Map<string, ObservedInstance[]>();
      for (const o of view.instances) {
        const list = byService.get(o.service);
        if (list === undefined) byService.set(o.service, [o]);
        else list.push(o);
      }
      this.#grouped = { of: view.instances, byService };
    }
    return this.#grouped.byService.get(service) ?? [];
  }

  #service(name: string): ServiceSpec;
  #service(name: string, required: false): ServiceSpec | undefined;
  #service(name: string, required = true): ServiceSpec | undefined {
    if (this.#servicesByName?.of !== this.#fleet) {
      this.#servicesByName = {
        of: this.#fleet,
        byName: new Map(this.#fleet.services.map((s) => [s.name, s])),
      };
    }
    const service = this.#servicesByName.byName.get(name);
    if (service === undefined && required) throw new HomeostatError("HS_INTERNAL", `no service ${name}`);
    return service;
  }
}

function isShedding(protection: Protection | undefined): boolean {
  return protection !== undefined && (protection.shed.sheddable > 0 || protection.shed.default > 0);
}

function unjudged(zone: string): DomainHealth {
  return { zone, state: "healthy", healthyInstances: 0, totalInstances: 0, reason: "not judged yet" };
}

function round(value: number): number {
  return Number.isFinite(value) ? Math.round(value * 1000) / 1000 : value;
}
