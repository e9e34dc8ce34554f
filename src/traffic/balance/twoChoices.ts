/**
 * Power of two choices: draw two distinct candidates at random and take the one with fewer
 * requests in flight. Nearly as good as least-loaded over all, without a scan, and without the herd
 * that pure least-loaded causes when every balancer sees the same "best" instance.
 */

import type { Endpoint } from "../contracts.ts";

/** Anything that names an endpoint (the balancer's precomputed pick results). */
export interface HasEndpoint {
  readonly endpoint: Endpoint;
}

/** Excludes nothing: for the last-resort retry to an instance already tried. */
export const NOTHING_EXCLUDED: ReadonlySet<string> = new Set();

/**
 * The less loaded of two random candidates not in `exclude`, or undefined when every candidate is
 * excluded (or there is none). Allocates nothing; scans the candidates only when `exclude` is not
 * empty (retries), to count and index the allowed ones.
 *
 * @param inFlight requests in flight per instance; ties go to the first draw
 */
export function lessLoadedOfTwo<T extends HasEndpoint>(
  candidates: readonly T[],
  exclude: ReadonlySet<string>,
  inFlight: (instance: string) => number,
  random: () => number,
): T | undefined {
  const allowed = exclude.size === 0 ? candidates.length : countAllowed(candidates, exclude);
  if (allowed === 0) return undefined;
  const firstRank = allowed === 1 ? 0 : drawIndex(random, allowed);
  const first = nthAllowed(candidates, exclude, firstRank);
  if (allowed === 1) return first;
  let secondRank = drawIndex(random, allowed - 1);
  // Skip over the first draw so that the two are distinct.
  if (secondRank >= firstRank) secondRank += 1;
  const second = nthAllowed(candidates, exclude, secondRank);
  return inFlight(second.endpoint.instance) < inFlight(first.endpoint.instance) ? second : first;
}

function drawIndex(random: () => number, n: number): number {
  // A `random` that returns exactly 1 must not index past the end.
  return Math.min(n - 1, Math.floor(random() * n));
}

function countAllowed(candidates: readonly HasEndpoint[], exclude: ReadonlySet<string>): number {
  let count = 0;
  for (const candidate of candidates) if (!exclude.has(candidate.endpoint.instance)) count += 1;
  return count;
}

function nthAllowed<T extends HasEndpoint>(
  candidates: readonly T[],
  exclude: ReadonlySet<string>,
  rank: number,
): T {
  if (exclude.size === 0) return candidates[rank]!;
  let seen = 0;
  for (const candidate of candidates) {
    if (exclude.has(candidate.endpoint.instance)) continue;
    if (seen === rank) return candidate;
    seen += 1;
  }
  throw new Error("unreachable: rank beyond the allowed candidates");
}
