/**
 * The invariant monitor: probes every ready instance of each service that declares security
 * invariants, continuously at the service's interval and at once when the set of ready
 * instances changes (an instance started, stopped, replaced, or moved to another release: a
 * restart, a deploy step, a rollback, a failover). It keeps the current verdict per service for
 * the verification gate, and turns broken invariants into incidents of their own.
 *
 * Nothing fails open: a service whose instances could not all be probed since the last change has
 * a verdict `checked: false` (never ok), and an incident is only called restored on a complete
 * round that found the invariant holding.
 */

import type { Reason, ReasonCode } from "../decide/reasons.ts";
import type { ObservedInstance } from "../decide/snapshot.ts";
import { type InvariantTarget, probeInvariants } from "../observe/invariantProbe.ts";
import type { FleetSpec, InvariantsSpec, ServiceSpec } from "../spec/model.ts";
import type { IncidentRecord, StateStore } from "../store/index.ts";
import {
  type BrokenInvariant,
  brokenByInvariant,
  evaluateInvariants,
  type InvariantVerdict,
  type InvariantVerdicts,
  NO_INVARIANTS,
  policyHashName,
  protectedPathName,
  uncheckedVerdict,
} from "../verify/invariants.ts";

/** The incident kind of a broken invariant. */
export const INVARIANT_INCIDENT_KIND = "invariant-broken";

/** How often the monitor looks for a changed set of ready instances. */
const DEFAULT_POLL_MS = 200;
/** An incomplete round is retried this soon (or at the interval, if shorter). */
const UNCHECKED_RETRY_MS = 500;
/** A verdict no complete round renewed for this many intervals (plus a timeout) is stale. */
const STALE_ROUNDS = 5;

export interface InvariantMonitorOptions {
  fleet: FleetSpec;
  store: StateStore;
  /** The instances the controller observes now. */
  instances: () => readonly ObservedInstance[];
  /** Record an event (the controller's `note`). */
  note: (type: string, why: Reason, data: Record<string, unknown>) => void;
  now?: () => number;
  pollMs?: number;
}

interface OpenInvariantIncident {
  id: number;
  detectedAt: number;
  /** Epoch ms of the complete round that first found it holding again; null while broken. */
  restoredAt: number | null;
  /** The instances that broke it in the last round that saw it broken, for "what changed". */
  instances: string;
}

interface ServiceWatch {
  service: ServiceSpec;
  invariants: InvariantsSpec;
  verdict: InvariantVerdict;
  /** The ready instances (name, release, start) the verdict is about. */
  signature: string;
  nextRoundAt: number;
  round: Promise<void> | null;
  /** Open incidents by invariant name. */
  incidents: Map<string, OpenInvariantIncident>;
}

/** A watch not probed yet: unchecked until its first complete round. */
function uncheckedWatch(
  service: ServiceSpec,
  invariants: InvariantsSpec,
  incidents: Map<string, OpenInvariantIncident>,
): ServiceWatch {
  return {
    service,
    invariants,
    verdict: uncheckedVerdict(),
    signature: "",
    nextRoundAt: 0,
    round: null,
    incidents,
  };
}

/**
 * Probes declared invariants and keeps their verdicts. `forService` is what the verification gate
 * reads; `start` begins probing, `stop` ends it (and waits for rounds in flight).
 */
export class InvariantMonitor implements InvariantVerdicts {
  readonly #store: StateStore;
  readonly #instances: () => readonly ObservedInstance[];
  readonly #note: InvariantMonitorOptions["note"];
  readonly #now: () => number;
  readonly #pollMs: number;
  readonly #watches = new Map<string, ServiceWatch>();
  #known: ReadonlySet<string>;
  #timer: NodeJS.Timeout | null = null;
  #started = false;
  #stopped = false;

  constructor(options: InvariantMonitorOptions) {
    this.#store = options.store;
    this.#instances = options.instances;
    this.#note = options.note;
    this.#now = options.now ?? Date.now;
    this.#pollMs = options.pollMs ?? DEFAULT_POLL_MS;
    this.#known = new Set(options.fleet.services.map((s) => s.name));
    for (const service of options.fleet.services) {
      if (service.invariants === undefined) continue;
      this.#watches.set(service.name, uncheckedWatch(service, service.invariants, new Map()));
    }
  }

