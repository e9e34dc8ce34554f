/**
 * The controller's side of the data plane when it runs in processes of its own (the default):
 * one or more workers (`--data-plane-workers`), each fed the same complete snapshot over its own
 * config feed (per-instance limits divided between them). Reads merge what the workers report:
 * in-flight counts add up, windows merge their histograms, an instance ejected by any worker
 * counts as ejected. Nothing on the request path waits for this class: every worker serves on
 * its last snapshot whether or not a controller is connected.
 */

import type { FeedEvent, ServiceSnapshot, Snapshot, StoreSnapshot } from "../dataplane/feedProtocol.ts";
import { liveDataPlanes } from "../dataplane/processRecord.ts";
import { HomeostatError } from "../errors.ts";
import type { FleetSpec, TrafficSpec } from "../spec/model.ts";
import type { StateStore } from "../store/index.ts";
import type { Endpoint, SheddingShares } from "../traffic/contracts.ts";
import type { DataPlaneControl, DataPlaneStatus } from "../traffic/dataPlaneControl.ts";
import { FaultRegistry, type FaultRule } from "../traffic/faults.ts";
import { type DecisionWindows, mergedWindows } from "../traffic/stats/index.ts";
import { DataPlaneWorker } from "./dataPlaneWorker.ts";

export { DATA_PLANE_STABILIZATION_MS, DATA_PLANE_START_BOUND_MS } from "./dataPlaneWorker.ts";

export interface DataPlaneClientOptions {
  fleet: FleetSpec;
  stateDir: string;
  store: StateStore;
  /** Worker processes sharing every service port (SO_REUSEPORT when more than one). Default 1. */
  workers?: number;
  /** An event from the data plane or about it, to be recorded by the controller. */
  onEvent: (event: FeedEvent) => void;
  now?: () => number;
  /** Checked before a worker starts, kills or stops a data-plane process (see DataPlaneWorkerOptions). */
  fence?: (what: string) => void;
}

interface ServiceIntent {
  name: string;
  port: number;
  traffic: TrafficSpec;
  /** Null until this controller has decided membership: the data plane keeps what it serves. */
  endpoints: Endpoint[] | null;
  /**
   * Undefined until this controller has set them (a rollout or a failover it resumes sets them on
   * its first pass): left out of the snapshot, so an adopted data plane keeps what it serves.
   */
  weights?: Record<string, number> | null;
  zoneShares?: Record<string, number> | null;
  shedding?: SheddingShares | null;
}

export class DataPlaneClient implements DataPlaneControl {
  readonly stats: DecisionWindows;
  readonly faults: FaultRegistry;
  #fleet: FleetSpec;
  readonly #stateDir: string;
  readonly #onEvent: (event: FeedEvent) => void;
  readonly #now: () => number;
  readonly #startedAt: number;
  readonly #workers: DataPlaneWorker[];
  readonly #intent = new Map<string, ServiceIntent>();
  /** Replicated stores' endpoints (issue 16); undefined until set: snapshots leave them out (keep). */
  #stores: StoreSnapshot[] | undefined;
  /** Every snapshot sent, to any worker, has a version above all before it. */
  #version = 0;
  readonly #store: StateStore;
  #pushQueued = false;
  /** Per service and instance, the snapshot version that removed it from membership. */
  readonly #removedAt = new Map<string, number>();
  #closed = false;

