/**
 * What every section's zod schema is built from (`schema.ts`, and `notifications.ts`, which
 * `schema.ts` mounts): error options that say what was expected and what the file gave, strict
 * mappings that name their known keys for "did you mean", and the name patterns.
 */

import { z } from "zod";
import { describeValue } from "./describeValue.ts";

/** Service, host, zone and webhook names. */
export const NAME_PATTERN = /^[a-z][a-z0-9-]{0,39}$/;
/** Environment variable names. */
export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Marks the raw zod issue of a strict object with its known keys, for "did you mean". */
export interface UnknownKeysIssueExtra {
  knownKeys?: string[];
}

type RawIssue = z.core.$ZodRawIssue;

/** An error option whose message is `expected <what>, got <the value>`. */
export function expected(what: string) {
  return { error: (issue: RawIssue) => `expected ${what}, got ${describeValue(issue.input)}` };
}

/** Like {@link expected}, with a hint to quote scalars that YAML read as numbers or booleans. */
export function expectedText(what: string) {
  return {
    error: (issue: RawIssue) => {
      const input = issue.input;
      const hint =
        typeof input === "number" || typeof input === "boolean" ? ` (quote it: "${String(input)}")` : "";
      return `expected ${what}, got ${describeValue(input)}${hint}`;
    },
  };
}

/** A mapping that rejects unknown keys, each reported with a suggestion. */
export function strict<Shape extends z.core.$ZodLooseShape>(shape: Shape, what = "a mapping") {
  const knownKeys = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue: RawIssue) => {
      if (issue.code === "unrecognized_keys") {
        (issue as RawIssue & UnknownKeysIssueExtra).knownKeys = knownKeys;
        return "unknown key";
      }
      return `expected ${what}, got ${describeValue(issue.input)}`;
    },
  });
}
