import type { PathSegment, PathTarget } from "./yamlSource.ts";

/** A problem found in the parsed data, before it is given a source position. */
export interface Problem {
  path: PathSegment[];
  /** Which node of `path` to point at (see {@link PathTarget}). */
  target: PathTarget;
  message: string;
}