  constructor(options: DataPlaneClientOptions) {
    this.#fleet = options.fleet;
    this.#store = options.store;
    this.#stateDir = options.stateDir;
    this.#onEvent = options.onEvent;
    this.#now = options.now ?? Date.now;
    this.#startedAt = this.#now();
    const count = options.workers ?? 1;
    if (!Number.isInteger(count) || count < 1) {
      throw new HomeostatError("HS_USAGE", `data-plane workers must be a whole number ≥ 1, not ${count}`);
    }
    this.faults = new FaultRegistry({ onChange: () => this.#schedulePush() });
    this.#workers = Array.from(
      { length: count },
      (_, index) =>
        new DataPlaneWorker({
          index,
          stateDir: options.stateDir,
          store: options.store,
          reusePort: count > 1,
          controller: { pid: process.pid, startedAt: this.#startedAt },
          snapshot: (worker) => this.#snapshotFor(worker),
          onEvent: options.onEvent,
          now: this.#now,
          ...(options.fence === undefined ? {} : { fence: options.fence }),
        }),
    );
    this.stats = mergedWindows(() => this.#workers.map((w) => w.stats));
    for (const service of options.fleet.services) {
      if (service.port === undefined) continue;
      this.#intent.set(service.name, {
        name: service.name,
        port: service.port,
        traffic: service.traffic,
        endpoints: null,
      });
    }
  }

  /**
   * Adopt the running workers or start them, attach, and wait until each serves the first
   * snapshot (every listener bound).
   * @throws HomeostatError HS_PORT_IN_USE when a service port is taken, HS_INTERNAL when a worker
   * does not start
   */
  async start(): Promise<void> {
    try {
      // One at a time: the first binds the ports, so a port taken by someone else fails there.
      for (const worker of this.#workers) await worker.start();
    } catch (error) {
      await this.close();
      throw error;
    }
    // Workers an earlier controller ran beyond today's count would keep taking connections on
    // the ports with a snapshot nobody updates: they drain and go, now that the others serve.
    for (const extra of liveDataPlanes(this.#stateDir)) {
      if ((extra.worker ?? 0) < this.#workers.length) continue;
      process.kill(extra.pid, "SIGTERM");
      this.#onEvent({
        at: this.#now(),
        type: "dataplane.worker-retired",
        reason: "data-plane-started",
        message: `data-plane worker ${extra.worker} (pid ${extra.pid}) is beyond the ${this.#workers.length} worker(s) configured: draining it`,
        data: { worker: extra.worker },
      });
    }
  }

  /**
   * Feed the data plane a newly applied spec: a new service's listener opens, a changed port
   * re-opens, changed traffic settings apply at once (members, weights and zone shares are kept).
   * A removed service keeps its listener, with no members, until {@link retire}: its instances
   * drain first.
   */
  setFleet(next: FleetSpec): void {
    this.#fleet = next;
    for (const service of next.services) {
      if (service.port === undefined) continue;
      const intent = this.#intent.get(service.name);
      if (intent === undefined) {
        this.#intent.set(service.name, {
          name: service.name,
          port: service.port,
          traffic: service.traffic,
          endpoints: [],
          weights: service.traffic.weights ?? null,
          zoneShares: null,
          shedding: null,
        });
      } else {
        intent.port = service.port;
        intent.traffic = service.traffic;
      }
    }
    this.#schedulePush();
  }

