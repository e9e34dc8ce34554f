/**
 * One service served by the managed HAProxy: what Homeostat decides for it (members, release
 * weights, zone shares, shedding, ejections, drains) and the Runtime API commands that make
 * HAProxy's backend match. HAProxy moves the bytes; every choice of who gets them is made here,
 * with the embedded engine's own rules (see serverPlan.ts), so both engines behave alike.
 */

import type { TrafficSpec } from "../../spec/model.ts";
import { OutlierDetector } from "../../traffic/balance/outlierDetector.ts";
import type { AttemptOutcome, Endpoint, SheddingShares } from "../../traffic/contracts.ts";
import { ejectedEvent, returnedEvent, type TrafficEvent } from "../../traffic/proxy/healthWatch.ts";
import type { TrafficStats } from "../../traffic/stats/index.ts";
import type { ServiceSnapshot } from "../feedProtocol.ts";
import { LOG_ALL, shedUnits } from "./haproxyConfig.ts";
import { pickProbabilities, planServers, type ServerTarget } from "./serverPlan.ts";

/** What a service reports of one server, read back from HAProxy (`show stat`). */
export interface ServerReadback {
  /** Current sessions on the server: requests in flight. */
  scur: number;
  /** HAProxy's own status word (UP, DRAIN, MAINT, …). */
  status: string;
}

/** An event for the controller: the embedded engine's own kinds. */
export type ServiceEvent = TrafficEvent;

export class HaproxyService {
  readonly name: string;
  port: number;
  traffic: TrafficSpec;
  /** Server names rendered in the backend, in slot order. */
  servers: string[] = [];
  endpoints: Endpoint[] = [];
  /** Release weights; undefined until a snapshot sets them: the traffic settings' own apply. */
  weights: Record<string, number> | null | undefined = undefined;
  zoneShares: Record<string, number> | null = null;
  shedding: SheddingShares | null = null;
  /** Instance slots the controller may use (both banks), as the last snapshot said. */
  slots: number | undefined = undefined;
  /** Share of answered requests HAProxy logs, in 1/10000ths (see logSampling.ts). */
  logShare = LOG_ALL;
  readonly #outliers: OutlierDetector;
  readonly #stats: TrafficStats;
  readonly #onEvent: (event: ServiceEvent) => void;
  /** Removed members still finishing requests: instance → the endpoint and when the drain ends. */
  readonly #draining = new Map<string, { endpoint: Endpoint; until: number }>();
  /** What HAProxy was last told, per server (cleared when HAProxy restarts or reloads). */
  #applied = new Map<string, ServerTarget>();
  #appliedShed: string | null = null;
  #appliedLogShare: number | null = null;
  #readback = new Map<string, ServerReadback>();
  #ejectedSeen = new Set<string>();

  constructor(o: {
    snapshot: ServiceSnapshot;
    stats: TrafficStats;
    onEvent: (event: ServiceEvent) => void;
  }) {
    this.name = o.snapshot.name;
    this.port = o.snapshot.port;
    this.traffic = o.snapshot.traffic as unknown as TrafficSpec;
    this.#stats = o.stats;
    this.#onEvent = o.onEvent;
    this.#outliers = new OutlierDetector(this.traffic.outlier);
  }

