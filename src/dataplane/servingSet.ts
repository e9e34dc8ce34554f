/**
 * The listeners a data-plane process serves, brought to match a snapshot: a proxy per service
 * (opened, re-opened on a new port, closed when gone), its traffic settings, members, release
 * weights, zone shares and shedding, and the fault rules. Today's `src/traffic/` proxies, unchanged:
 * only where they run and who tells them what changed.
 */

import type { TrafficSpec } from "../spec/model.ts";
import type { Endpoint, SheddingShares } from "../traffic/contracts.ts";
import { FaultRegistry, type FaultRule } from "../traffic/faults.ts";
import { ServiceProxy, type TrafficEvent } from "../traffic/proxy/serviceProxy.ts";
import { TrafficStats } from "../traffic/stats/index.ts";
import type { ServiceSnapshot, Snapshot } from "./feedProtocol.ts";

interface Serving {
  proxy: ServiceProxy;
  port: number;
  /** JSON of what was last applied, to skip what did not change. */
  traffic: string;
  endpoints: string;
  /** The endpoints served now (what a snapshot without endpoints keeps). */
  served: Endpoint[];
  weights: string;
  zoneShares: string;
  shedding: string;
  /** What is served now, for a snapshot that leaves them out (see ServiceSnapshot). */
  kept: Pick<ServiceSnapshot, "weights" | "zoneShares" | "shedding">;
}

export class ServingSet {
  readonly stats = new TrafficStats();
  readonly faults = new FaultRegistry();
  readonly #serving = new Map<string, Serving>();
  readonly #onEvent: (service: string, event: TrafficEvent) => void;
  /** Listening sockets inherited from a predecessor, by port; each is used once. */
  readonly #inherited: Map<number, number>;

  readonly #reusePort: boolean;

  constructor(options: {
    onEvent: (service: string, event: TrafficEvent) => void;
    inheritedListeners?: ReadonlyMap<number, number>;
    /** New listeners share their port with the other workers (SO_REUSEPORT). */
    reusePort?: boolean;
  }) {
    this.#onEvent = options.onEvent;
    this.#reusePort = options.reusePort ?? false;
    this.#inherited = new Map(options.inheritedListeners ?? []);
  }

