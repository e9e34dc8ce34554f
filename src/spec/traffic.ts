import { durationMs } from "./duration.ts";
import type { TrafficSpec, ZoneHost } from "./model.ts";
import type { DefaultTrafficInput, TrafficInput } from "./schema.ts";

/** Traffic settings when neither the service nor `defaults.traffic` sets them (priorities aside). */
export const TRAFFIC_DEFAULTS: Omit<TrafficSpec, "priorities"> = {
  engine: "embedded",
  overprovisioningFactor: 1.4,
  outlier: { consecutiveFailures: 5, baseEjectionMs: 5_000, maxEjectionMs: 300_000, maxEjectionPercent: 50 },
  panic: { thresholdPercent: 50, mode: "send-to-all" },
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
  weights: null,
};

/** Either mapping a service's traffic settings come from. */
type AnyTrafficInput = TrafficInput | DefaultTrafficInput;

/** Where a service's zone priorities are declared: `localZone` or `priorities`, of one mapping. */
export type LocalityInput = { localZone: string } | { priorities: string[][] } | undefined;

/**
 * The locality a service uses. `localZone` and `priorities` say the same thing two ways, so they
 * merge as one field: whichever the service sets wins over whichever `defaults` sets.
 */
export function localityOf(
  defaults: AnyTrafficInput | undefined,
  own: AnyTrafficInput | undefined,
): LocalityInput {
  for (const input of [own, defaults]) {
    if (input?.localZone !== undefined) return { localZone: input.localZone };
    if (input?.priorities !== undefined) return { priorities: input.priorities };
  }
  return undefined;
}

/** The service's zones, each once, in placement order. */
export function placementZones(placement: readonly ZoneHost[]): string[] {
  return [...new Set(placement.map((entry) => entry.zone))];
}

/**
 * Zone priorities from the declared locality: the listed priorities, then every placement zone
 * they leave out as one last priority. No locality means one priority with every zone. Zones the
 * service is not placed in are left out: the checks reject them, except in a locality inherited
 * from `defaults` by a service without a front port, which does not use it.
 */
export function resolvePriorities(locality: LocalityInput, placement: readonly ZoneHost[]): string[][] {
  const zones = placementZones(placement);
  const listed =
    locality === undefined ? [] : "localZone" in locality ? [[locality.localZone]] : locality.priorities;
  const named = new Set(listed.flat());
  const rest = zones.filter((zone) => !named.has(zone));
  const priorities = listed
    .map((priority) => priority.filter((zone) => zones.includes(zone)))
    .filter((priority) => priority.length > 0);
  if (rest.length > 0) priorities.push(rest);
  return priorities;
}

type Pick = <Value>(read: (input: AnyTrafficInput | undefined) => Value | undefined) => Value | undefined;
type Ms = (value: string | number | undefined, fallback: number) => number;

/** `hedging`, merged like the rest; the built-in `minDelay` is capped at the `maxDelay` set. */
function resolveHedging(pick: Pick, ms: Ms): TrafficSpec["hedging"] {
  const base = TRAFFIC_DEFAULTS.hedging;
  const maxDelayMs = ms(
    pick((t) => t?.hedging?.maxDelay),
    base.maxDelayMs,
  );
  const delay = pick((t) => t?.hedging?.delay);
  return {
    enabled: pick((t) => t?.hedging?.enabled) ?? base.enabled,
    delayMs: delay === undefined || delay === "auto" ? null : durationMs(delay),
    minDelayMs: ms(
      pick((t) => t?.hedging?.minDelay),
      Math.min(base.minDelayMs, maxDelayMs),
    ),
    maxDelayMs,
    maxPerRequest: pick((t) => t?.hedging?.maxPerRequest) ?? base.maxPerRequest,
  };
}

/**
 * Traffic settings merged field by field (nested mappings too): the service's own value, else
 * the fleet default, else {@link TRAFFIC_DEFAULTS}. `weights` only exists per service. The
 * built-in per-try timeout, base ejection time, initial retry backoff and minimum hedge delay are
 * capped at the request timeout, max ejection time, max backoff and maximum hedge delay, so that
 * setting only the latter is valid.
 */
