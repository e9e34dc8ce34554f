/**
 * The blast radius: how many of a service's (and of the fleet's) instances automation may act on at
 * once. What counts, and why a replacement of a dead instance never does, is in docs/brakes.md.
 */

import type { ActedOn } from "./types.ts";

/**
 * Instances a share allows at once: ⌊share × size⌋, and never less than one. A limit of zero would
 * hold every action on a small service for ever (50 % of one instance); stopping automation
 * altogether is what a pause is for.
 */
export function instancesAllowed(share: number, size: number): number {
  // The epsilon keeps 0.29 × 100 (28.999…) from flooring to 28.
  return Math.max(1, Math.floor(share * Math.max(0, size) + 1e-9));
}

/** The distinct instances of `acted` (of `service` when given) together with `more`. */
export function actedOnWith(
  acted: readonly ActedOn[],
  more: readonly { instance: string; service: string }[],
  service?: string,
): Set<string> {
  const names = new Set<string>();
  for (const a of acted) if (service === undefined || a.service === service) names.add(a.instance);
  for (const m of more) if (service === undefined || m.service === service) names.add(m.instance);
  return names;
}
