/**
 * The failover shedding gate: during a failover the controller may ask a service's proxy to refuse
 * a share of its `sheddable` and `default` requests before admission, so that the surviving
 * instances stay under their utilization ceiling. `critical` requests never meet the gate.
 */

import { HomeostatError } from "../../errors.ts";
import type { Criticality, SheddingShares } from "../contracts.ts";

/** Seconds for the `Retry-After` of a request refused by the gate. */
export const FAILOVER_SHED_RETRY_AFTER_SECONDS = 1;

/**
 * A validated copy of `shares`, or null for none.
 * @throws HomeostatError HS_BAD_REQUEST when a share is missing, not finite or outside [0, 1]
 */
export function checkedSheddingShares(
  service: string,
  shares: Readonly<SheddingShares> | null,
): SheddingShares | null {
  if (shares === null) return null;
  for (const criticality of ["sheddable", "default"] as const) {
    const share = (shares as Partial<SheddingShares>)[criticality];
    if (typeof share !== "number" || !Number.isFinite(share) || share < 0 || share > 1) {
      throw new HomeostatError(
        "HS_BAD_REQUEST",
        `service ${service}: the failover shedding share of ${criticality} requests must be a number in [0, 1], got ${String(share)}`,
        { details: { service, criticality, share: String(share) } },
      );
    }
  }
  return { sheddable: shares.sheddable, default: shares.default };
}

/** Whether the gate refuses a request of `criticality`: drawn per request against its share. */
export function failoverSheds(
  shares: SheddingShares,
  criticality: Criticality,
  random: () => number,
): boolean {
  if (criticality === "critical") return false;
  const share = criticality === "sheddable" ? shares.sheddable : shares.default;
  // A share of 0 costs no draw; 1 always sheds (random() is < 1).
  return share > 0 && random() < share;
}