  /**
   * Take a newly applied spec: a service whose invariants are unchanged keeps its verdict and
   * incidents; one whose invariants changed (or that is new) is unchecked until its next round;
   * a removed service's watch is dropped. A started monitor with nothing to watch resumes polling
   * when the spec brings invariants.
   */
  setFleet(next: FleetSpec): void {
    this.#known = new Set(next.services.map((s) => s.name));
    for (const name of [...this.#watches.keys()]) {
      const service = next.services.find((s) => s.name === name);
      if (service?.invariants === undefined) this.#watches.delete(name);
    }
    for (const service of next.services) {
      if (service.invariants === undefined) continue;
      const watch = this.#watches.get(service.name);
      if (watch !== undefined && JSON.stringify(watch.invariants) === JSON.stringify(service.invariants)) {
        watch.service = service;
        continue;
      }
      this.#watches.set(
        service.name,
        uncheckedWatch(service, service.invariants, watch?.incidents ?? new Map()),
      );
    }
    if (this.#started && !this.#stopped && this.#timer === null && this.#watches.size > 0) this.#poll();
  }

  /**
   * The verdict on `service`'s invariants now. A service that declares none: ok. A service that
   * declares some and was not completely probed since its ready instances last changed: not ok,
   * `checked: false`. An unknown service: not ok, unchecked (nothing is known to hold).
   */
  forService(service: string): InvariantVerdict {
    const watch = this.#watches.get(service);
    if (watch === undefined) return this.#known.has(service) ? NO_INVARIANTS : uncheckedVerdict();
    return this.#fresh(watch);
  }

  /**
   * The verdict, unless no complete round renewed it for {@link STALE_ROUNDS} intervals (and a
   * probe timeout): probing stopped or its loop died, so an old "ok" is no evidence any more and
   * the verdict is unchecked (what was seen broken stays listed).
   */
  #fresh(watch: ServiceWatch): InvariantVerdict {
    const { verdict, invariants } = watch;
    if (!verdict.checked || verdict.lastCheckedAt === null) return verdict;
    const limit = STALE_ROUNDS * invariants.intervalMs + invariants.timeoutMs;
    if (this.#now() - verdict.lastCheckedAt <= limit) return verdict;
    return { ...verdict, ok: false, checked: false };
  }

  /** The verdict of every service that declares invariants, by service name (for the status document). */
  verdicts(): Record<string, InvariantVerdict> {
    return Object.fromEntries([...this.#watches].map(([name, watch]) => [name, this.#fresh(watch)]));
  }

  /** Take over the open invariant incidents of an earlier controller, then start probing. */
  start(): void {
    if (this.#stopped || this.#started) return;
    this.#started = true;
    this.#adoptOpenIncidents();
    this.#poll();
  }

  /** Stop probing; resolves once rounds in flight are done (their results are dropped). */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await Promise.allSettled([...this.#watches.values()].map((w) => w.round));
  }

  /** True while the monitor polls: started, not stopped, and some service declares invariants. */
  get polling(): boolean {
    return this.#timer !== null;
  }

  #poll(): void {
    this.#timer = null;
    if (this.#stopped) return;
    const now = this.#now();
    const instances = this.#instances();
    for (const watch of this.#watches.values()) this.#check(watch, instances, now);
    // Nothing to watch, nothing to poll: it woke the controller five times a second for nothing
    // (issue 15; no CPU gain measurable in the probe bench, docs/benchmarks.md). setFleet starts
    // polling again when a service declares invariants.
    if (this.#watches.size === 0) return;
    this.#timer = setTimeout(() => this.#poll(), this.#pollMs);
    this.#timer.unref();
  }

  /** Note a change of the ready set (the verdict is stale until probed again) and start a due round. */
  #check(watch: ServiceWatch, instances: readonly ObservedInstance[], now: number): void {
    const targets = readyTargets(watch.service, instances);
    const signature = signatureOf(targets);
    if (signature !== watch.signature) {
      watch.signature = signature;
      // Not yet probed since the change: what was broken stays broken, nothing is ok.
      watch.verdict = { ...watch.verdict, ok: false, checked: false };
      watch.nextRoundAt = now;
    }
    if (watch.round !== null || now < watch.nextRoundAt) return;
    const round = this.#round(watch, targets, signature).finally(() => {
      if (watch.round === round) watch.round = null;
    });
    watch.round = round;
  }

  async #round(watch: ServiceWatch, targets: InvariantTarget[], signature: string): Promise<void> {
    const observations = await Promise.all(targets.map((t) => probeInvariants(t, watch.invariants)));
    if (this.#stopped) return;
    const now = this.#now();
    let verdict = evaluateInvariants({ instances: observations, now, previous: watch.verdict });
    // The ready set changed while this round ran: what it saw broken is real, but it did not see
    // every instance there is now.
    if (watch.signature !== signature) {
      verdict = { ...verdict, ok: false, checked: false, lastCheckedAt: watch.verdict.lastCheckedAt };
    }
    watch.verdict = verdict;
    // A change during the round: the new set is probed at the next poll, not an interval later.
    watch.nextRoundAt =
      watch.signature !== signature
        ? now
        : now +
          (verdict.checked
            ? watch.invariants.intervalMs
            : Math.min(watch.invariants.intervalMs, UNCHECKED_RETRY_MS));
    this.#reconcileIncidents(watch, verdict, now);
  }

  /**
   * One incident per service and invariant: opened when it is first seen broken, mitigated
   * (event `invariant.restored`) on the first complete round that finds it holding, verified and
   * closed once it held for the service's stabilization window (`restart.resetAfter`), reopened
   * (`regressed`) if it breaks again before that.
   */
  #reconcileIncidents(watch: ServiceWatch, verdict: InvariantVerdict, now: number): void {
    const service = watch.service.name;
    const groups = brokenByInvariant(verdict.broken);
    for (const [name, broken] of groups) {
      const instances = broken.map((b) => b.instance ?? "").join(",");
      const detail = broken.map((b) => b.detail).join("; ");
      const open = watch.incidents.get(name);
      if (open === undefined) {
        const since = Math.min(...broken.map((b) => b.since));
        const incident = this.#store.openIncident({
          service,
          instance: incidentSubject(service, name),
          kind: INVARIANT_INCIDENT_KIND,
          reason: reasonOf(broken[0]!),
          detectedAt: since,
          lastGoodAt: verdict.lastCheckedAt === null ? null : Math.min(verdict.lastCheckedAt, since),
          detail,
        });
        this.#store.addIncidentEvent(incident.id, { at: now, phase: "detected", detail });
        watch.incidents.set(name, { id: incident.id, detectedAt: since, restoredAt: null, instances });
        this.#note(
          "incident.opened",
          { code: "incident-opened", message: `${service}: ${detail}` },
          { incident: incident.id, service, kind: INVARIANT_INCIDENT_KIND, invariant: name },
        );
        this.#noteBroken(service, name, broken, incident.id);
        continue;
      }
      if (open.restoredAt !== null) {
        this.#store.updateIncident(open.id, { mitigatedAt: null, ttrMs: null, detail });
        this.#store.addIncidentEvent(open.id, { at: now, phase: "regressed", detail });
        open.restoredAt = null;
        open.instances = instances;
        this.#noteBroken(service, name, broken, open.id);
      } else if (open.instances !== instances) {
        // Another instance now breaks it (a rollback brought the broken release back, say).
        this.#store.updateIncident(open.id, { detail });
        this.#store.addIncidentEvent(open.id, { at: now, phase: "broken", detail });
        open.instances = instances;
        this.#noteBroken(service, name, broken, open.id);
      }
    }
    // Only a complete round proves an invariant holds again.
    if (!verdict.checked) return;
    for (const [name, open] of watch.incidents) {
      if (groups.has(name)) continue;
      if (open.restoredAt === null) {
        open.restoredAt = now;
        const ttrMs = now - open.detectedAt;
        this.#store.updateIncident(open.id, { mitigatedAt: now, ttrMs });
        const detail = `${name} holds again on every ready instance of ${service}`;
        this.#store.addIncidentEvent(open.id, { at: now, phase: "mitigated", detail });
        this.#note(
          "invariant.restored",
          { code: "invariant-restored", message: `${service}: ${detail}` },
          { incident: open.id, service, invariant: name, ttrMs },
        );
        continue;
      }
      if (now - open.restoredAt >= watch.service.restart.resetAfterMs) {
        this.#verify(
          open.id,
          service,
          `${name} held on every ready instance for ${now - open.restoredAt}ms`,
          now,
        );
        watch.incidents.delete(name);
      }
    }
  }

  #noteBroken(service: string, name: string, broken: BrokenInvariant[], incident: number): void {
    const first = broken[0]!;
    this.#note(
      "invariant.broken",
      { code: reasonOf(first), message: `${service}: ${broken.map((b) => b.detail).join("; ")}` },
      {
        incident,
        service,
        invariant: name,
        kind: first.kind,
        instances: broken.map((b) => b.instance).filter((i) => i !== undefined),
        since: Math.min(...broken.map((b) => b.since)),
      },
    );
  }

  /** The invariant held through the stabilization window, checked on every round: verified, closed. */
  #verify(id: number, service: string, detail: string, now: number): void {
    const record = this.#store.updateIncident(id, {
      status: "closed",
      closedAt: now,
      stabilizedAt: now,
      verifiedAt: now,
    });
    this.#store.addIncidentEvent(id, { at: now, phase: "verified", detail });
    this.#note(
      "incident.verified",
      { code: "stabilized", message: `${service}: ${detail}` },
      { incident: id, service, kind: INVARIANT_INCIDENT_KIND, ttdMs: record.ttdMs, ttrMs: record.ttrMs },
    );
  }

  /** Closed without verification: nothing checks the invariant any more. */
  #close(id: number, service: string, detail: string, now: number): void {
    const record = this.#store.updateIncident(id, { status: "closed", closedAt: now });
    this.#store.addIncidentEvent(id, { at: now, phase: "closed", detail });
    this.#note(
      "incident.closed",
      { code: "stabilized", message: `${service}: ${detail}` },
      { incident: id, service, kind: INVARIANT_INCIDENT_KIND, ttdMs: record.ttdMs, ttrMs: record.ttrMs },
    );
  }

  /**
   * Open invariant incidents left by an earlier controller: those of invariants still declared
   * are followed up (restored and closed by this monitor's rounds); the others are closed, since
   * nothing checks them any more.
   */
  #adoptOpenIncidents(): void {
    const open: IncidentRecord[] = this.#store
      .listIncidents({ status: "open" })
      .filter((i) => i.kind === INVARIANT_INCIDENT_KIND);
    const now = this.#now();
    for (const incident of open) {
      const watch = this.#watches.get(incident.service);
      const name = incident.instance.slice(incident.service.length + 1);
      if (watch === undefined || !declaredNames(watch.invariants).includes(name)) {
        this.#close(incident.id, incident.service, `${name} is no longer declared`, now);
        continue;
      }
      watch.incidents.set(name, {
        id: incident.id,
        detectedAt: incident.detectedAt,
        restoredAt: incident.mitigatedAt,
        instances: "",
      });
    }
  }
}

