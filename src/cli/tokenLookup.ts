/**
 * Where the CLI finds its API token, and where `homeostat up` leaves a pointer to it.
 *
 * In order: `--token` or `$HOMEOSTAT_TOKEN`; the admin token in `--state-dir DIR`
 * (`DIR/admin-token`); the per-user pointer `up` wrote for the API port
 * (`<config dir>/api-PORT.json`, naming the state directory's admin-token file and the API's URL).
 * The config dir is `$HOMEOSTAT_CONFIG_DIR`, else `$XDG_CONFIG_HOME/homeostat`, else
 * `~/.config/homeostat`; it is owner-only (0700) and so are its files (0600). So after
 * `npm start` in the repository, `npx homeostat status` works from any directory.
 *
 * The pointer decides where the token goes, so it is trusted only when it is ours and nobody else
 * can write it, and only when its URL is an http(s) address on its own port; a file is sent as a
 * token only when it holds something shaped like one (`hs_…`), whatever named it.
 */

import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { TOKEN_PATTERN } from "../server/auth/tokens.ts";

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

/**
 * Why the pointer file for `port` cannot be trusted, or undefined when it can. The pointer says
 * where the CLI sends its token: one that another user could have written (not ours, or writable
 * by group or others) could send it anywhere, so it is not read at all.
 */
function distrust(path: string): string | undefined {
  let stat: ReturnType<typeof statSync>;
  try {
    stat = statSync(path);
  } catch {
    return "none";
  }
  if (!stat.isFile()) return "not a file: not trusted";
  const uid = process.getuid?.();
  if (uid !== undefined && stat.uid !== uid) return `owned by uid ${stat.uid}, not you: not trusted`;
  if ((stat.mode & 0o022) !== 0) {
    return `writable by others (mode ${(stat.mode & 0o777).toString(8)}): not trusted`;
  }
  return undefined;
}

/** True when `url` is where an API on `port` answers: http(s), that port, no path or credentials. */
function isApiUrl(url: unknown, port: number): boolean {
  if (typeof url !== "string") return false;
  try {
    const parsed = new URL(url);
    const explicit = parsed.port === "" ? (parsed.protocol === "https:" ? 443 : 80) : Number(parsed.port);
    return (
      (parsed.protocol === "http:" || parsed.protocol === "https:") &&
      explicit === port &&
      parsed.username === "" &&
      parsed.password === "" &&
      (parsed.pathname === "/" || parsed.pathname === "")
    );
  } catch {
    return false;
  }
}

/**
 * The pointer `up` wrote for `port`, or null: none, unreadable, not trusted (see {@link distrust}),
 * or not about this port's API.
 */
export function readControllerPointer(
  port: number,
  env: NodeJS.ProcessEnv = process.env,
): ControllerPointer | null {
  const path = pointerPath(port, env);
  if (distrust(path) !== undefined) return null;
  try {
    const pointer = JSON.parse(readFileSync(path, "utf8")) as ControllerPointer;
    return pointer.apiPort === port && typeof pointer.tokenFile === "string" && isApiUrl(pointer.url, port)
      ? pointer
      : null;
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

/**
 * The token in `file`, or why there is none. Only something shaped like a token is ever taken:
 * whatever file a pointer names, its content is not sent to an API unless it is a token.
 */
function readToken(file: string): { token: string } | { missing: string } {
  let text: string;
  try {
    text = readFileSync(file, "utf8").trim();
  } catch (error) {
    return { missing: (error as NodeJS.ErrnoException).code ?? "unreadable" };
  }
  return TOKEN_PATTERN.test(text) ? { token: text } : { missing: "not a token" };
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
    const read = readToken(file);
    looked.push("token" in read ? file : `${file} (${read.missing})`);
    if ("token" in read) return { token: read.token, source: file, looked };
  }
  const pointerFile = pointerPath(port, env);
  const pointer = readControllerPointer(port, env);
  if (pointer === null) {
    looked.push(`${pointerFile} (${distrust(pointerFile) ?? "not a pointer to this port's API"})`);
    return { looked };
  }
  const read = readToken(pointer.tokenFile);
  looked.push(`${pointerFile} → ${pointer.tokenFile}${"token" in read ? "" : ` (${read.missing})`}`);
  if ("token" in read) return { token: read.token, source: pointer.tokenFile, looked };
  return { looked };
}
