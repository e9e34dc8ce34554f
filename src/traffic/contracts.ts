/**
 * Contracts between the data plane's layers (listener → admission → balancer → per-instance pool
 * → policies), so each is replaceable and tested alone. See docs/data-plane.md.
 */

/** One ready instance, as the data plane sees it. */
export interface Endpoint {
  instance: string;
  service: string;
  release: string;
  zone: string;
  /** The failure-domain label of the host (e.g. "host-a"), not an address. */
  host: string;
  /** Where to connect: 127.0.0.1 for the local process driver. */
  address: string;
  port: number;
}

/** Request criticality, from the `x-homeostat-criticality` header (default `default`). */
export type Criticality = "critical" | "default" | "sheddable";
export const CRITICALITY_HEADER = "x-homeostat-criticality";
export const CRITICALITIES: readonly Criticality[] = ["critical", "default", "sheddable"];

/** Outcome of one attempt against one endpoint: what passive outlier detection and stats count. */
export type AttemptOutcome = "success" | "http-5xx" | "connect-error" | "timeout" | "reset";

/** Why the balancer chose what it chose (for stats, logs and `x-homeostat-*` debug headers). */
export type PickResult =
  | { ok: true; endpoint: Endpoint; priority: number; panic: boolean }
  | {
      ok: false;
      /** `no-endpoints`: nothing ready; `all-ejected`: fail-closed panic with no healthy endpoint left. */
      reason: "no-endpoints" | "all-ejected";
    };

/** Chooses an endpoint for each attempt; learns from outcomes (passive outlier detection). */
export interface EndpointPicker {
  /**
   * @param now epoch ms
   * @param random uniform [0, 1)
   * @param exclude instances already tried for this request (retries go elsewhere when possible)
   * @param inFlight current in-flight requests per instance (for least-loaded choice)
   */
  pick(
    now: number,
    random: () => number,
    exclude: ReadonlySet<string>,
    inFlight: (instance: string) => number,
  ): PickResult;
  report(instance: string, outcome: AttemptOutcome, now: number): void;
}

/** Admission control with criticality: admits, queues (bounded, with timeout) or sheds. */
export interface Admission {
  /**
   * Resolves with a permit once admitted, or with a rejection (never rejects the promise).
   * `signal` aborts a queued wait (client went away).
   */
  acquire(criticality: Criticality, signal?: AbortSignal): Promise<Permit | Rejection>;
}

export interface Permit {
  admitted: true;
  /** Report completion: the latency feeds the adaptive limit; `dropped` for failures that say nothing about latency. */
  release(outcome: { latencyMs: number; dropped: boolean }): void;
}

export interface Rejection {
  admitted: false;
  reason: "over-limit" | "queue-full" | "queue-timeout" | "aborted";
  /** Seconds for the `Retry-After` header. */
  retryAfterSeconds: number;
}

/**
 * Why the proxy refused a request before it reached an upstream: admission's reasons, or
 * `failover-shed` (the failover shedding gate, which runs before admission).
 */
export type ShedReason = Rejection["reason"] | "failover-shed";

/**
 * The failover shedding gate's shares: each is the probability in [0, 1] that a request of that
 * criticality is refused before admission. `critical` is never shed by the gate.
 */
export interface SheddingShares {
  sheddable: number;
  default: number;
}
