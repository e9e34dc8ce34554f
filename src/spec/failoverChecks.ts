import { FAILOVER_DEFAULTS } from "./failover.ts";
import { fraction } from "./fraction.ts";
import type { Problem } from "./problem.ts";
import type { FailoverInput } from "./schema.ts";

/**
 * `degradedShare` ≤ `downShare` (either may be a default): a zone goes degraded before it goes
 * down, never the other way round. Blamed at the value the file sets, `degradedShare` first.
 */
export function checkFailover(failover: FailoverInput | undefined): Problem[] {
  if (failover === undefined) return [];
  const { degradedShare, downShare } = failover;
  if (degradedShare === undefined && downShare === undefined) return [];
  const degraded = degradedShare === undefined ? FAILOVER_DEFAULTS.degradedShare : fraction(degradedShare);
  const down = downShare === undefined ? FAILOVER_DEFAULTS.downShare : fraction(downShare);
  if (degraded <= down) return [];
  const origin = (value: unknown) => (value === undefined ? " (the default)" : "");
  return [
    {
      path: ["failover", degradedShare !== undefined ? "degradedShare" : "downShare"],
      target: "value",
      message: `degradedShare ${percent(degraded)}${origin(degradedShare)} is above downShare ${percent(down)}${origin(downShare)}: a zone must be degraded before it is down, so degradedShare ≤ downShare`,
    },
  ];
}

/** `0.6` → `"60%"`, without floating-point noise. */
function percent(share: number): string {
  return `${Number((share * 100).toFixed(4))}%`;
}
