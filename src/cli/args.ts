/** Command-line parsing on `node:util` parseArgs, with errors in the catalogue's terms. */

import { existsSync } from "node:fs";
import { basename, dirname, extname, join, resolve } from "node:path";
import { type ParseArgsConfig, parseArgs } from "node:util";
import { HomeostatError } from "../errors.ts";
import { peekFleetFile } from "../store/fleetOwnership.ts";
import { DEFAULT_API_PORT } from "./apiClient.ts";
import { noteCommandLine } from "./tokenLookup.ts";

export type Options = NonNullable<ParseArgsConfig["options"]>;

export interface Parsed {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

export function parse(command: string, argv: string[], options: Options, maxPositionals: number): Parsed {
  let parsed: Parsed;
  try {
    const result = parseArgs({
      args: argv,
      options: { help: { type: "boolean", short: "h" }, ...options },
      allowPositionals: true,
      strict: true,
    });
    parsed = { values: result.values as Parsed["values"], positionals: result.positionals };
  } catch (error) {
    throw new HomeostatError(
      "HS_USAGE",
      `${command}: ${error instanceof Error ? error.message : String(error)} (see \`homeostat ${command} --help\`)`,
    );
  }
  const token = parsed.values.token;
  const stateDir = parsed.values["state-dir"];
  noteCommandLine({
    ...(typeof token === "string" ? { token } : {}),
    ...(typeof stateDir === "string" ? { stateDir: resolve(stateDir) } : {}),
  });
  if (parsed.positionals.length > maxPositionals && parsed.values.help !== true) {
    throw new HomeostatError(
      "HS_USAGE",
      `${command}: unexpected argument "${parsed.positionals[maxPositionals]}" (see \`homeostat ${command} --help\`)`,
    );
  }
  return parsed;
}

/**
 * Options of every command that calls the API: its port, and the token to send (else the CLI
 * finds one: ./tokenLookup.ts).
 */
export const apiPortOption: Options = { "api-port": { type: "string" }, token: { type: "string" } };

/** `--api-port`, else `HOMEOSTAT_API_PORT`, else 7070. */
export function apiPort(values: Parsed["values"]): number {
  const raw = values["api-port"] ?? process.env.HOMEOSTAT_API_PORT;
  if (raw === undefined || raw === true || raw === false) return DEFAULT_API_PORT;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new HomeostatError("HS_USAGE", `--api-port: expected a port number 1-65535, got "${raw}"`);
  }
  return port;
}

export function stringOption(values: Parsed["values"], name: string): string | undefined {
  const value = values[name];
  return typeof value === "string" ? value : undefined;
}

export function positiveIntOption(values: Parsed["values"], name: string, fallback: number): number {
  const raw = stringOption(values, name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1)
    throw new HomeostatError("HS_USAGE", `--${name}: expected a positive integer, got "${raw}"`);
  return n;
}

/**
 * The state directory: `--state-dir`, else the fleet `file`'s own (see {@link defaultStateDir}),
 * absolute; or undefined when neither is given (the caller says what it needs).
 */
export function stateDirOption(values: Parsed["values"], file: string | undefined): string | undefined {
  const explicit = stringOption(values, "state-dir");
  if (explicit !== undefined) return resolve(explicit);
  return file === undefined ? undefined : defaultStateDir(file);
}

/**
 * A fleet file's own state directory: `.homeostat/<file name without extension>/` beside it
 * (`fleet.yaml` → `.homeostat/fleet/`), so two fleet files in one folder never share state.
 *
 * Before issue 13 the default was `.homeostat/` itself, shared by every fleet file of the folder.
 * Such a state directory keeps working for the fleet file that last ran on it — running
 * instances are adopted, incidents and tokens kept — until it is moved (docs/operations.md,
 * "One state directory per fleet"): it is used when it exists, was last run for this very file,
 * and the file has no per-fleet state directory yet.
 */
export function defaultStateDir(file: string): string {
  const path = resolve(file);
  const folder = join(dirname(path), ".homeostat");
  const own = join(folder, fleetStem(path));
  if (!existsSync(join(own, "state.db")) && peekFleetFile(folder) === path) return folder;
  return own;
}

/** `fleet.yaml` → `fleet`; `shop.prod.yml` → `shop.prod`; a dotfile keeps its name. */
function fleetStem(path: string): string {
  const name = basename(path);
  const ext = extname(name);
  return ext === "" || ext === name ? name : name.slice(0, -ext.length);
}
