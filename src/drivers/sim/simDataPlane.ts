/**
 * A simulated data plane: takes what the controller tells a data plane ({@link DataPlaneControl})
 * and serves it in memory. Changes made in one turn go out as one complete snapshot, as they do
 * over the config feed (`DataPlaneClient`): every service, its members, weights, zone shares and
 * shedding, serialized as the feed would, so the cost of building and sending a snapshot of a
 * large fleet is paid here too. Nothing listens; no request is served; in-flight counts are 0 and
 * nothing is ejected unless a test says so.
 */

import type { Snapshot } from "../../dataplane/feedProtocol.ts";
import type { FleetSpec } from "../../spec/model.ts";
import type { Endpoint, SheddingShares } from "../../traffic/contracts.ts";
import type { DataPlaneControl, DataPlaneStatus } from "../../traffic/dataPlaneControl.ts";
import { FaultRegistry } from "../../traffic/faults.ts";
import { TrafficStats } from "../../traffic/stats/index.ts";

interface ServiceState {
  name: string;
  port: number;
  traffic: Record<string, unknown>;
  endpoints: Endpoint[] | null;
  weights?: Record<string, number> | null;
  zoneShares?: Record<string, number> | null;
  shedding?: SheddingShares | null;
}

/** What the simulated data plane was asked to do, for tests and the bench. */
export interface SimDataPlaneCounts {
  /** `setMembers` calls (one per service per pass when the controller pushes every service). */
  setMembers: number;
  /** setMembers calls that changed a service's members. */
  memberChanges: number;
  /** Complete snapshots built and applied. */
  snapshots: number;
  /** Bytes of those snapshots as JSON (what the feed would carry). */
  snapshotBytes: number;
  /** Wall ms spent building and serializing them. */
  snapshotMs: number;
}

export class SimDataPlane implements DataPlaneControl {
  readonly stats: TrafficStats;
  readonly faults: FaultRegistry;
  readonly #fleet: FleetSpec;
  readonly #now: () => number;
  readonly #services = new Map<string, ServiceState>();
  readonly #ejected = new Map<string, Set<string>>();
  readonly #listeners: ((snapshot: Snapshot) => void)[] = [];
  #version = 0;
  #issuedAt: number | null = null;
  #queued = false;
  readonly counts: SimDataPlaneCounts = {
    setMembers: 0,
    memberChanges: 0,
    snapshots: 0,
    snapshotBytes: 0,
    snapshotMs: 0,
  };

  constructor(fleet: FleetSpec, now: () => number) {
    this.#fleet = fleet;
    this.#now = now;
    this.stats = new TrafficStats({ now });
    this.faults = new FaultRegistry({ now, onChange: () => this.#schedule() });
    for (const service of fleet.services) {
      if (service.port === undefined) continue;
      this.#services.set(service.name, {
        name: service.name,
        port: service.port,
        traffic: service.traffic as unknown as Record<string, unknown>,
        endpoints: null,
      });
    }
  }

  /** Called with every snapshot applied, in order. */
  onSnapshot(listener: (snapshot: Snapshot) => void): void {
    this.#listeners.push(listener);
  }

  /** The members `service` serves now (null: never set). */
  members(service: string): readonly Endpoint[] | null {
    return this.#services.get(service)?.endpoints ?? null;
  }

  /** Make the data plane report `instance` as ejected by outlier detection (or not). */
  setEjected(service: string, instance: string, ejected: boolean): void {
    let set = this.#ejected.get(service);
    if (set === undefined) {
      set = new Set();
      this.#ejected.set(service, set);
    }
    if (ejected) set.add(instance);
    else set.delete(instance);
  }

  hasProxy(service: string): boolean {
    return this.#services.has(service);
  }

  setMembers(service: string, endpoints: Endpoint[]): void {
    const state = this.#services.get(service);
    if (state === undefined) return;
    this.counts.setMembers++;
    if (state.endpoints !== null && sameMembers(state.endpoints, endpoints)) return;
    this.counts.memberChanges++;
    state.endpoints = endpoints.map((e) => ({ ...e }));
    this.#schedule();
  }

  inFlight(): number {
    return 0;
  }

  setWeights(service: string, weights: Record<string, number> | null): void {
    const state = this.#services.get(service);
    if (state === undefined) throw new Error(`service ${service} has no traffic listener`);
    state.weights = weights === null ? null : { ...weights };
    this.#schedule();
  }

  setShedding(service: string, shares: Readonly<SheddingShares> | null): void {
    const state = this.#services.get(service);
    if (state === undefined) throw new Error(`service ${service} has no traffic listener`);
    state.shedding = shares === null ? null : { ...shares };
    this.#schedule();
  }

  setZoneShares(service: string, shares: Readonly<Record<string, number>> | null): void {
    const state = this.#services.get(service);
    if (state === undefined) return;
    state.zoneShares = shares === null ? null : { ...shares };
    this.#schedule();
  }

  ejected(service: string): string[] {
    return [...(this.#ejected.get(service) ?? [])];
  }

  state(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const s of this.#services.values()) out[s.name] = { endpoints: s.endpoints?.length ?? 0 };
    return out;
  }

  status(): DataPlaneStatus {
    return {
      mode: "in-process",
      pid: process.pid,
      connected: true,
      pushedVersion: this.#version,
      appliedVersion: this.#version,
      appliedIssuedAt: this.#issuedAt,
      controllerLostAt: null,
      generation: 0,
      lastReportAt: this.#now(),
      restarts: 0,
    };
  }

  decided(): void {
    for (const s of this.#services.values()) {
      if (s.weights === undefined) s.weights = null;
      if (s.zoneShares === undefined) s.zoneShares = null;
      if (s.shedding === undefined) s.shedding = null;
    }
    this.#schedule();
  }

  async settled(): Promise<boolean> {
    await Promise.resolve();
    return true;
  }

  async metrics(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.stats.contentType, text: "" };
  }

  async close(): Promise<void> {}

  /** Changes made in one turn go out as one snapshot (as `DataPlaneClient` does). */
  #schedule(): void {
    if (this.#queued) return;
    this.#queued = true;
    queueMicrotask(() => {
      this.#queued = false;
      this.#push();
    });
  }

  #push(): void {
    const started = performance.now();
    this.#version++;
    this.#issuedAt = this.#now();
    const snapshot: Snapshot = {
      version: this.#version,
      issuedAt: this.#issuedAt,
      fleet: this.#fleet.name,
      controller: { pid: process.pid, startedAt: 0 },
      services: [...this.#services.values()].map((s) => ({
        name: s.name,
        port: s.port,
        traffic: s.traffic,
        endpoints: s.endpoints,
        ...(s.weights === undefined ? {} : { weights: s.weights }),
        ...(s.zoneShares === undefined ? {} : { zoneShares: s.zoneShares }),
        ...(s.shedding === undefined ? {} : { shedding: s.shedding }),
      })),
      faults: this.faults.list() as Snapshot["faults"],
    };
    // What the feed would write: one line of JSON.
    this.counts.snapshotBytes += JSON.stringify(snapshot).length;
    this.counts.snapshots++;
    this.counts.snapshotMs += performance.now() - started;
    for (const listener of this.#listeners) listener(snapshot);
  }
}

function sameMembers(a: readonly Endpoint[], b: readonly Endpoint[]): boolean {
  if (a.length !== b.length) return false;
  const key = (e: Endpoint) => `${e.instance}@${e.address}:${e.port}/${e.release}`;
  const before = new Set(a.map(key));
  return b.every((e) => before.has(key(e)));
}
