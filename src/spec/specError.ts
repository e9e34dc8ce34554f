import type { PathSegment } from "./yamlSource.ts";

/** One problem in a fleet file, positioned at the node that causes it. */
export interface SpecError {
  /** The file as the caller named it (relative paths stay relative). */
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  col: number;
  /** Dotted path of the offending node, e.g. `services.api.replicas`; empty for syntax errors. */
  path: string;
  message: string;
}

/** `fleet.yaml:12:7: services.api.replicas: expected a positive integer, got "three"` */
export function formatSpecError(error: SpecError): string {
  const where = `${error.file}:${error.line}:${error.col}`;
  return error.path === "" ? `${where}: ${error.message}` : `${where}: ${error.path}: ${error.message}`;
}

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** `["services", "api", "dependsOn", 0]` → `services.api.dependsOn[0]`; odd keys are quoted: `releases["1.0"]`. */
export function formatPath(path: readonly PathSegment[]): string {
  let text = "";
  for (const segment of path) {
    if (typeof segment === "number") text += `[${segment}]`;
    else if (PLAIN_KEY.test(segment)) text += text === "" ? segment : `.${segment}`;
    else text += `[${JSON.stringify(segment)}]`;
  }
  return text;
}
