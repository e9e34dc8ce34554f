/**
 * How analysis figures are written in verdict reasons and rollout events, and which figures count
 * as data at all. A rate or a latency that is null, NaN or infinite is *no data*: it is never read
 * as 0, because 0 errors is a pass and no data must never be one.
 */

/** Whether a figure is a real measurement (finite number), not "no data". */
export function isKnown(value: number | null | undefined): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

/** Slack for comparisons of decimal figures: 0.06 − 0.01 is not "more than" 0.05. */
const EPSILON = 1e-9;

/** `value > limit`, ignoring floating-point noise (a figure exactly at its limit is within it). */
export function exceeds(value: number, limit: number): boolean {
  return value - limit > EPSILON * Math.max(1, Math.abs(limit));
}

/** `value >= limit`, ignoring floating-point noise. */
export function reaches(value: number, limit: number): boolean {
  return value - limit >= -EPSILON * Math.max(1, Math.abs(limit));
}

function trimmed(value: number, decimals: number): string {
  return String(Number(value.toFixed(decimals)));
}

/** A rate 0..1 as a percentage: 0.031 → "3.1 %", 0.01 → "1 %". */
export function percent(rate: number): string {
  return `${trimmed(rate * 100, 2)} %`;
}

/** A difference of two rates in percentage points, signed: 0.05 → "+5 points". */
export function signedPoints(delta: number): string {
  const sign = delta >= 0 ? "+" : "−";
  return `${sign}${trimmed(Math.abs(delta) * 100, 2)} points`;
}

/** A latency: 123.456 → "123.5 ms". */
export function millis(ms: number): string {
  return `${trimmed(ms, 1)} ms`;
}

/** A ratio: 1.5 → "×1.5". */
export function times(ratio: number): string {
  return `×${trimmed(ratio, 2)}`;
}

const UNITS: readonly [suffix: string, ms: number][] = [
  ["h", 3_600_000],
  ["m", 60_000],
  ["s", 1_000],
];

/**
 * A duration spelled the way fleet files spell it, so a message quotes the setting the user wrote:
 * 120000 → "2m", 90000 → "1m30s", 1500 → "1.5s", 250 → "250ms".
 */
export function specDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return `${ms}ms`;
  if (ms < 1_000) return `${trimmed(ms, 0)}ms`;
  if (ms < 60_000) return `${trimmed(ms / 1_000, 3)}s`;
  let rest = Math.round(ms / 1_000) * 1_000;
  let text = "";
  for (const [suffix, size] of UNITS) {
    const count = Math.floor(rest / size);
    if (count > 0) text += `${count}${suffix}`;
    rest -= count * size;
  }
  return text;
}
