import { durationMs } from "./duration.ts";
import { fraction } from "./fraction.ts";
import type { BrakesSpec, RateLimitSpec, ServiceBrakesSpec } from "./model.ts";
import type { BrakesInput, ServiceBrakesInput } from "./schema.ts";

/**
 * Fleet-wide brakes when the file sets none (the reasons are in docs/brakes.md#defaults):
 * - automation acts on at most 25 % of the fleet's instances at once — one zone of four, and well
 *   under the half a misjudged shared cause (a probe, a dependency) could otherwise take down;
 * - at most 3 automated rollbacks an hour: each follows an operator's deploy, so more than that
 *   in an hour says the analysis is misjudging (a stats gap, a shared dependency), not the releases;
 * - at most 2 automated zone evacuations an hour: the failover safety rules already keep them
 *   5 minutes apart; a third in an hour is zones flapping or zone health misjudged.
 */
export const BRAKES_DEFAULTS: BrakesSpec = {
  blastRadius: 0.25,
  rollbacks: { max: 3, windowMs: 3_600_000 },
  failovers: { max: 2, windowMs: 3_600_000 },
};

/** The window automated restarts of a service are counted over when the file sets none. */
export const RESTART_WINDOW_MS = 600_000;

/**
 * Automated restarts a service of `replicas` may have in {@link RESTART_WINDOW_MS} when the file
 * sets no number: every instance restarted twice (a lost host and its return, a dependency's blip
 * and its recovery), and never fewer than 10, so that one crash-looping instance of a small
 * service still reaches its longest backoff (5 quick failures) and a few tries at it before the
 * brake holds it and the incident escalates.
 */
export function defaultRestartLimit(replicas: number): number {
  return Math.max(10, 2 * replicas);
}

/** A service's share limit when the file sets none: half of its instances at once. */
export const SERVICE_BLAST_RADIUS_DEFAULT = 0.5;

/** The top-level `brakes` mapping with {@link BRAKES_DEFAULTS} for every field it leaves out. */
export function resolveBrakes(input: BrakesInput | undefined): BrakesSpec {
  const base = BRAKES_DEFAULTS;
  return {
    blastRadius: input?.blastRadius === undefined ? base.blastRadius : fraction(input.blastRadius),
    rollbacks: rateLimit(input?.rollbacks, undefined, base.rollbacks),
    failovers: rateLimit(input?.failovers, undefined, base.failovers),
  };
}

/**
 * A service's brakes merged field by field (`restarts.max` and `restarts.window` apart): its own
 * value, else `defaults.brakes`, else the defaults above.
 */
export function resolveServiceBrakes(
  defaults: ServiceBrakesInput | undefined,
  own: ServiceBrakesInput | undefined,
  replicas: number,
): ServiceBrakesSpec {
  const share = own?.blastRadius ?? defaults?.blastRadius;
  return {
    restarts: rateLimit(own?.restarts, defaults?.restarts, {
      max: defaultRestartLimit(replicas),
      windowMs: RESTART_WINDOW_MS,
    }),
    blastRadius: share === undefined ? SERVICE_BLAST_RADIUS_DEFAULT : fraction(share),
  };
}

/** The brakes of a service, its defaults when it was built by hand without them. */
export function serviceBrakesOf(service: {
  brakes?: ServiceBrakesSpec;
  replicas: number;
}): ServiceBrakesSpec {
  return service.brakes ?? resolveServiceBrakes(undefined, undefined, service.replicas);
}

/** The fleet's brakes, the defaults when it was built by hand without them. */
export function fleetBrakesOf(fleet: { brakes?: BrakesSpec }): BrakesSpec {
  return fleet.brakes ?? BRAKES_DEFAULTS;
}

function rateLimit(
  own: { max?: number | undefined; window?: string | number | undefined } | undefined,
  defaults: { max?: number | undefined; window?: string | number | undefined } | undefined,
  base: RateLimitSpec,
): RateLimitSpec {
  const window = own?.window ?? defaults?.window;
  return {
    max: own?.max ?? defaults?.max ?? base.max,
    windowMs: window === undefined ? base.windowMs : durationMs(window),
  };
}