  /**
   * Serve as `snapshot` says. Opens listeners before changing anything else; a port that cannot
   * be bound fails the whole call after closing what this call opened (what was served before
   * keeps being served).
   */
  async apply(snapshot: Snapshot): Promise<void> {
    const opened: string[] = [];
    const replaced = new Map<string, Serving>();
    try {
      for (const service of snapshot.services) {
        const current = this.#serving.get(service.name);
        if (current !== undefined && current.port === service.port) continue;
        const proxy = new ServiceProxy({
          service: service.name,
          port: service.port,
          traffic: service.traffic as unknown as TrafficSpec,
          stats: this.stats,
          faults: this.faults,
          onEvent: (e) => this.#onEvent(service.name, e),
          reusePort: this.#reusePort,
          ...this.#inheritedFor(service.port),
        });
        await proxy.listen();
        opened.push(service.name);
        if (current !== undefined) replaced.set(service.name, current);
        this.#serving.set(service.name, {
          proxy,
          port: service.port,
          traffic: JSON.stringify(service.traffic),
          endpoints: "",
          served: current?.served ?? [],
          weights: "",
          zoneShares: "",
          shedding: "",
          kept: current?.kept ?? {},
        });
      }
    } catch (error) {
      for (const name of opened) {
        const serving = this.#serving.get(name);
        if (serving !== undefined) void serving.proxy.close();
        const previous = replaced.get(name);
        if (previous === undefined) this.#serving.delete(name);
        else this.#serving.set(name, previous);
      }
      throw error;
    }
    for (const previous of replaced.values()) void previous.proxy.close();
    const wanted = new Set(snapshot.services.map((s) => s.name));
    for (const [name, serving] of this.#serving) {
      if (wanted.has(name)) continue;
      this.#serving.delete(name);
      void serving.proxy.close();
    }
    for (const service of snapshot.services) this.#update(this.#serving.get(service.name)!, service);
    this.faults.replace(snapshot.faults as FaultRule[]);
  }

  /** `snapshot` as served: services without endpoints get the ones they keep (for persisting). */
  effective(snapshot: Snapshot): Snapshot {
    return {
      ...snapshot,
      services: snapshot.services.map((s) => {
        const serving = this.#serving.get(s.name);
        return {
          ...s,
          endpoints: s.endpoints ?? serving?.served ?? [],
          weights: s.weights === undefined ? (serving?.kept.weights ?? null) : s.weights,
          zoneShares: s.zoneShares === undefined ? (serving?.kept.zoneShares ?? null) : s.zoneShares,
          shedding: s.shedding === undefined ? (serving?.kept.shedding ?? null) : s.shedding,
        };
      }),
    };
  }

  /** Drop every fault rule (the controller that set them is gone). */
  clearFaults(): void {
    this.faults.clear();
  }

  services(): string[] {
    return [...this.#serving.keys()];
  }

  /** Per service, the listener's state (as the API shows it). */
  state(): Record<string, Record<string, unknown>> {
    const out: Record<string, Record<string, unknown>> = {};
    for (const [name, serving] of this.#serving) out[name] = serving.proxy.state();
    return out;
  }

  /** Listening descriptors by port, to hand to a successor. */
  listeningFds(): Map<number, number> {
    const fds = new Map<number, number>();
    for (const serving of this.#serving.values()) {
      const fd = serving.proxy.listeningFd();
      if (fd !== null) fds.set(serving.port, fd);
    }
    return fds;
  }

  /** Stop accepting here (a successor holds the sockets), drain, close. */
  async handOff(): Promise<void> {
    await Promise.allSettled([...this.#serving.values()].map((s) => s.proxy.handOff()));
    this.#serving.clear();
  }

  async close(): Promise<void> {
    this.faults.clear();
    await Promise.allSettled([...this.#serving.values()].map((s) => s.proxy.close()));
    this.#serving.clear();
  }

  #inheritedFor(port: number): { listenFd?: number } {
    const fd = this.#inherited.get(port);
    if (fd === undefined) return {};
    this.#inherited.delete(port);
    return { listenFd: fd };
  }

  #update(serving: Serving, service: ServiceSnapshot): void {
    const { proxy } = serving;
    const traffic = JSON.stringify(service.traffic);
    if (traffic !== serving.traffic) {
      proxy.setTraffic(service.traffic as unknown as TrafficSpec);
      serving.traffic = traffic;
      serving.weights = ""; // setTraffic may have replaced the weights: apply them again
    }
    const endpoints = JSON.stringify(service.endpoints);
    if (service.endpoints === null) {
      // Keep what is served; a listener new on this port takes the endpoints of the one it replaced.
      if (serving.endpoints === "" && serving.served.length > 0) {
        proxy.setEndpoints(serving.served);
        serving.endpoints = JSON.stringify(serving.served);
      }
    } else if (endpoints !== serving.endpoints) {
      proxy.setEndpoints(service.endpoints as Endpoint[]);
      serving.endpoints = endpoints;
      serving.served = service.endpoints as Endpoint[];
    }
    // A field the snapshot leaves out keeps what is served (a listener new on this port takes
    // the values of the one it replaced).
    const weights = service.weights === undefined ? serving.kept.weights : service.weights;
    if (weights !== undefined && JSON.stringify(weights) !== serving.weights) {
      proxy.setWeights(weights);
      serving.weights = JSON.stringify(weights);
      serving.kept.weights = weights;
    }
    const zoneShares = service.zoneShares === undefined ? serving.kept.zoneShares : service.zoneShares;
    if (zoneShares !== undefined && JSON.stringify(zoneShares) !== serving.zoneShares) {
      proxy.setZoneShares(zoneShares);
      serving.zoneShares = JSON.stringify(zoneShares);
      serving.kept.zoneShares = zoneShares;
    }
    const shedding = service.shedding === undefined ? serving.kept.shedding : service.shedding;
    if (shedding !== undefined && JSON.stringify(shedding) !== serving.shedding) {
      proxy.setShedding(shedding as SheddingShares | null);
      serving.shedding = JSON.stringify(shedding);
      serving.kept.shedding = shedding;
    }
  }
}
