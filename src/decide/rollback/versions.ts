import semver from "semver";
import type { ReleaseHistoryEntry } from "./types.ts";

/** Whether a requirement holds, or why it cannot be judged. */
export type RangeVerdict =
  | { kind: "satisfied" }
  | { kind: "unsatisfied" }
  | { kind: "invalid"; reason: string };

/** Schema versions are integers, compared as `N.0.0` against a semver range (">=5 <7", "^6"). */
export function schemaSatisfies(schema: number, range: string): RangeVerdict {
  if (!Number.isInteger(schema) || schema < 0) {
    return { kind: "invalid", reason: `schema version ${schema} is not a non-negative integer` };
  }
  return versionSatisfies(`${schema}.0.0`, range);
}

/**
 * An API version against a range. A loosely written version ("2", "v2.1") is coerced to semver
 * rather than refused: declaring "2" and meaning 2.0.0 is common and harmless.
 */
export function apiSatisfies(version: string, range: string): RangeVerdict {
  const normalized = semver.valid(version) ?? semver.coerce(version)?.version ?? null;
  if (normalized === null) return { kind: "invalid", reason: `"${version}" is not a semver version` };
  return versionSatisfies(normalized, range);
}

function versionSatisfies(version: string, range: string): RangeVerdict {
  if (semver.validRange(range) === null)
    return { kind: "invalid", reason: `"${range}" is not a semver range` };
  return semver.satisfies(version, range) ? { kind: "satisfied" } : { kind: "unsatisfied" };
}

/**
 * A release counts as proven when it is marked proven, or when it was proven and later only
 * superseded by a newer release (a release that failed or was rolled back since does not count).
 */
export function wasProven(entry: ReleaseHistoryEntry): boolean {
  if (entry.status === "proven") return true;
  return entry.provenAt !== null && entry.status !== "failed" && entry.status !== "rolled-back";
}

/** Newest first by `deployedAt`; on a tie, the later record in the list is taken as newer. */
export function newestFirst(entries: readonly ReleaseHistoryEntry[]): ReleaseHistoryEntry[] {
  return entries
    .map((entry, index) => ({ entry, index }))
    .sort((a, b) => b.entry.deployedAt - a.entry.deployedAt || b.index - a.index)
    .map((item) => item.entry);
}
