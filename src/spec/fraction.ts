/** A share as written in a fleet file: a fraction `0.01` or a percentage `"1%"`. */
export type FractionInput = string | number;

/** Percentage strings the schema accepts: `"1%"`, `"0.5%"`, `"100%"`. */
export const PERCENT_PATTERN = /^(\d+(?:\.\d+)?)%$/;

/** The fraction (`"1%"` → 0.01) of a value; undefined for a string that is not a percentage. */
export function tryFraction(input: FractionInput): number | undefined {
  if (typeof input === "number") return input;
  const match = PERCENT_PATTERN.exec(input);
  return match === null ? undefined : Number(match[1]) / 100;
}

/** The fraction of a value already accepted by the schema. */
export function fraction(input: FractionInput): number {
  const value = tryFraction(input);
  if (value === undefined) throw new Error(`not a fraction: ${JSON.stringify(input)}`);
  return value;
}
