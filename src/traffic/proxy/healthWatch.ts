/**
 * Turns the balancer's ejections and panic into events and metrics, off the request path: after
 * failures are reported, and when the earliest ejection is due to end, it compares the balancer's
 * state with what it saw last and reports the differences.
 */

import type { Balancer } from "../balance/balancer.ts";
import type { TrafficStats } from "../stats/index.ts";

export interface TrafficEvent {
  type: string;
  reason: string;
  message: string;
  data?: object;
}

/** An instance ejected by outlier detection (either engine's). */
export function ejectedEvent(
  instance: string,
  ejectedUntil: number,
  timesEjected: number,
  how = "",
): TrafficEvent {
  return {
    type: "traffic.ejected",
    reason: "consecutive-failures",
    message: `${instance} ejected after consecutive failures, until ${new Date(ejectedUntil).toISOString()}${how}`,
    data: { instance, ejectedUntil, timesEjected },
  };
}

/** An ejection over: the instance is back, or left membership while ejected. */
export function returnedEvent(instance: string, member: boolean): TrafficEvent {
  return {
    type: "traffic.returned",
    reason: member ? "ejection-ended" : "left-membership",
    message: member
      ? `${instance} is back in the balancer after its ejection`
      : `${instance} left while ejected`,
    data: { instance },
  };
}

/** Failures come in bursts: one look shortly after the first is enough. */
const SETTLE_MS = 50;
/** setTimeout's longest delay. */
const MAX_TIMER_MS = 2_147_483_647;

export class HealthWatch {
  private readonly service: string;
  private readonly balancer: Balancer;
  private readonly stats: TrafficStats;
  private readonly now: () => number;
  private readonly onEvent: (event: TrafficEvent) => void;
  private ejected = new Set<string>();
  private panic = false;
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Number.POSITIVE_INFINITY;
  private stopped = false;

  constructor(args: {
    service: string;
    balancer: Balancer;
    stats: TrafficStats;
    now: () => number;
    onEvent: (event: TrafficEvent) => void;
  }) {
    this.service = args.service;
    this.balancer = args.balancer;
    this.stats = args.stats;
    this.now = args.now;
    this.onEvent = args.onEvent;
  }

  /** Something may have changed (a failure was reported, membership changed): look soon. */
  poke(): void {
    this.lookAt(this.now() + SETTLE_MS);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Compare the balancer's state with the last one seen, report the differences, plan the next look. */
  check(): void {
    this.timer = null;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = this.now();
    const state = this.balancer.state(now);
    const ejectedNow = new Set<string>();
    let nextEnd = Number.POSITIVE_INFINITY;
    for (const endpoint of state.endpoints) {
      if (endpoint.ejectedUntil === null) continue;
      ejectedNow.add(endpoint.instance);
      nextEnd = Math.min(nextEnd, endpoint.ejectedUntil);
      if (this.ejected.has(endpoint.instance)) continue;
      this.stats.recordEjection(this.service, endpoint.instance, true);
      this.onEvent(ejectedEvent(endpoint.instance, endpoint.ejectedUntil, endpoint.timesEjected));
    }
    for (const instance of this.ejected) {
      if (ejectedNow.has(instance)) continue;
      this.stats.recordEjection(this.service, instance, false);
      this.onEvent(
        returnedEvent(
          instance,
          state.endpoints.some((e) => e.instance === instance),
        ),
      );
    }
    this.ejected = ejectedNow;
    if (state.panic !== this.panic) {
      this.panic = state.panic;
      this.stats.recordPanic(this.service, state.panic);
      this.onEvent({
        type: state.panic ? "traffic.panic" : "traffic.panic-over",
        reason: state.panic ? `panic-${state.panicMode}` : "enough-healthy",
        message: state.panic
          ? `only ${state.healthy} of ${state.members} instances are healthy: ${state.panicMode === "send-to-all" ? "sending to all of them" : "sending only to healthy ones (fail closed)"}`
          : `${state.healthy} of ${state.members} instances are healthy again`,
        data: { healthy: state.healthy, members: state.members, mode: state.panicMode },
      });
    }
    if (nextEnd !== Number.POSITIVE_INFINITY) this.lookAt(nextEnd + 1);
  }

  private lookAt(at: number): void {
    if (this.stopped || at >= this.timerAt) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.check(), Math.min(MAX_TIMER_MS, Math.max(0, at - this.now())));
    this.timer.unref();
  }
}
