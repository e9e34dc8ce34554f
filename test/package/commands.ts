/**
 * Running npm, npx and an installed `homeostat` as a user would, for the package tests: the
 * system's npm found on PATH (never one under node_modules) and a user's environment; `run` in
 * ../helpers/run.ts runs them, output captured, a deadline on each.
 */

import { accessSync, constants } from "node:fs";
import { delimiter, dirname, join } from "node:path";

/** PATH without the node_modules/.bin folders `npm test` put first: what a user's shell has. */
export function userPath(path = process.env.PATH ?? ""): string {
  return path
    .split(delimiter)
    .filter((dir) => dir !== "" && !dir.split(/[\\/]/).includes("node_modules"))
    .join(delimiter);
}

/** The system's `name` (npm, npx) on the user's PATH, or null when it has none. */
export function systemTool(name: string): string | null {
  for (const dir of userPath().split(delimiter)) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * A user's environment: `env` without what `npm test` adds (node_modules/.bin on PATH, and the
 * npm_* variables, among them npm_config_local_prefix, which would point a nested npm at this
 * repository instead of the folder it runs in).
 */
export function userEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const clean: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(env)) {
    if (!key.toLowerCase().startsWith("npm_")) clean[key] = value;
  }
  clean.PATH = userPath(env.PATH);
  return clean;
}

/** A user's environment with this process's Node (24) first on PATH: a Node new enough. */
export function withTestNode(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const clean = userEnv(env);
  return { ...clean, PATH: `${dirname(process.execPath)}${delimiter}${clean.PATH}` };
}
