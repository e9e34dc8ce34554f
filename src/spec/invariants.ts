import { durationMs } from "./duration.ts";
import type { InvariantsSpec } from "./model.ts";
import type { InvariantsInput } from "./schema.ts";

/** Invariant settings when neither the service nor `defaults.invariants` sets them. */
export const INVARIANT_DEFAULTS = {
  method: "GET",
  expect: [401, 403],
  intervalMs: 2_000,
  /** Capped at the interval, so that a short interval alone is valid. */
  timeoutMs: 1_000,
};

/**
 * A service's invariants merged field by field over `defaults.invariants` (a list or the policy
 * endpoint replaces the default's whole), or undefined when neither declares a protected path
 * nor a policy endpoint: then there is nothing to probe.
 */
export function resolveInvariants(
  defaults: InvariantsInput | undefined,
  own: InvariantsInput | undefined,
): InvariantsSpec | undefined {
  const protectedPaths = own?.protectedPaths ?? defaults?.protectedPaths ?? [];
  const policyHash = own?.policyHash ?? defaults?.policyHash;
  if (protectedPaths.length === 0 && policyHash === undefined) return undefined;
  const interval = own?.interval ?? defaults?.interval;
  const timeout = own?.timeout ?? defaults?.timeout;
  const intervalMs = interval === undefined ? INVARIANT_DEFAULTS.intervalMs : durationMs(interval);
  return {
    protectedPaths: protectedPaths.map((p) => ({
      path: p.path,
      method: p.method ?? INVARIANT_DEFAULTS.method,
      expect: [...(p.expect ?? INVARIANT_DEFAULTS.expect)],
    })),
    policyHash: policyHash === undefined ? null : { path: policyHash.path },
    intervalMs,
    timeoutMs:
      timeout === undefined ? Math.min(INVARIANT_DEFAULTS.timeoutMs, intervalMs) : durationMs(timeout),
  };
}
