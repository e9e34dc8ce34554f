import { HomeostatError } from "../../errors.ts";

/**
 * Option checks shared by the policies. A policy built with nonsense (a negative window, a ratio
 * of NaN) would fail silently under load, so it fails loudly at construction instead.
 */

export function requireNumber(
  policy: string,
  name: string,
  value: number,
  range: { min?: number; max?: number; integer?: boolean; minExclusive?: boolean },
): number {
  const min = range.min ?? Number.NEGATIVE_INFINITY;
  const max = range.max ?? Number.POSITIVE_INFINITY;
  const belowMin = range.minExclusive ? value <= min : value < min;
  if (Number.isNaN(value) || belowMin || value > max || (range.integer && !Number.isInteger(value))) {
    const bounds = `${range.minExclusive ? ">" : "≥"} ${min}${max === Number.POSITIVE_INFINITY ? "" : ` and ≤ ${max}`}`;
    throw new HomeostatError(
      "HS_POLICY_INVALID",
      `${policy}: ${name} must be ${range.integer ? "an integer " : "a number "}${bounds} (got ${value})`,
      { details: { policy, option: name, value } },
    );
  }
  return value;
}

/** The clock every policy uses unless told otherwise: monotonic milliseconds. */
export const monotonicNow = (): number => performance.now();
