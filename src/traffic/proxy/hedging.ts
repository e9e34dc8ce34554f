/**
 * One service's hedging: who may be hedged, after how long, and what it cost. The request path
 * asks {@link Hedging.delayFor} once per request and arms a {@link HedgeTimer} when it gets a
 * delay; the rest happens only for the few requests still waiting when it fires.
 *
 * Only idempotent requests with a replayable body are hedged, the same notion as the retry rules
 * (retryPolicy.ts): a hedge sends the request a second time while the first may still be acted
 * on, so a POST or a PATCH (or a streamed body, which cannot be sent twice) never is.
 */

import type { TrafficSpec } from "../../spec/model.ts";
import { HedgeDelay } from "../policies/hedgeDelay.ts";
import { isIdempotent } from "./retryPolicy.ts";

/** What the state shows of a service's hedging. */
export interface HedgingStats {
  enabled: boolean;
  /** The hedge delay now (ms). */
  delayMs: number;
  /** Successful attempts the automatic delay is learnt from now. */
  samples: number;
  /** Hedges sent since the proxy started. */
  sent: number;
  /** Hedges whose answer came first. */
  won: number;
  /** Hedges not sent because the retry budget refused them. */
  refusedByBudget: number;
  /** Attempts cancelled because the other attempt of their request answered first. */
  cancelled: number;
}

export class Hedging {
  private settings: TrafficSpec["hedging"];
  private maxAttempts: number;
  private perTryTimeoutMs: number;
  private readonly delay: HedgeDelay;
  sent = 0;
  won = 0;
  refusedByBudget = 0;
  cancelled = 0;

  constructor(traffic: TrafficSpec) {
    this.settings = traffic.hedging;
    this.maxAttempts = traffic.retries.maxAttempts;
    this.perTryTimeoutMs = traffic.retries.perTryTimeoutMs;
    this.delay = new HedgeDelay(traffic.hedging);
  }

  /** New settings, from the next request on (the latency learnt so far is kept). */
  configure(traffic: TrafficSpec): void {
    this.settings = traffic.hedging;
    this.maxAttempts = traffic.retries.maxAttempts;
    this.perTryTimeoutMs = traffic.retries.perTryTimeoutMs;
    this.delay.configure(traffic.hedging);
  }

  /** Hedges one request may send. */
  get maxPerRequest(): number {
    return this.settings.maxPerRequest;
  }

  /** The hedge delay now (ms), whether or not hedging is on (stall detection scales with it). */
  get delayMs(): number {
    return this.delay.delayMs;
  }

  /**
   * The hedge delay for a request, or 0 when it is never hedged: hedging off, one attempt allowed,
   * a method that is not idempotent, a body that cannot be sent twice, or a delay that reaches the
   * per-try timeout (then the retry after the timeout is what happens).
   */
  delayFor(method: string, replayable: boolean): number {
    const settings = this.settings;
    if (!settings.enabled || settings.maxPerRequest < 1 || this.maxAttempts < 2) return 0;
    if (!replayable || !isIdempotent(method)) return 0;
    const delay = this.delay.delayMs;
    return delay < this.perTryTimeoutMs ? delay : 0;
  }

  /** A successful attempt's latency (to its response head): what the automatic delay is learnt from. */
  recordLatency(latencyMs: number): void {
    this.delay.record(latencyMs);
  }

  stats(): HedgingStats {
    return {
      enabled: this.settings.enabled,
      delayMs: this.delay.delayMs,
      samples: this.delay.samples,
      sent: this.sent,
      won: this.won,
      refusedByBudget: this.refusedByBudget,
      cancelled: this.cancelled,
    };
  }
}
