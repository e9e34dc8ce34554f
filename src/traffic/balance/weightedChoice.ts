/**
 * Choosing an index by weight with one uniform draw, without allocating: the cumulative bounds are
 * computed once (when the balancer's view is rebuilt), and each choice is a short scan.
 */

/** Indices with a positive weight and their cumulative upper bounds in 0..1. */
export interface WeightedChoice {
  readonly indices: readonly number[];
  readonly bounds: readonly number[];
}

/** Precompute a choice over `weights` (zero, negative and NaN weights are never chosen). */
export function weightedChoice(weights: readonly number[]): WeightedChoice {
  let total = 0;
  for (const weight of weights) if (weight > 0) total += weight;
  const indices: number[] = [];
  const bounds: number[] = [];
  let running = 0;
  weights.forEach((weight, index) => {
    if (!(weight > 0)) return;
    running += weight;
    indices.push(index);
    bounds.push(running / total);
  });
  // Rounding may leave the last bound a hair under 1: no draw must fall off the end.
  if (bounds.length > 0) bounds[bounds.length - 1] = Number.POSITIVE_INFINITY;
  return { indices, bounds };
}

/**
 * The chosen index (one draw from `random`, uniform in [0, 1)), or -1 when nothing can be chosen.
 * With a single candidate no draw is taken.
 */
export function choose(choice: WeightedChoice, random: () => number): number {
  const { indices, bounds } = choice;
  if (indices.length <= 1) return indices.length === 1 ? indices[0]! : -1;
  const u = random();
  for (let i = 0; i < bounds.length; i++) if (u < bounds[i]!) return indices[i]!;
  return indices[indices.length - 1]!;
}