/** The `instance` field of an invariant incident: `<service>/<invariant>`, never an instance name. */
export function incidentSubject(service: string, invariant: string): string {
  return `${service}/${invariant}`;
}

/** The invariant names a spec declares. */
function declaredNames(invariants: InvariantsSpec): string[] {
  return [
    ...invariants.protectedPaths.map((p) => protectedPathName(p.method, p.path)),
    ...(invariants.policyHash === null ? [] : [policyHashName(invariants.policyHash.path)]),
  ];
}

function reasonOf(broken: BrokenInvariant): ReasonCode {
  return broken.kind === "protected-path" ? "auth-not-enforced" : "policy-diverged";
}

/** Ready instances of `service`, as probe targets, in name order. */
type ReadyTarget = InvariantTarget & { startedAt: number | null };

function readyTargets(service: ServiceSpec, instances: readonly ObservedInstance[]): ReadyTarget[] {
  return instances
    .filter((o) => o.service === service.name && o.runtime === "running" && o.health?.state === "ready")
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((o) => {
      const target: ReadyTarget = {
        instance: o.name,
        port: service.basePort + o.slot,
        release: o.release,
        startedAt: o.startedAt,
      };
      const expected = service.releases[o.release]?.policyHash;
      if (expected !== undefined) target.expectedPolicyHash = expected;
      return target;
    });
}

function signatureOf(targets: readonly ReadyTarget[]): string {
  return targets.map((t) => `${t.instance}@${t.release ?? ""}:${t.port}:${t.startedAt ?? ""}`).join(" ");
}
