/**
 * Release split: how traffic is shared between the releases of a service (a canary at 10 %, a
 * rollback at 0 %). Weights are any non-negative scale; only their ratios matter.
 */

import { HomeostatError } from "../../errors.ts";

/** Frozen release weights; replaced whole, never edited, so a reader always sees one set. */
export type ReleaseWeights = Readonly<Record<string, number>>;

/**
 * Validate and freeze a copy of `weights` (the caller's object may change later without effect).
 * `null` means "no split": every endpoint is one pool, whatever its release.
 *
 * @throws HomeostatError HS_BAD_REQUEST when a weight is negative or not finite, or none is > 0
 */
export function freezeWeights(weights: Record<string, number> | null): ReleaseWeights | null {
  if (weights === null) return null;
  const copy: Record<string, number> = {};
  let positive = false;
  for (const [release, weight] of Object.entries(weights)) {
    if (typeof weight !== "number" || !Number.isFinite(weight) || weight < 0) {
      throw new HomeostatError("HS_BAD_REQUEST", `release weight for "${release}" must be a number ≥ 0`, {
        details: { release, weight },
      });
    }
    if (weight > 0) positive = true;
    copy[release] = weight;
  }
  if (!positive) {
    throw new HomeostatError("HS_BAD_REQUEST", "at least one release weight must be greater than 0", {
      details: { weights },
    });
  }
  return Object.freeze(copy);
}

/**
 * Each release's share of the traffic: w_r ÷ Σ w over the releases that have at least one usable
 * endpoint. A release with nothing usable gives its share to the others in proportion to their
 * weights; a release with weight 0 (or none) gets nothing, endpoints or not.
 *
 * @param usableByRelease usable endpoints per release
 * @returns a share in 0..1 for every release named in `weights` or in `usableByRelease`, in that
 *   order (weights first); all 0 when no weighted release has a usable endpoint
 */
export function releaseShares(
  weights: ReleaseWeights,
  usableByRelease: ReadonlyMap<string, number>,
): Map<string, number> {
  let total = 0;
  for (const [release, weight] of Object.entries(weights)) {
    if ((usableByRelease.get(release) ?? 0) > 0) total += weight;
  }
  const shares = new Map<string, number>();
  for (const [release, weight] of Object.entries(weights)) {
    const usable = (usableByRelease.get(release) ?? 0) > 0;
    shares.set(release, usable && total > 0 ? weight / total : 0);
  }
  for (const release of usableByRelease.keys()) if (!shares.has(release)) shares.set(release, 0);
  return shares;
}
