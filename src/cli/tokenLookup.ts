/**
 * Where the CLI finds its API token, and where `homeostat up` leaves a pointer to it.
 *
 * In order: `--token` or `$HOMEOSTAT_TOKEN`; the admin token in `--state-dir DIR`
 * (`DIR/admin-token`); the per-user pointer `up` wrote for the API port
 * (`<config dir>/api-PORT.json`, naming the state directory's admin-token file and the API's URL).
 * The config dir is `$HOMEOSTAT_CONFIG_DIR`, else `$XDG_CONFIG_HOME/homeostat`, else
 * `~/.config/homeostat`; it is owner-only (0700) and so are its files (0600). So after
 * `npm start` in the repository, `npx homeostat status` works from any directory.
 */

import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";

/** The per-user directory of Homeostat's pointers. */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HOMEOSTAT_CONFIG_DIR) return resolve(env.HOMEOSTAT_CONFIG_DIR);
  if (env.XDG_CONFIG_HOME) return join(resolve(env.XDG_CONFIG_HOME), "homeostat");
  return join(homedir(), ".config", "homeostat");
}

/** What `up` records for an API port. */
export interface ControllerPointer {
  apiPort: number;
  /** Where a client on this machine reaches the API (`http://127.0.0.1:7070`, or https). */
  url: string;
  stateDir: string;
  /** `<stateDir>/admin-token`. */
  tokenFile: string;
  /** The API's TLS certificate, to trust when `url` is https (self-signed certificates). */
  caFile?: string;
  pid: number;
  writtenAt: number;
}

export function pointerPath(port: number, env: NodeJS.ProcessEnv = process.env): string {
  return join(configDir(env), `api-${port}.json`);
}

/** Writes the pointer for `pointer.apiPort` (0600 in a 0700 directory); returns its path. */
export function writeControllerPointer(
  pointer: ControllerPointer,
  env: NodeJS.ProcessEnv = process.env,
): string {
  const dir = configDir(env);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const path = pointerPath(pointer.apiPort, env);
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(pointer, null, 2)}\n`, { mode: 0o600 });
  chmodSync(temporary, 0o600);
  renameSync(temporary, path);
  return path;
}

/** The pointer `up` wrote for `port`, or null (none, or unreadable). */
export function readControllerPointer(
  port: number,
  env: NodeJS.ProcessEnv = process.env,
): ControllerPointer | null {
  try {
    const pointer = JSON.parse(readFileSync(pointerPath(port, env), "utf8")) as ControllerPointer;
    return pointer.apiPort === port && typeof pointer.tokenFile === "string" ? pointer : null;
  } catch {
    return null;
  }
}

/** What this command line said about credentials (`--token`, `--state-dir`). */
export interface CommandCredentials {
  token?: string;
  stateDir?: string;
}

let commandLine: CommandCredentials = {};

/**
 * Remembers the `--token` and `--state-dir` of the command being run: the CLI runs one command
 * per process, and every API call of that command uses them (args.ts `parse` calls this).
 */
export function noteCommandLine(credentials: CommandCredentials): void {
  commandLine = credentials;
}

/** The credentials the current command line gave. */
export function commandLineCredentials(): CommandCredentials {
  return commandLine;
}

export interface TokenSearch {
  /** The token found, or undefined. */
  token?: string;
  /** Where it came from ("--token", "$HOMEOSTAT_TOKEN", a file). */
  source?: string;
  /** Every place looked at, in order, for the error message. */
  looked: string[];
}

function readToken(file: string): string | undefined {
  try {
    const text = readFileSync(file, "utf8").trim();
    return text === "" ? undefined : text;
  } catch {
    return undefined;
  }
}

/** Finds the token for API `port` (see the module comment for the order). */
export function findToken(
  port: number,
  given: CommandCredentials = {},
  env: NodeJS.ProcessEnv = process.env,
): TokenSearch {
  const looked: string[] = [];
  looked.push("--token");
  if (given.token) return { token: given.token, source: "--token", looked };
  looked.push("$HOMEOSTAT_TOKEN");
  if (env.HOMEOSTAT_TOKEN) return { token: env.HOMEOSTAT_TOKEN.trim(), source: "$HOMEOSTAT_TOKEN", looked };
  if (given.stateDir !== undefined) {
    const file = join(resolve(given.stateDir), "admin-token");
    looked.push(file);
    const token = readToken(file);
    if (token !== undefined) return { token, source: file, looked };
  }
  const pointerFile = pointerPath(port, env);
  const pointer = readControllerPointer(port, env);
  looked.push(pointer === null ? `${pointerFile} (none)` : `${pointerFile} → ${pointer.tokenFile}`);
  if (pointer !== null) {
    const token = readToken(pointer.tokenFile);
    if (token !== undefined) return { token, source: pointer.tokenFile, looked };
  }
  return { looked };
}
