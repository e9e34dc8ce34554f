/** A duration as written in a fleet file: `"250ms"`, `"1.5s"`, `"1m"`, `"1h"`, or an integer of milliseconds. */
export type DurationInput = string | number;

/** Source of the pattern the schema validates duration strings against. */
export const DURATION_PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/**
 * Milliseconds for a duration already accepted by the schema. Fractions round to the nearest
 * millisecond.
 */
export function durationMs(input: DurationInput): number {
  if (typeof input === "number") return input;
  const match = DURATION_PATTERN.exec(input);
  if (match === null) throw new Error(`not a duration: ${JSON.stringify(input)}`);
  return Math.round(Number(match[1]) * UNIT_MS[match[2]!]!);
}

/** Whether a string is a well-formed duration, and its value in milliseconds if so. */
export function tryDurationMs(input: string): number | undefined {
  return DURATION_PATTERN.test(input) ? durationMs(input) : undefined;
}