  /**
   * Take a snapshot's view of the service. Fields it leaves out (null endpoints, undefined
   * weights, shares, shedding) keep what is served. Members that leave start draining.
   */
  update(snapshot: ServiceSnapshot, now: number): void {
    this.port = snapshot.port;
    this.slots = snapshot.slots;
    this.traffic = snapshot.traffic as unknown as TrafficSpec;
    this.#outliers.configure(this.traffic.outlier);
    if (snapshot.endpoints !== null) {
      const next = snapshot.endpoints as Endpoint[];
      const staying = new Set(next.map((e) => e.instance));
      for (const e of this.endpoints) {
        if (staying.has(e.instance) || this.#draining.has(e.instance)) continue;
        this.#draining.set(e.instance, { endpoint: e, until: now + this.traffic.drainTimeoutMs });
      }
      for (const e of next) {
        const previous = this.endpoints.find((p) => p.instance === e.instance);
        this.#draining.delete(e.instance);
        // The same name on another port is another process: it starts with a clean record.
        if (previous !== undefined && previous.port !== e.port) this.#outliers.forget(e.instance);
      }
      this.endpoints = next.map((e) => ({ ...e }));
      this.#outliers.setMembers(this.endpoints.map((e) => e.instance));
    }
    if (snapshot.weights !== undefined) this.weights = snapshot.weights;
    if (snapshot.zoneShares !== undefined) this.zoneShares = snapshot.zoneShares;
    if (snapshot.shedding !== undefined) this.shedding = snapshot.shedding;
  }

  /** Server names for this service: every slot the controller may use, and every member. */
  serverNames(): string[] {
    const names = new Set<string>();
    const highest = Math.max(
      -1,
      ...[...this.endpoints, ...[...this.#draining.values()].map((d) => d.endpoint)].map((e) =>
        slotOf(this.name, e.instance),
      ),
    );
    const count = Math.max(this.slots ?? 0, 2 * (highest + 1), 2);
    for (let slot = 0; slot < count; slot++) names.add(`${this.name}-${slot}`);
    for (const e of this.endpoints) names.add(e.instance);
    for (const d of this.#draining.values()) names.add(d.endpoint.instance);
    return [...names];
  }

  /** An outcome from HAProxy's log for a member: true when it ejected the member. */
  recordOutcome(instance: string, outcome: AttemptOutcome, now: number): boolean {
    return this.#outliers.record(instance, outcome, now);
  }

  /** HAProxy's live figures per server (from `show stat`). Ends drains that have nothing left. */
  setReadback(readback: Map<string, ServerReadback>, now: number): void {
    this.#readback = readback;
    for (const [instance, d] of this.#draining) {
      const inFlight = readback.get(instance)?.scur ?? 0;
      if (inFlight === 0 || now >= d.until) this.#draining.delete(instance);
    }
  }

  /** Forget what HAProxy was told (it restarted or reloaded): the next plan sends everything. */
  forgetApplied(): void {
    this.#applied = new Map();
    this.#appliedShed = null;
    this.#appliedLogShare = null;
  }

  /** Instances ejected now, after the max-ejection cap. */
  ejected(now: number): Set<string> {
    const out = new Set<string>();
    for (const e of this.endpoints)
      if (this.#outliers.ejectedUntil(e.instance, now) !== null) out.add(e.instance);
    return out;
  }

  /** Earliest end of an ejection or a drain (when the plan must be looked at again), or +∞. */
  nextChangeAt(now: number): number {
    let next = Number.POSITIVE_INFINITY;
    for (const e of this.endpoints) {
      const until = this.#outliers.ejectedUntil(e.instance, now);
      if (until !== null) next = Math.min(next, until);
    }
    for (const d of this.#draining.values()) next = Math.min(next, d.until);
    return next;
  }

  /**
   * The Runtime API commands that bring HAProxy's backend to the plan, only what changed since
   * the last call (all of it after {@link forgetApplied}). Events for ejections that began or ended.
   */
  commands(now: number, shedMap: string, logMap: string): string[] {
    const ejected = this.ejected(now);
    this.#reportEjections(ejected, now);
    const targets = planServers({
      service: {
        name: this.name,
        traffic: this.traffic,
        endpoints: this.endpoints,
        weights: this.weights,
        zoneShares: this.zoneShares,
      },
      servers: this.servers,
      ejected,
      draining: new Set(this.#draining.keys()),
      now,
    });
    const fallback = this.#redispatchable(ejected, now);
    const out: string[] = [];
    for (const target of targets) {
      if (target.state === "ready" && target.weight === 0 && fallback.has(target.server)) target.weight = 1;
      const before = this.#applied.get(target.server);
      const where = `${this.name}/${target.server}`;
      const draining = this.#draining.get(target.server);
      const addr = draining?.endpoint.address ?? target.addr;
      const port = draining?.endpoint.port ?? target.port;
      if (target.instance !== null && (before?.addr !== addr || before?.port !== port)) {
        out.push(`set server ${where} addr ${addr} port ${port}`);
      }
      if (before?.weight !== target.weight) out.push(`set server ${where} weight ${target.weight}`);
      if (before?.state !== target.state) out.push(`set server ${where} state ${target.state}`);
      this.#applied.set(target.server, { ...target, addr, port });
    }
    const shed = {
      default: shedUnits(this.shedding?.default ?? 0),
      sheddable: shedUnits(this.shedding?.sheddable ?? 0),
    };
    const shedKey = `${shed.default}/${shed.sheddable}`;
    if (shedKey !== this.#appliedShed) {
      out.push(`set map ${shedMap} default ${shed.default}`);
      out.push(`set map ${shedMap} sheddable ${shed.sheddable}`);
      this.#appliedShed = shedKey;
    }
    if (this.logShare !== this.#appliedLogShare) {
      out.push(`set map ${logMap} sample ${this.logShare}`);
      this.#appliedLogShare = this.logShare;
    }
    return out;
  }

  /**
   * Members a retry may be sent to although their priority gets no traffic now: HAProxy
   * redispatches a retry by the weights, and a server at weight 0 is never chosen, so with all the
   * load on the local zone a retry after a failure there would find nobody. These keep weight 1
   * (1/256 of the largest): what they would get if every zone were one priority, when that is
   * more than nothing. A release or a zone at 0, and ejected members, stay at 0.
   */
  #redispatchable(ejected: ReadonlySet<string>, now: number): Set<string> {
    const allZones = [...new Set(this.endpoints.map((e) => e.zone))];
    const flat = pickProbabilities({
      name: this.name,
      traffic: { ...this.traffic, priorities: [allZones] },
      endpoints: this.endpoints,
      weights: this.weights,
      zoneShares: this.zoneShares,
      ejected,
      now,
    });
    return new Set([...flat].filter(([, p]) => p > 0).map(([instance]) => instance));
  }

  /** Release and zone of a member, or of a removed one still finishing its requests. */
  lookup(instance: string): { release: string; zone: string } | null {
    const e = this.endpoints.find((x) => x.instance === instance) ?? this.#draining.get(instance)?.endpoint;
    return e === undefined ? null : { release: e.release, zone: e.zone };
  }

  /** The service as the API shows it: the embedded engine's fields, from HAProxy's figures. */
  state(now: number): Record<string, unknown> {
    const ejected = this.ejected(now);
    const row = (e: Endpoint, draining: boolean) => {
      const outlier = draining ? undefined : this.#outliers.stateOf(e.instance, now);
      const applied = this.#applied.get(e.instance);
      const readback = this.#readback.get(e.instance);
      return {
        instance: e.instance,
        release: e.release,
        zone: e.zone,
        port: e.port,
        inFlight: readback?.scur ?? 0,
        waiting: 0,
        limit: this.traffic.limits.maxConcurrentPerInstance,
        adaptiveLimit: null,
        draining,
        priority: priorityOf(this.traffic, e.zone),
        ejected: !draining && ejected.has(e.instance),
        ejectedUntil: outlier?.ejectedUntil ?? null,
        consecutiveFailures: outlier?.consecutiveFailures ?? 0,
        timesEjected: outlier?.timesEjected ?? 0,
        stalled: false,
        stalledSince: null,
        haproxy: {
          weight: applied?.weight ?? null,
          state: applied?.state ?? null,
          status: readback?.status ?? null,
        },
      };
    };
    const endpoints = [
      ...this.endpoints.map((e) => row(e, false)),
      ...[...this.#draining.values()].map((d) => row(d.endpoint, true)),
    ];
    const healthy = this.endpoints.length - ejected.size;
    const panic =
      this.endpoints.length > 0 &&
      (healthy / this.endpoints.length) * 100 < this.traffic.panic.thresholdPercent;
    return {
      service: this.name,
      port: this.port,
      engine: "haproxy",
      endpoints,
      healthy,
      members: this.endpoints.length,
      panic,
      panicMode: this.traffic.panic.mode,
      weights: this.weights ?? this.traffic.weights,
      zoneShares: this.zoneShares,
      shedding: this.shedding === null ? null : { ...this.shedding },
      logShare: this.logShare / LOG_ALL,
      ejectionsSuppressed: this.#outliers.ejectionsSuppressed,
      limits: {
        maxConcurrentPerInstance: this.traffic.limits.maxConcurrentPerInstance,
        adaptive: false,
        queueTimeoutMs: this.traffic.limits.queueTimeoutMs,
      },
      requestsInFlight: endpoints.reduce((sum, e) => sum + e.inFlight, 0),
    };
  }

  #reportEjections(ejected: Set<string>, now: number): void {
    for (const instance of ejected) {
      if (this.#ejectedSeen.has(instance)) continue;
      const state = this.#outliers.stateOf(instance, now);
      this.#stats.recordEjection(this.name, instance, true);
      this.#onEvent(
        ejectedEvent(
          instance,
          state?.ejectedUntil ?? now,
          state?.timesEjected ?? 0,
          " (HAProxy server set to weight 0)",
        ),
      );
    }
    for (const instance of this.#ejectedSeen) {
      if (ejected.has(instance)) continue;
      this.#stats.recordEjection(this.name, instance, false);
      this.#onEvent(
        returnedEvent(
          instance,
          this.endpoints.some((e) => e.instance === instance),
        ),
      );
    }
    this.#ejectedSeen = ejected;
  }
}

/** The slot number in an instance name `<service>-<slot>`, or -1. */
function slotOf(service: string, instance: string): number {
  if (!instance.startsWith(`${service}-`)) return -1;
  const slot = Number(instance.slice(service.length + 1));
  return Number.isInteger(slot) && slot >= 0 ? slot : -1;
}

/** The priority a zone has in the service's traffic spec (unlisted zones: one past the last). */
function priorityOf(traffic: TrafficSpec, zone: string): number {
  const index = traffic.priorities.findIndex((zones) => zones.includes(zone));
  return index === -1 ? traffic.priorities.length : index;
}
