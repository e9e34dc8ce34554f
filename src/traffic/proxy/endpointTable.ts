/**
 * Membership and drain bookkeeping: the endpoints taking new requests, and those removed but
 * still finishing theirs. An endpoint that leaves (or changes address or release) is drained, never
 * cut: its in-flight requests complete, up to the drain timeout.
 */

import type { TrafficSpec } from "../../spec/model.ts";
import type { Endpoint } from "../contracts.ts";
import { EndpointPool, INITIAL_ADAPTIVE_LIMIT } from "./endpointPool.ts";

/** One endpoint as the API shows it. */
export interface EndpointRow {
  instance: string;
  release: string;
  zone: string;
  port: number;
  inFlight: number;
  /** Attempts waiting for a response head. */
  waiting: number;
  /** This endpoint's share of the service's concurrency limit. */
  limit: number;
  adaptiveLimit: number | null;
  draining: boolean;
}

export class EndpointTable {
  private readonly active = new Map<string, EndpointPool>();
  private readonly draining = new Set<EndpointPool>();
  /** Σ of the active endpoints' limits; null when it must be recomputed. */
  private capacityCache: number | null = 0;
  private readonly onCapacityChange: () => void;

  /** @param onCapacityChange called when the service's concurrency limit may have changed */
  constructor(onCapacityChange: () => void) {
    this.onCapacityChange = onCapacityChange;
  }

  /** In-flight attempts to an active endpoint (what the balancer's least-loaded choice compares). */
  readonly inFlightOf = (instance: string): number => this.active.get(instance)?.inFlight ?? 0;

  get size(): number {
    return this.active.size;
  }

  get(instance: string): EndpointPool | undefined {
    return this.active.get(instance);
  }

  /** The endpoints taking new requests. */
  activePools(): IterableIterator<EndpointPool> {
    return this.active.values();
  }

  /** Replace the membership. Leaving (or changed) endpoints drain for up to `drainTimeoutMs`. */
  update(endpoints: readonly Endpoint[], traffic: TrafficSpec): void {
    const keep = new Set<string>();
    const start = this.peerAdaptiveLimit();
    for (const endpoint of endpoints) {
      keep.add(endpoint.instance);
      const current = this.active.get(endpoint.instance);
      if (current !== undefined && sameTarget(current, endpoint, traffic.limits)) continue;
      if (current !== undefined) this.drain(current, traffic.drainTimeoutMs);
      this.active.set(
        endpoint.instance,
        new EndpointPool({ ...endpoint }, traffic.limits, this.limitChanged, start),
      );
    }
    for (const [instance, pool] of this.active) {
      if (!keep.has(instance)) this.drain(pool, traffic.drainTimeoutMs);
    }
    this.limitChanged();
  }

  /** The service's concurrency limit: Σ over active endpoints of min(hard cap, adaptive limit). */
  capacity(): number {
    if (this.capacityCache === null) {
      let total = 0;
      for (const pool of this.active.values()) total += pool.limit;
      this.capacityCache = total;
    }
    return this.capacityCache;
  }

  /** Requests in flight to `instance`, draining copies included (what a stop should wait for). */
  inFlightTotal(instance: string): number {
    let total = this.active.get(instance)?.busy ?? 0;
    for (const pool of this.draining) if (pool.endpoint.instance === instance) total += pool.busy;
    return total;
  }

  /** Drain every endpoint (the proxy is closing); resolves when all pools are closed. */
  drainAll(timeoutMs: number): Promise<void> {
    for (const pool of this.active.values()) this.drain(pool, timeoutMs);
    this.limitChanged();
    return Promise.all([...this.draining].map((pool) => pool.drain(timeoutMs))).then(() => {});
  }

  /** Cut every pool now. */
  cutAll(): Promise<void> {
    const all = [...this.active.values(), ...this.draining];
    this.active.clear();
    this.limitChanged();
    return Promise.all(all.map((pool) => pool.cut())).then(() => {});
  }

  describe(): EndpointRow[] {
    const out: EndpointRow[] = [];
    const row = (pool: EndpointPool): EndpointRow => ({
      instance: pool.endpoint.instance,
      release: pool.endpoint.release,
      zone: pool.endpoint.zone,
      port: pool.endpoint.port,
      inFlight: pool.inFlight,
      waiting: pool.waiting,
      limit: pool.limit,
      adaptiveLimit: pool.adaptive?.limit ?? null,
      draining: pool.draining,
    });
    for (const pool of this.active.values()) out.push(row(pool));
    for (const pool of this.draining) out.push(row(pool));
    return out;
  }

  /**
   * Where a joining endpoint's adaptive limit starts: the mean adaptive limit of the endpoints
   * active before the update (what the service has learnt its instances take; an endpoint given a
   * fresh pool by new settings keeps what it had learnt), or the default when there is none. A
   * replacement that started at 20 while its peers carry 40 would add too little capacity just
   * when it is needed, after a failure.
   */
  private peerAdaptiveLimit(): number {
    let total = 0;
    let count = 0;
    for (const pool of this.active.values()) {
      if (pool.adaptive === null) continue;
      total += pool.adaptive.limit;
      count++;
    }
    return count === 0 ? INITIAL_ADAPTIVE_LIMIT : Math.round(total / count);
  }

  private drain(pool: EndpointPool, timeoutMs: number): void {
    if (this.active.get(pool.endpoint.instance) === pool) this.active.delete(pool.endpoint.instance);
    this.draining.add(pool);
    void pool.drain(timeoutMs).then(() => this.draining.delete(pool));
  }

  private readonly limitChanged = (): void => {
    this.capacityCache = null;
    this.onCapacityChange();
  };
}

/** Same process at the same address, under the same limits: the pool (and its limit) carries on. */
function sameTarget(pool: EndpointPool, endpoint: Endpoint, limits: TrafficSpec["limits"]): boolean {
  const e = pool.endpoint;
  return (
    e.host === endpoint.host &&
    e.address === endpoint.address &&
    e.port === endpoint.port &&
    e.release === endpoint.release &&
    e.zone === endpoint.zone &&
    pool.maxConcurrent === limits.maxConcurrentPerInstance &&
    (pool.adaptive !== null) === limits.adaptive
  );
}
