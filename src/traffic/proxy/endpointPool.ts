/**
 * One endpoint as the proxy holds it: its keep-alive connection pool, the requests in flight to
 * it, its adaptive concurrency limit, and its drain (a removed endpoint finishes what it has, then
 * its connections close; at the drain deadline whatever is left is cut).
 */

import { Pool } from "undici";
import type { TrafficSpec } from "../../spec/model.ts";
import type { Endpoint } from "../contracts.ts";
import { AdaptiveLimit } from "../policies/adaptiveLimit.ts";
import { processLoopLag } from "../policies/loopLag.ts";

/**
 * Gradient2's starting point: a new instance proves it can take more before it gets more. Used
 * when there is no other instance to learn from (see {@link EndpointPool} `initialLimit`).
 */
export const INITIAL_ADAPTIVE_LIMIT = 20;
/** Below undici's default (4 s) and below Node's server keep-alive (5 s): we close idle sockets first. */
const KEEP_ALIVE_MS = 4_000;

export class EndpointPool {
  readonly endpoint: Endpoint;
  readonly pool: Pool;
  /** Requests (attempts) in flight to this endpoint, from dispatch until undici is done with them. */
  inFlight = 0;
  /** Attempts waiting for a response head (what stall detection looks at; a streaming answer is not waiting). */
  waiting = 0;
  /** `performance.now()` since which attempts have waited here without an answer (meaningful while `waiting` > 0). */
  private silentSince = 0;
  /** `performance.now()` of the last response head from this endpoint; -Infinity before the first. */
  lastAnswerAt = Number.NEGATIVE_INFINITY;
  /** Adapts below `maxConcurrent` when `limits.adaptive`; null otherwise. */
  readonly adaptive: AdaptiveLimit | null;
  readonly maxConcurrent: number;
  /** Open upgrade tunnels, by their closer. */
  private readonly tunnels = new Set<() => void>();
  private drainState: { timer: NodeJS.Timeout | null; done: Promise<void>; resolve: () => void } | null =
    null;

  /**
   * @param initialLimit where the adaptive limit starts (capped at the hard limit): the other
   *   instances' current limit when there are some, so a replacement joining a loaded service is
   *   not the bottleneck; {@link INITIAL_ADAPTIVE_LIMIT} otherwise
   */
  constructor(
    endpoint: Endpoint,
    limits: TrafficSpec["limits"],
    onLimitChange: () => void,
    initialLimit: number = INITIAL_ADAPTIVE_LIMIT,
  ) {
    this.endpoint = endpoint;
    this.maxConcurrent = limits.maxConcurrentPerInstance;
    if (limits.adaptive) {
      this.adaptive = new AdaptiveLimit({
        initial: Math.max(1, Math.min(Math.floor(initialLimit), this.maxConcurrent)),
        min: 1,
        max: this.maxConcurrent,
        onChange: onLimitChange,
        // The proxy's own event-loop lag is not the upstream's latency (see LoopLag).
        ownLagMs: processLoopLag.lagMs,
      });
      processLoopLag.acquire();
    } else {
      this.adaptive = null;
    }
    this.pool = new Pool(`http://${endpoint.address}:${endpoint.port}`, {
      connections: this.maxConcurrent,
      pipelining: 1,
      keepAliveTimeout: KEEP_ALIVE_MS,
    });
    // A pool emits `connectionError` for every failed connect: the attempt already reports it.
    this.pool.on("connectionError", () => {});
  }

  /** This endpoint's share of the service's concurrency limit. */
  get limit(): number {
    return this.adaptive === null ? this.maxConcurrent : Math.min(this.maxConcurrent, this.adaptive.limit);
  }

  get draining(): boolean {
    return this.drainState !== null;
  }

  /** In-flight attempts plus open tunnels: what a drain waits for. */
  get busy(): number {
    return this.inFlight + this.tunnels.size;
  }

  begin(): void {
    this.inFlight++;
  }

  /** An attempt starts waiting for its response head (`now`: `performance.now()`). */
  waitStarted(now: number): void {
    if (this.waiting++ === 0) this.silentSince = now;
  }

  /** An attempt stopped waiting: `answered` with a response head, or not (failed, cancelled). */
  waitEnded(now: number, answered: boolean): void {
    this.waiting--;
    if (answered) {
      this.silentSince = now;
      this.lastAnswerAt = now;
    }
  }

  /**
   * How long attempts have waited here with no answer (0 when none waits): since the last answer,
   * or since the first of them when the endpoint was idle before (see stallDetection.ts).
   */
  silentMs(now: number): number {
    return this.waiting > 0 ? now - this.silentSince : 0;
  }

  /** One attempt is over; `rttMs`/`dropped` feed the adaptive limit. */
  end(rttMs: number, dropped: boolean): void {
    this.adaptive?.onSample(rttMs, this.inFlight, dropped);
    this.inFlight--;
    this.closeIfDrained();
  }

  /** An attempt that never reached the adaptive limit's concern (aborted by the client). */
  endQuietly(): void {
    this.inFlight--;
    this.closeIfDrained();
  }

  addTunnel(close: () => void): void {
    this.tunnels.add(close);
  }

  removeTunnel(close: () => void): void {
    this.tunnels.delete(close);
    this.closeIfDrained();
  }

  /**
   * Stop taking work: close the pool once nothing is in flight, or destroy it (cutting whatever
   * is left) after `timeoutMs`. Resolves when the pool is closed. Idempotent.
   */
  drain(timeoutMs: number): Promise<void> {
    if (this.drainState !== null) return this.drainState.done;
    let resolve!: () => void;
    const done = new Promise<void>((r) => {
      resolve = r;
    });
    const timer = setTimeout(() => void this.cut(), timeoutMs);
    this.drainState = { timer, done, resolve };
    if (this.adaptive !== null) void done.then(() => processLoopLag.release());
    this.closeIfDrained();
    return done;
  }

  /** Cut everything now (drain deadline, or the proxy closing). */
  cut(): Promise<void> {
    const done = this.drain(0);
    const state = this.drainState!;
    // Already closing gracefully (nothing was in flight): nothing to cut.
    if (state.timer === null) return done;
    clearTimeout(state.timer);
    state.timer = null;
    for (const close of this.tunnels) close();
    this.tunnels.clear();
    this.pool.destroy().then(state.resolve, state.resolve);
    return done;
  }

  private closeIfDrained(): void {
    const state = this.drainState;
    if (state === null || state.timer === null || this.busy > 0) return;
    clearTimeout(state.timer);
    state.timer = null;
    this.pool.close().then(state.resolve, state.resolve);
  }
}
