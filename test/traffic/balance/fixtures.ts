/**
 * Shared fixtures for the balancer tests: a traffic spec built directly (not through the fleet
 * file), endpoints, a seeded random source, and pick counting.
 */

import type { TrafficSpec } from "../../../src/spec/model.ts";
import type { Balancer } from "../../../src/traffic/balance/balancer.ts";
import type { Endpoint, PickResult } from "../../../src/traffic/contracts.ts";

export interface TrafficOverrides {
  priorities?: string[][];
  overprovisioningFactor?: number;
  outlier?: Partial<TrafficSpec["outlier"]>;
  panic?: Partial<TrafficSpec["panic"]>;
  weights?: Record<string, number> | null;
}

/** A resolved traffic spec: zone "a" first, then "b"; ejection after 3 failures for 1 s. */
export function trafficSpec(overrides: TrafficOverrides = {}): TrafficSpec {
  return {
    engine: "embedded",
    priorities: overrides.priorities ?? [["a"], ["b"]],
    overprovisioningFactor: overrides.overprovisioningFactor ?? 1.4,
    outlier: {
      consecutiveFailures: 3,
      baseEjectionMs: 1_000,
      maxEjectionMs: 10_000,
      maxEjectionPercent: 100,
      ...overrides.outlier,
    },
    panic: { thresholdPercent: 50, mode: "send-to-all", ...overrides.panic },
    retries: {
      maxAttempts: 3,
      perTryTimeoutMs: 2_000,
      backoff: { initialMs: 25, maxMs: 250 },
      budget: { ratio: 0.2, windowMs: 10_000, minPerSecond: 5 },
    },
    limits: { maxConcurrentPerInstance: 100, adaptive: true, queueSize: 100, queueTimeoutMs: 1_000 },
    hedging: { enabled: true, delayMs: null, minDelayMs: 20, maxDelayMs: 1_000, maxPerRequest: 1 },
    stallDetection: { enabled: true, multiplier: 4, minTimeMs: 250 },
    drainTimeoutMs: 10_000,
    requestTimeoutMs: 30_000,
    weights: overrides.weights ?? null,
  };
}

let nextPort = 20_000;

/** `count` endpoints named `${prefix}-0..` in `zone`, running `release`. */
export function endpoints(prefix: string, count: number, zone: string, release = "v1"): Endpoint[] {
  return Array.from({ length: count }, (_, i) => ({
    instance: `${prefix}-${i}`,
    service: "api",
    release,
    zone,
    host: "local",
    address: "127.0.0.1",
    port: nextPort++,
  }));
}

import { seededRandom } from "../../helpers/seededRandom.ts";

export { seededRandom };

export const NOTHING: ReadonlySet<string> = new Set();
export const IDLE = (): number => 0;
export const T0 = 1_700_000_000_000;

/** The successful result of a pick, or a failed assertion. */
export function picked(result: PickResult): Extract<PickResult, { ok: true }> {
  if (!result.ok) throw new Error(`expected a pick, got ${result.reason}`);
  return result;
}

/** Pick `n` times at `now` and count picks by `key` of the result (seeded, so reproducible). */
export function countPicks<K extends string | number>(
  balancer: Balancer,
  n: number,
  key: (result: Extract<PickResult, { ok: true }>) => K,
  options: {
    now?: number;
    seed?: number;
    exclude?: ReadonlySet<string>;
    inFlight?: (i: string) => number;
  } = {},
): Map<K, number> {
  const random = seededRandom(options.seed ?? 42);
  const counts = new Map<K, number>();
  for (let i = 0; i < n; i++) {
    const result = picked(
      balancer.pick(options.now ?? T0, random, options.exclude ?? NOTHING, options.inFlight ?? IDLE),
    );
    const k = key(result);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return counts;
}

/** Make `instances` fail `times` times each at `now`. */
export function fail(balancer: Balancer, instances: readonly string[], now: number, times: number): void {
  for (const instance of instances) {
    for (let i = 0; i < times; i++) balancer.report(instance, "http-5xx", now);
  }
}
