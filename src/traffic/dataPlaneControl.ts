/**
 * What the controller asks of a data plane, wherever it runs: in the controller's own process
 * (`DataPlane`, the embedded engine used by tests and `--data-plane in-process`) or in a process
 * of its own fed over the config feed (`DataPlaneClient`). Writes are fire-and-forget: the data
 * plane applies them in order; reads answer from the latest picture the controller has.
 */

import type { StoreSnapshot } from "../dataplane/feedProtocol.ts";
import type { Endpoint, SheddingShares } from "./contracts.ts";
import type { FaultRegistry } from "./faults.ts";
import type { DecisionWindows } from "./stats/index.ts";

/** How the data plane serves now, from its own side (null fields: not known yet). */
export interface DataPlaneStatus {
  mode: "process" | "in-process";
  /** Data-plane process id (the controller's own in-process). */
  pid: number | null;
  /** Connected to the controller over the feed now. */
  connected: boolean;
  /** The snapshot version the controller last pushed, and the one the data plane acknowledged. */
  pushedVersion: number;
  appliedVersion: number;
  /** Epoch ms when the snapshot it serves with was issued. */
  appliedIssuedAt: number | null;
  /** Since when (epoch ms) the data plane has had no controller, as it reported (null: it has one). */
  controllerLostAt: number | null;
  /** Processes that took over the listeners by planned handover before this one. */
  generation: number;
  /** Epoch ms of the last report from the data plane. */
  lastReportAt: number | null;
  /** Times the controller restarted a data-plane process that died. */
  restarts: number;
  /** With several worker processes, each one (worker 0 is the one the fields above describe). */
  workers?: {
    worker: number;
    pid: number | null;
    connected: boolean;
    appliedVersion: number;
    generation: number;
    restarts: number;
  }[];
}

export interface DataPlaneControl {
  /** Decision windows (request and attempt figures, arrivals by criticality); read only. */
  readonly stats: DecisionWindows;
  /** Injected faults, owned by the controller; a change reaches the data plane with the next snapshot. */
  readonly faults: FaultRegistry;
  hasProxy(service: string): boolean;
  /** The endpoints that should receive `service`'s traffic now (its ready instances). */
  setMembers(service: string, endpoints: Endpoint[]): void;
  /**
   * Requests in flight to `instance`, as last known. After {@link setMembers} removed it, at least 1
   * until the data plane has confirmed the removal, so a drain never ends early.
   */
  inFlight(service: string, instance: string): number;
  setWeights(service: string, weights: Record<string, number> | null): void;
  setShedding(service: string, shares: Readonly<SheddingShares> | null): void;
  setZoneShares(service: string, shares: Readonly<Record<string, number>> | null): void;
  /**
   * Replicated stores' stable endpoints (docs/redis.md): exactly these, each forwarding to its
   * primary (null: none now) at its epoch. Optional: a data plane without stores need not serve them.
   */
  setStores?(stores: StoreSnapshot[]): void;
  /** Instances of `service` ejected by passive outlier detection now (as last known). */
  ejected(service: string): string[];
  /** Per service, the listener's state for the API. */
  state(): Record<string, unknown>;
  status(): DataPlaneStatus;
  /**
   * The controller has a full picture (adopted instances judged, rollouts and failovers resumed):
   * whatever it has not set yet is now "none" (the spec's weights, no zone shift, no shedding),
   * instead of "keep what an earlier controller left".
   */
  decided(): void;
  /**
   * True once the data plane serves every change made so far; false when it has not confirmed
   * them within `timeoutMs` (restarting, unreachable: they apply when it is back).
   */
  settled(timeoutMs?: number): Promise<boolean>;
  /** The Prometheus text of the data plane's counters. */
  metrics(): Promise<{ contentType: string; text: string }>;
  /** Stop serving: close listeners, drain, and (for a process) stop it. */
  close(): Promise<void>;
}
