/** Seeded PRNG (mulberry32): the same draws on every run, so a failing case replays from its seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * A seeded source that can be restarted from a new seed while its user holds on to `random`: a
 * test reseeds just before it measures, so the measured draws do not depend on how many draws
 * earlier steps took (steps that wait on wall-clock time take a varying number).
 */
export function reseedableRandom(seed: number): { random: () => number; reseed: (seed: number) => void } {
  let draw = seededRandom(seed);
  return {
    random: () => draw(),
    reseed: (next) => {
      draw = seededRandom(next);
    },
  };
}

/**
 * The counts that `n` independent trials with success probability `p` give within `sigmas`
 * standard deviations of the mean (n p ± sigmas × √(n p (1 − p))); 3σ holds 99.7 % of the
 * distribution. With a seeded source the count is fixed for the seed, and a bound of 3σ says the
 * seed is not special: another seed would very likely pass too. p = 0 or 1 gives the exact count.
 */
export function binomialRange(n: number, p: number, sigmas = 3): { min: number; max: number } {
  const mean = n * p;
  const spread = sigmas * Math.sqrt(n * p * (1 - p));
  return {
    min: Math.max(0, Math.ceil(mean - spread - 1e-9)),
    max: Math.min(n, Math.floor(mean + spread + 1e-9)),
  };
}

/** Is `count` of `n` within `sigmas` standard deviations of n p? (A message for the assertion.) */
export function binomialCheck(
  count: number,
  n: number,
  p: number,
  what: string,
  sigmas = 3,
): { ok: boolean; message: string } {
  const { min, max } = binomialRange(n, p, sigmas);
  return {
    ok: count >= min && count <= max,
    message: `${what}: ${count} of ${n}, expected ${min}..${max} (${n} × ${+p.toFixed(4)} ± ${sigmas}σ)`,
  };
}