  /** Close the listener of a service no longer in the spec (its instances are stopped). */
  retire(service: string): void {
    if (this.#fleet.services.some((s) => s.name === service && s.port !== undefined)) return;
    if (this.#intent.delete(service)) this.#schedulePush();
  }

  hasProxy(service: string): boolean {
    return this.#intent.has(service);
  }

  setMembers(service: string, endpoints: Endpoint[]): void {
    const intent = this.#intent.get(service);
    if (intent === undefined) return;
    const key = (e: Endpoint) => `${e.instance}@${e.address}:${e.port}/${e.release}`;
    const current = intent.endpoints ?? this.#servedEndpoints(service);
    const before = new Set(current.map(key));
    if (
      intent.endpoints !== null &&
      before.size === endpoints.length &&
      endpoints.every((e) => before.has(key(e)))
    ) {
      return;
    }
    const staying = new Set(endpoints.map((e) => e.instance));
    const next = this.#version + 1;
    for (const e of current)
      if (!staying.has(e.instance)) this.#removedAt.set(`${service}/${e.instance}`, next);
    for (const e of endpoints) this.#removedAt.delete(`${service}/${e.instance}`);
    intent.endpoints = endpoints.map((e) => ({ ...e }));
    this.#schedulePush();
  }

  inFlight(service: string, instance: string): number {
    const removedAt = this.#removedAt.get(`${service}/${instance}`);
    let total = 0;
    for (const worker of this.#workers) {
      // Not yet confirmed out of membership there: requests may still be sent to it.
      if (removedAt !== undefined && worker.connected && worker.ackedVersion < removedAt)
        return Math.max(1, total);
      total += worker.inFlight(service, instance);
    }
    return total;
  }

  setWeights(service: string, weights: Record<string, number> | null): void {
    const intent = this.#intent.get(service);
    if (intent === undefined) throw new Error(`service ${service} has no traffic listener`);
    if (weights !== null) {
      const values = Object.values(weights);
      if (values.some((w) => !Number.isFinite(w) || w < 0) || !values.some((w) => w > 0)) {
        throw new HomeostatError(
          "HS_BAD_REQUEST",
          "weights must be finite, not negative, and one of them > 0",
        );
      }
    }
    intent.weights = weights === null ? null : { ...weights };
    this.#schedulePush();
  }

  setStores(stores: StoreSnapshot[]): void {
    this.#stores = stores;
    this.#schedulePush();
  }

  setShedding(service: string, shares: Readonly<SheddingShares> | null): void {
    const intent = this.#intent.get(service);
    if (intent === undefined) throw new Error(`service ${service} has no traffic listener`);
    if (shares !== null) {
      for (const [name, share] of Object.entries(shares)) {
        if (!(Number.isFinite(share) && share >= 0 && share <= 1)) {
          throw new HomeostatError(
            "HS_BAD_REQUEST",
            `shedding share ${name} must be in [0, 1], got ${share}`,
          );
        }
      }
    }
    intent.shedding = shares === null ? null : { ...shares };
    this.#schedulePush();
  }

  setZoneShares(service: string, shares: Readonly<Record<string, number>> | null): void {
    const intent = this.#intent.get(service);
    if (intent === undefined) return;
    intent.zoneShares = shares === null ? null : { ...shares };
    this.#schedulePush();
  }

  decided(): void {
    for (const intent of this.#intent.values()) {
      if (intent.weights === undefined) intent.weights = intent.traffic.weights ?? null;
      if (intent.zoneShares === undefined) intent.zoneShares = null;
      if (intent.shedding === undefined) intent.shedding = null;
    }
    this.#schedulePush();
  }

  /** Ejected by any worker: each worker's outlier detection sees only its own share of requests. */
  ejected(service: string): string[] {
    const all = new Set<string>();
    for (const worker of this.#workers) for (const name of worker.ejected(service)) all.add(name);
    return [...all];
  }

  state(): Record<string, unknown> {
    const first = this.#workers[0]!.reported;
    if (this.#workers.length === 1) return { ...first };
    const out: Record<string, unknown> = {};
    for (const service of Object.keys(first)) {
      out[service] = {
        ...first[service],
        workers: this.#workers.map((w) => ({ worker: w.index, pid: w.pid, ...w.reported[service] })),
      };
    }
    return out;
  }

  status(): DataPlaneStatus {
    const first = this.#workers[0]!;
    const identity = first.identity;
    const lost = this.#workers.map((w) => w.identity?.controllerLostAt ?? null).filter((at) => at !== null);
    return {
      mode: "process",
      pid: first.pid,
      connected: this.#workers.every((w) => w.connected),
      pushedVersion: Math.min(...this.#workers.map((w) => w.sentVersion)),
      appliedVersion: Math.min(...this.#workers.map((w) => w.identity?.appliedVersion ?? 0)),
      appliedIssuedAt: identity?.appliedIssuedAt ?? null,
      controllerLostAt: lost.length === 0 ? null : Math.min(...lost),
      generation: identity?.generation ?? 0,
      lastReportAt: first.lastReportAt,
      restarts: this.#workers.reduce((n, w) => n + w.restarts, 0),
      workers: this.#workers.map((w) => ({
        worker: w.index,
        pid: w.pid,
        connected: w.connected,
        appliedVersion: w.identity?.appliedVersion ?? 0,
        generation: w.identity?.generation ?? 0,
        restarts: w.restarts,
      })),
    };
  }

  async settled(timeoutMs = 5_000): Promise<boolean> {
    // A change made in this turn is pushed in a microtask: let it go out first.
    await Promise.resolve();
    const all = await Promise.all(this.#workers.map((w) => w.settled(timeoutMs)));
    return all.every(Boolean);
  }

  /** Every worker's counters; with several workers each series gets a `worker` label. */
  async metrics(): Promise<{ contentType: string; text: string }> {
    const parts = await Promise.all(this.#workers.map((w) => w.metrics()));
    if (parts.length === 1) return parts[0]!;
    return { contentType: parts[0]!.contentType, text: mergeExpositions(parts.map((p) => p.text)) };
  }

  /** Planned restart of every worker, one after the other (the others keep serving meanwhile). */
  async restart(): Promise<{
    from: number;
    to: number;
    workers: { worker: number; from: number; to: number }[];
  }> {
    const handed: { worker: number; from: number; to: number }[] = [];
    for (const worker of this.#workers) handed.push({ worker: worker.index, ...(await worker.restart()) });
    return { from: handed[0]!.from, to: handed[0]!.to, workers: handed };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const drain = Math.max(0, ...this.#fleet.services.map((s) => s.traffic.drainTimeoutMs));
    await Promise.all(this.#workers.map((w) => w.close(drain)));
  }

  /**
   * Leave every worker serving and let go of it, for the next controller to adopt (`homeostat
   * down --keep-fleet`): what was pushed last is applied first (up to 5 s), then the feeds close
   * without a stop.
   */
  async detach(): Promise<void> {
    if (this.#closed) return;
    await this.settled(5_000).catch(() => false);
    this.#closed = true;
    await Promise.all(this.#workers.map((w) => w.detach()));
  }

  /** The endpoints the data plane reported serving (an adopted one, before this controller decided). */
  #servedEndpoints(service: string): Endpoint[] {
    const rows = this.#workers[0]!.reported[service]?.endpoints;
    if (!Array.isArray(rows)) return [];
    return (
      rows as { instance?: string; draining?: boolean; release?: string; zone?: string; port?: number }[]
    )
      .filter((row) => row.draining !== true && typeof row.instance === "string")
      .map((row) => ({
        instance: row.instance as string,
        service,
        release: row.release ?? "",
        zone: row.zone ?? "",
        host: "",
        address: "127.0.0.1",
        port: row.port ?? 0,
      }));
  }

  #schedulePush(): void {
    if (this.#pushQueued || this.#closed) return;
    this.#pushQueued = true;
    // Changes made in one turn of the loop (a reconcile pass) go out as one snapshot.
    queueMicrotask(() => {
      this.#pushQueued = false;
      for (const worker of this.#workers) if (worker.connected) void worker.push();
    });
  }

  #snapshotFor(worker: DataPlaneWorker): Snapshot {
    // Above anything this worker has seen, from this controller or an earlier one.
    this.#version = Math.max(this.#version, worker.sentVersion, worker.ackedVersion) + 1;
    const services: ServiceSnapshot[] = [];
    // One lookup table per snapshot: a find per service would be services² at 1,000 services.
    const replicasOf = new Map(this.#fleet.services.map((s) => [s.name, s.replicas]));
    for (const intent of this.#intent.values()) {
      const replicas = replicasOf.get(intent.name);
      services.push({
        name: intent.name,
        port: intent.port,
        // Both banks: a deploy's or a failover's instances have a server slot waiting for them.
        ...(replicas === undefined ? {} : { slots: 2 * replicas }),
        traffic: perWorker(intent.traffic, this.#workers.length) as unknown as Record<string, unknown>,
        endpoints: intent.endpoints,
        ...(intent.weights === undefined ? {} : { weights: intent.weights }),
        ...(intent.zoneShares === undefined ? {} : { zoneShares: intent.zoneShares }),
        ...(intent.shedding === undefined ? {} : { shedding: intent.shedding }),
      });
    }
    const fencingToken = this.#store.fencingToken;
    return {
      version: this.#version,
      issuedAt: this.#now(),
      ...(fencingToken === null ? {} : { fencingToken }),
      fleet: this.#fleet.name,
      controller: { pid: process.pid, startedAt: this.#startedAt },
      services,
      faults: this.faults.list() as FaultRule[] as Snapshot["faults"],
      ...(this.#stores === undefined ? {} : { stores: this.#stores }),
    };
  }
}

/**
 * One worker's share of the service's settings: each worker enforces its limits alone, so the
 * per-instance cap, the queue and the retry budget's floor are divided between the workers
 * (rounded up: never below one), and outlier detection stays per worker (see docs/data-plane.md).
 */
export function perWorker(traffic: TrafficSpec, workers: number): TrafficSpec {
  // One HAProxy (worker 0's) serves a haproxy service whatever the number of workers.
  if (workers <= 1 || traffic.engine === "haproxy") return traffic;
  return {
    ...traffic,
    limits: {
      ...traffic.limits,
      maxConcurrentPerInstance: Math.max(1, Math.ceil(traffic.limits.maxConcurrentPerInstance / workers)),
      queueSize: Math.ceil(traffic.limits.queueSize / workers),
    },
    retries: {
      ...traffic.retries,
      budget: { ...traffic.retries.budget, minPerSecond: traffic.retries.budget.minPerSecond / workers },
    },
  };
}

/**
 * Prometheus expositions of several workers as one: every sample gets a `worker` label; the
 * HELP and TYPE lines are kept once.
 */
export function mergeExpositions(texts: readonly string[]): string {
  const seenMeta = new Set<string>();
  const out: string[] = [];
  texts.forEach((text, worker) => {
    for (const line of text.split("\n")) {
      if (line === "") continue;
      if (line.startsWith("#")) {
        if (!seenMeta.has(line)) {
          seenMeta.add(line);
          out.push(line);
        }
        continue;
      }
      const brace = line.indexOf("{");
      const space = line.indexOf(" ");
      if (brace !== -1 && brace < space) {
        out.push(`${line.slice(0, brace + 1)}worker="${worker}",${line.slice(brace + 1)}`.replace(",}", "}"));
      } else {
        out.push(`${line.slice(0, space)}{worker="${worker}"}${line.slice(space)}`);
      }
    }
  });
  return `${out.join("\n")}\n`;
}
