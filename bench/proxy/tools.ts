/**
 * The outside programs the benches compare against or load with (HAProxy, nginx, wrk, and a C
 * compiler for the native open-loop generator): found on
 * PATH, or installed from the distribution (Debian: `apt-get install -y`) when the bench runs as
 * root and one is missing. Versions are recorded with the results.
 */

import { spawnSync } from "node:child_process";
import { log } from "./teardown.ts";

/** Debian package that provides each command. */
const PACKAGE_OF: Record<string, string> = { haproxy: "haproxy", nginx: "nginx", wrk: "wrk", cc: "gcc" };

export function hasCommand(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

/**
 * Make sure every command in `commands` is on PATH, installing the missing ones with apt-get
 * (`apt-get update` once, only if the install fails without it).
 * @throws when one is missing and cannot be installed
 */
export function ensureCommands(commands: readonly string[]): void {
  const missing = commands.filter((c) => !hasCommand(c));
  if (missing.length === 0) return;
  const packages = missing.map((c) => PACKAGE_OF[c] ?? c);
  if (process.getuid?.() !== 0 || !hasCommand("apt-get")) {
    throw new Error(
      `missing ${missing.join(", ")}: install them (Debian: apt-get install -y ${packages.join(" ")})`,
    );
  }
  log(`installing ${packages.join(", ")} with apt-get…`);
  const install = () =>
    spawnSync("apt-get", ["install", "-y", ...packages], {
      stdio: ["ignore", "ignore", "inherit"],
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    }).status === 0;
  if (!install()) {
    spawnSync("apt-get", ["update"], { stdio: ["ignore", "ignore", "inherit"] });
    if (!install()) throw new Error(`apt-get install -y ${packages.join(" ")} failed`);
  }
  const still = commands.filter((c) => !hasCommand(c));
  if (still.length > 0) throw new Error(`still missing after apt-get: ${still.join(", ")}`);
}

function firstLine(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: "utf8" });
  // nginx -v prints to stderr; wrk -v exits 1.
  return `${result.stdout ?? ""}${result.stderr ?? ""}`.trim().split("\n")[0] ?? "";
}

export interface ToolVersions {
  haproxy: string;
  nginx: string;
  wrk: string;
}

export function toolVersions(): ToolVersions {
  return {
    haproxy: firstLine("haproxy", ["-v"]).replace(/ - https?:\/\/\S+$/, ""),
    nginx: firstLine("nginx", ["-v"]).replace(/^nginx version: /, ""),
    wrk: firstLine("wrk", ["-v"]).replace(/ Copyright.*$/, ""),
  };
}
