/**
 * Envoy's priority load: how much of a pool's traffic each zone priority takes, given how healthy
 * each priority is. Priority 0 keeps everything while it is "healthy enough" (the overprovisioning
 * factor lets it lose some hosts first); below that, the shortfall spills to the next priorities.
 */

/**
 * Share of the load for each priority, in priority order; the shares sum to 1, or are all 0 when no
 * priority has a healthy endpoint.
 *
 * Priority i's health is min(1, healthyFraction_i × factor). Load is assigned in priority order,
 * each taking min(remaining, health_i). When the healths sum to less than 1 they are first scaled
 * up so that they do (traffic still has to go somewhere). With factor 1.4 and a healthy priority 1,
 * priority 0 at 100 / 70 / 50 / 0 % healthy keeps 100 / 98 / 70 / 0 % of the load.
 *
 * @param healthyFractions per priority, usable ÷ members in 0..1 (a priority without members is 0)
 * @param overprovisioningFactor ≥ 1 in a resolved spec (Envoy's default is 1.4)
 */
export function priorityLoad(healthyFractions: readonly number[], overprovisioningFactor: number): number[] {
  const health = healthyFractions.map((fraction) =>
    Math.min(1, clampFraction(fraction) * overprovisioningFactor),
  );
  let totalHealth = 0;
  for (const h of health) totalHealth += h;
  if (!(totalHealth > 0)) return health.map(() => 0);
  const scale = totalHealth < 1 ? 1 / totalHealth : 1;
  let remaining = 1;
  return health.map((h) => {
    const share = Math.max(0, Math.min(remaining, h * scale));
    remaining -= share;
    return share;
  });
}

/** NaN and out-of-range inputs must not turn into negative or NaN loads. */
function clampFraction(fraction: number): number {
  if (!(fraction > 0)) return 0;
  return Math.min(fraction, 1);
}