export function resolveTraffic(
  defaults: DefaultTrafficInput | undefined,
  own: TrafficInput | undefined,
  placement: readonly ZoneHost[],
): TrafficSpec {
  const base = TRAFFIC_DEFAULTS;
  const pick: Pick = (read) => read(own) ?? read(defaults);
  const ms: Ms = (value, fallback) => (value === undefined ? fallback : durationMs(value));
  const requestTimeoutMs = ms(
    pick((t) => t?.requestTimeout),
    base.requestTimeoutMs,
  );
  const maxEjectionMs = ms(
    pick((t) => t?.outlierDetection?.maxEjectionTime),
    base.outlier.maxEjectionMs,
  );
  const maxBackoffMs = ms(
    pick((t) => t?.retries?.backoff?.max),
    base.retries.backoff.maxMs,
  );
  return {
    engine: pick((t) => t?.engine) ?? base.engine,
    priorities: resolvePriorities(localityOf(defaults, own), placement),
    overprovisioningFactor: pick((t) => t?.overprovisioningFactor) ?? base.overprovisioningFactor,
    outlier: {
      consecutiveFailures:
        pick((t) => t?.outlierDetection?.consecutiveFailures) ?? base.outlier.consecutiveFailures,
      baseEjectionMs: ms(
        pick((t) => t?.outlierDetection?.baseEjectionTime),
        Math.min(base.outlier.baseEjectionMs, maxEjectionMs),
      ),
      maxEjectionMs,
      maxEjectionPercent:
        pick((t) => t?.outlierDetection?.maxEjectionPercent) ?? base.outlier.maxEjectionPercent,
    },
    panic: {
      thresholdPercent: pick((t) => t?.panic?.threshold) ?? base.panic.thresholdPercent,
      mode: pick((t) => t?.panic?.mode) ?? base.panic.mode,
    },
    retries: {
      maxAttempts: pick((t) => t?.retries?.attempts) ?? base.retries.maxAttempts,
      perTryTimeoutMs: ms(
        pick((t) => t?.retries?.perTryTimeout),
        Math.min(base.retries.perTryTimeoutMs, requestTimeoutMs),
      ),
      backoff: {
        initialMs: ms(
          pick((t) => t?.retries?.backoff?.initial),
          Math.min(base.retries.backoff.initialMs, maxBackoffMs),
        ),
        maxMs: maxBackoffMs,
      },
      budget: {
        ratio: pick((t) => t?.retries?.budget?.ratio) ?? base.retries.budget.ratio,
        windowMs: ms(
          pick((t) => t?.retries?.budget?.window),
          base.retries.budget.windowMs,
        ),
        minPerSecond: pick((t) => t?.retries?.budget?.minPerSecond) ?? base.retries.budget.minPerSecond,
      },
    },
    limits: {
      maxConcurrentPerInstance:
        pick((t) => t?.limits?.maxConcurrentPerInstance) ?? base.limits.maxConcurrentPerInstance,
      adaptive: pick((t) => t?.limits?.adaptive) ?? base.limits.adaptive,
      queueSize: pick((t) => t?.limits?.queueSize) ?? base.limits.queueSize,
      queueTimeoutMs: ms(
        pick((t) => t?.limits?.queueTimeout),
        base.limits.queueTimeoutMs,
      ),
    },
    hedging: resolveHedging(pick, ms),
    stallDetection: {
      enabled: pick((t) => t?.stallDetection?.enabled) ?? base.stallDetection.enabled,
      multiplier: pick((t) => t?.stallDetection?.multiplier) ?? base.stallDetection.multiplier,
      minTimeMs: ms(
        pick((t) => t?.stallDetection?.minTime),
        base.stallDetection.minTimeMs,
      ),
    },
    drainTimeoutMs: ms(
      pick((t) => t?.drainTimeout),
      base.drainTimeoutMs,
    ),
    requestTimeoutMs,
    weights: own?.weights === undefined ? null : { ...own.weights },
  };
}
