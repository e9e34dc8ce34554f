/**
 * Bench knobs from the environment: an unset or blank variable takes the default, anything else
 * must parse or the bench stops with the variable's name and what it got.
 */

type Env = NodeJS.ProcessEnv;

function raw(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === "" ? undefined : value;
}

/** A number above 0 (a whole one unless `integer` is false). */
export function positiveNumber(env: Env, name: string, fallback: number, integer = true): number {
  const text = raw(env, name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!(value > 0) || (integer && !Number.isInteger(value))) {
    throw new Error(
      `${name} must be a positive ${integer ? "whole " : ""}number, got ${JSON.stringify(text)}`,
    );
  }
  return value;
}

/** A whole number above 0. */
export function positiveInt(env: Env, name: string, fallback: number): number {
  return positiveNumber(env, name, fallback, true);
}

/** A number above 0 and at most `max`. */
export function boundedNumber(env: Env, name: string, fallback: number, max: number): number {
  const text = raw(env, name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0 || value > max) {
    throw new Error(`${name} must be a number above 0 and at most ${max}, got ${JSON.stringify(text)}`);
  }
  return value;
}

/** 1/0, true/false, yes/no, on/off. */
export function flag(env: Env, name: string, fallback: boolean): boolean {
  const text = raw(env, name)?.trim().toLowerCase();
  if (text === undefined) return fallback;
  if (["1", "true", "yes", "on"].includes(text)) return true;
  if (["0", "false", "no", "off"].includes(text)) return false;
  throw new Error(`${name} must be 1/0, true/false, yes/no or on/off, got ${JSON.stringify(text)}`);
}

/** A comma-separated subset of `known` (all of them when unset). */
export function listOf<T extends string>(env: Env, name: string, known: readonly T[]): T[] {
  const text = raw(env, name);
  if (text === undefined) return [...known];
  const picked = text.split(",").map((s) => s.trim());
  for (const item of picked) {
    if (!known.includes(item as T)) {
      throw new Error(`${name}: unknown ${JSON.stringify(item)} (known: ${known.join(", ")})`);
    }
  }
  return picked as T[];
}
