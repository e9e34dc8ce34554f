/**
 * The embedded data plane, in the controller's own process (`--data-plane in-process`, and the
 * engine inside the data-plane process): one proxy per service that has a front `port`, the
 * shared traffic statistics and the fault registry. Membership (which instances get traffic) is
 * pushed here by the controller from observed health; instances are taken out of membership
 * before they are stopped, so their in-flight requests drain instead of failing.
 */

import type { StoreSnapshot } from "../dataplane/feedProtocol.ts";
import { StoreEndpoints } from "../dataplane/redisEndpoint.ts";
import type { FleetSpec } from "../spec/model.ts";
import type { Endpoint, SheddingShares } from "./contracts.ts";
import type { DataPlaneControl, DataPlaneStatus } from "./dataPlaneControl.ts";
import { FaultRegistry } from "./faults.ts";
import { ServiceProxy } from "./proxy/serviceProxy.ts";
import { TrafficStats } from "./stats/index.ts";

export { endpointOf } from "./endpointOf.ts";

export interface DataPlaneEvent {
  type: string;
  reason: string;
  message: string;
  service: string;
  data?: object;
}

export class DataPlane implements DataPlaneControl {
  readonly stats: TrafficStats;
  readonly faults = new FaultRegistry();
  private readonly proxies = new Map<string, ServiceProxy>();
  private readonly members = new Map<string, Endpoint[]>();
  private readonly fleet: FleetSpec;
  private readonly onEvent: (event: DataPlaneEvent) => void;
  /** Replicated stores' endpoints, served in this process too (`--data-plane in-process`). */
  private readonly storeEndpoints = new StoreEndpoints((type, message, data) =>
    this.onEvent({ type, reason: "redis-endpoint", message, service: String(data.store ?? ""), data }),
  );
  private storesApplied: Promise<void> = Promise.resolve();

  constructor(fleet: FleetSpec, onEvent: (event: DataPlaneEvent) => void = () => {}) {
    this.fleet = fleet;
    this.onEvent = onEvent;
    this.stats = new TrafficStats();
  }

  /** Bind every service's front port. Any failure closes what was opened and rethrows. */
  async listen(): Promise<void> {
    try {
      for (const service of this.fleet.services) {
        if (service.port === undefined) continue;
        const proxy = new ServiceProxy({
          service: service.name,
          port: service.port,
          traffic: service.traffic,
          stats: this.stats,
          faults: this.faults,
          onEvent: (e) => this.onEvent({ ...e, service: service.name }),
        });
        await proxy.listen();
        this.proxies.set(service.name, proxy);
      }
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  /** The endpoints that should receive `service`'s traffic now (its ready instances). */
  setMembers(service: string, endpoints: Endpoint[]): void {
    const previous = this.members.get(service);
    if (previous && sameMembers(previous, endpoints)) return;
    this.members.set(service, endpoints);
    this.proxies.get(service)?.setEndpoints(endpoints);
  }

  hasProxy(service: string): boolean {
    return this.proxies.has(service);
  }

  /** Requests currently in flight to `instance` (0 when it has no proxy). */
  inFlight(service: string, instance: string): number {
    return this.proxies.get(service)?.inFlight(instance) ?? 0;
  }

  setWeights(service: string, weights: Record<string, number> | null): void {
    const proxy = this.proxies.get(service);
    if (!proxy) throw new Error(`service ${service} has no traffic listener`);
    proxy.setWeights(weights);
  }

  /**
   * The failover shedding gate of `service` (see ServiceProxy.setShedding); null removes it.
   * @throws Error when the service has no traffic listener
   * @throws HomeostatError HS_BAD_REQUEST when a share is not a finite number in [0, 1]
   */
  setShedding(service: string, shares: Readonly<SheddingShares> | null): void {
    const proxy = this.proxies.get(service);
    if (!proxy) throw new Error(`service ${service} has no traffic listener`);
    proxy.setShedding(shares);
  }

  /**
   * Shift `service`'s traffic out of (or back into) zones: each listed zone keeps `share` (0..1)
   * of its normal traffic. A service without a proxy is left alone.
   */
  setZoneShares(service: string, shares: Readonly<Record<string, number>> | null): void {
    this.proxies.get(service)?.setZoneShares(shares);
  }

  /** Instances of `service` ejected by passive outlier detection now (none without a proxy). */
  ejected(service: string): string[] {
    return this.proxies.get(service)?.ejectedInstances() ?? [];
  }

  status(): DataPlaneStatus {
    return {
      mode: "in-process",
      pid: process.pid,
      connected: true,
      pushedVersion: 0,
      appliedVersion: 0,
      appliedIssuedAt: null,
      controllerLostAt: null,
      generation: 0,
      lastReportAt: null,
      restarts: 0,
    };
  }

  /** Nothing is left undecided here: this data plane starts with its controller. */
  decided(): void {}

  /** Changes apply synchronously here. */
  setStores(stores: StoreSnapshot[]): void {
    this.storesApplied = this.storesApplied
      .then(() => this.storeEndpoints.apply(stores))
      .catch((error: unknown) =>
        this.onEvent({
          type: "redis.endpoint-failed",
          reason: "redis-endpoint",
          message: `store endpoints not applied: ${(error as Error).message}`,
          service: "",
        }),
      );
  }

  async settled(): Promise<boolean> {
    await this.storesApplied;
    return true;
  }

  async metrics(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.stats.contentType, text: await this.stats.metricsText() };
  }

  state(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [name, proxy] of this.proxies) out[name] = proxy.state();
    return out;
  }

  /** Stop listening, drain, and revert every fault (faults never outlive the controller). */
  async close(): Promise<void> {
    this.faults.clear();
    await Promise.allSettled([
      ...[...this.proxies.values()].map((p) => p.close()),
      this.storeEndpoints.close(),
    ]);
    this.proxies.clear();
  }
}

function sameMembers(a: Endpoint[], b: Endpoint[]): boolean {
  if (a.length !== b.length) return false;
  const key = (e: Endpoint) => `${e.instance}@${e.address}:${e.port}/${e.release}`;
  const left = new Set(a.map(key));
  return b.every((e) => left.has(key(e)));
}
