import type { z } from "zod";
import type { Problem } from "./problem.ts";
import type { UnknownKeysIssueExtra } from "./schemaParts.ts";
import { didYouMean } from "./suggest.ts";
import type { PathSegment } from "./yamlSource.ts";

type Issue = z.core.$ZodIssue;

/** Parse options that keep what {@link problemsFromIssues} needs (the offending input). */
export const PARSE_OPTIONS = { reportInput: true } as const;

/**
 * Turns zod issues into positioned-to-be problems: unknown keys become one problem per key (at
 * the key, with a suggestion), missing keys point at their parent mapping, and failed unions are
 * replaced by the issues of the alternative whose type matched, when there is one.
 */
export function problemsFromIssues(issues: readonly Issue[], prefix: readonly PathSegment[] = []): Problem[] {
  return issues.flatMap((issue) => problemsFromIssue(issue, [...prefix, ...issue.path.map(toSegment)]));
}

function problemsFromIssue(issue: Issue, path: PathSegment[]): Problem[] {
  switch (issue.code) {
    case "unrecognized_keys": {
      const known = (issue as Issue & UnknownKeysIssueExtra).knownKeys ?? [];
      return issue.keys.map((key) => ({
        path: [...path, key],
        target: "key" as const,
        message: `unknown key "${key}"${didYouMean(key, known)}`,
      }));
    }
    case "invalid_key":
      return [{ path, target: "key", message: issue.message }];
    case "invalid_union": {
      if (issue.input === undefined && path.length > 0) {
        return [{ path, target: "parent", message: `missing required key "${String(path.at(-1))}"` }];
      }
      const matching = issue.errors.filter(typeMatched);
      if (matching.length === 1) return problemsFromIssues(matching[0]!, path);
      return [{ path, target: "value", message: issue.message }];
    }
    case "invalid_type":
      if (issue.input === undefined && path.length > 0) {
        return [{ path, target: "parent", message: `missing required key "${String(path.at(-1))}"` }];
      }
      return [{ path, target: "value", message: issue.message }];
    default:
      return [{ path, target: "value", message: issue.message }];
  }
}

/** A union alternative "matched" if the value had its type: its issues are all about details. */
function typeMatched(issues: readonly Issue[]): boolean {
  return issues.every(
    (issue) => issue.path.length > 0 || (issue.code !== "invalid_type" && issue.code !== "invalid_value"),
  );
}

function toSegment(key: PropertyKey): PathSegment {
  return typeof key === "number" ? key : String(key);
}
