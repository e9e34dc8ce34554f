/**
 * The live schema version of a datastore: read by its declared `versionCommand` when it has one
 * (the world is the authority), else the version Homeostat recorded when migrations ran.
 */

import { spawnSync } from "node:child_process";
import type { DatastoreSpec } from "../spec/model.ts";
import type { ReleaseLedger } from "../store/releaseLedger.ts";

/** A version command must answer quickly: it runs while a deploy or a rollback plan waits. */
export const VERSION_COMMAND_TIMEOUT_MS = 2_000;

export interface LiveSchema {
  version: number;
  source: string;
}

export function liveSchemaVersion(datastore: DatastoreSpec, ledger: ReleaseLedger, now: number): LiveSchema {
  const recorded = ledger.datastoreVersion(datastore.name);
  const fallback: LiveSchema = recorded
    ? { version: recorded.version, source: recorded.source }
    : { version: datastore.initialVersion, source: "initial version from the fleet file" };
  const command = datastore.versionCommand;
  if (command === undefined) return fallback;
  const result = spawnSync(command.command, command.args, {
    cwd: command.cwd,
    timeout: VERSION_COMMAND_TIMEOUT_MS,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  const text = (result.stdout ?? "").trim();
  if (result.error || result.status !== 0 || !/^\d+$/.test(text)) {
    const why = result.error
      ? result.error.message
      : result.status !== 0
        ? `exit ${result.status}`
        : `printed "${text.slice(0, 40)}"`;
    return { version: fallback.version, source: `${fallback.source} (versionCommand failed: ${why})` };
  }
  const version = Number(text);
  if (recorded?.version !== version)
    ledger.setDatastoreVersion(datastore.name, version, now, "versionCommand");
  return { version, source: "versionCommand" };
}
