/**
 * Per-second rates from two readings of the proxy's cumulative counters (`/metrics`): the data
 * plane panel shows rates, the metrics only count. Kept apart from the polling so the arithmetic
 * reads on its own.
 */

import type { TrafficCounters } from "./api.ts";

/** Requests, errors and shed requests per second for one service, over the last poll interval. */
export interface Rates {
  rps: number;
  errorsPerSecond: number;
  shedPerSecond: number;
}

/**
 * Each service's rates between two readings `seconds` apart. `services` are the ones the proxy
 * fronts: one it has not answered for yet has no counters, and serves 0/s rather than nothing.
 * A counter that went backwards (the proxy restarted) counts as 0, never as a negative rate.
 */
export function ratesBetween(
  before: Map<string, TrafficCounters>,
  now: Map<string, TrafficCounters>,
  seconds: number,
  services: string[],
): Record<string, Rates> {
  const zero: TrafficCounters = { requests: 0, errors: 0, shed: 0 };
  const next: Record<string, Rates> = {};
  const counted = new Map(now);
  for (const service of services) {
    if (!counted.has(service)) counted.set(service, zero);
  }
  for (const [service, c] of counted) {
    const b = before.get(service) ?? zero;
    next[service] = {
      rps: Math.max(0, c.requests - b.requests) / seconds,
      errorsPerSecond: Math.max(0, c.errors - b.errors) / seconds,
      shedPerSecond: Math.max(0, c.shed - b.shed) / seconds,
    };
  }
  return next;
}
