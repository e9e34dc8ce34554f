/**
 * Running npm, npx and an installed `homeostat` as a user would, for the package tests: the
 * system's npm found on PATH (never one under node_modules), output captured, a deadline on each.
 */

import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, dirname, join } from "node:path";

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `command args` to completion in `cwd`; rejects after `timeoutMs` (killing it). */
export function run(
  command: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${command} ${args.join(" ")} did not finish within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

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
