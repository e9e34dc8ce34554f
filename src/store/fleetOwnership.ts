/**
 * One state directory per fleet. A state directory holds one fleet's instances, incidents, failure
 * counts and releases: a second fleet sharing it would adopt, reap or judge the first one's
 * processes by its own spec (issue 13, finding (c)). The fleet a state directory belongs to is the
 * fleet file the last controller ran (`fleet_applies`: its absolute path and resolved spec, with
 * the fleet's name); another fleet file is refused before anything is adopted or started.
 */

import { existsSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { HomeostatError } from "../errors.ts";

/** The fleet a state directory was last run for. */
export interface FleetOwner {
  /** Absolute path of the fleet file. */
  file: string;
  /** The fleet's `name` (from its resolved spec), or null when the record does not say. */
  name: string | null;
}

/** The owner as the store recorded it (`StateStore.lastFleet()`), or null for a new state directory. */
export function ownerOf(record: { file: string; specJson: string } | null): FleetOwner | null {
  if (record === null) return null;
  let name: string | null = null;
  try {
    const spec = JSON.parse(record.specJson) as { name?: unknown };
    if (typeof spec.name === "string") name = spec.name;
  } catch {
    // An unreadable spec still names its file, which is what decides.
  }
  return { file: record.file, name };
}

/**
 * Refuses to run `fleet` on a state directory another fleet file owns.
 *
 * The same file is always the same fleet (a `name:` edited in it included). Another file is a
 * different fleet, except when the recorded file no longer exists and the fleet's name is the
 * same: a fleet file that was moved or renamed keeps its state.
 * @throws HomeostatError HS_STATE_OTHER_FLEET, saying how to pick another state directory
 */
export function checkFleetOwnership(
  owner: FleetOwner | null,
  fleet: { file: string; name: string },
  stateDir: string,
): void {
  if (owner === null || owner.file === fleet.file) return;
  if (!existsSync(owner.file) && owner.name === fleet.name) return;
  const who = owner.name === null ? owner.file : `fleet "${owner.name}" (${owner.file})`;
  throw new HomeostatError(
    "HS_STATE_OTHER_FLEET",
    `${stateDir} holds the state of ${who}, not of ${fleet.file}: one state directory serves one fleet ` +
      "(instances, incidents and failure counts are per fleet). Leave out --state-dir to use this file's " +
      "own (.homeostat/<file name>/ beside it), or give another --state-dir. Nothing was started",
    { details: { stateDir, owner, fleet: { file: fleet.file, name: fleet.name } } },
  );
}

/**
 * The fleet file that a state database at `stateDir` was last run for, read without writing
 * anything (no migration, no lock): null when there is no database or it cannot say.
 */
export function peekFleetFile(stateDir: string): string | null {
  const path = join(stateDir, "state.db");
  if (!existsSync(path)) return null;
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(path, { readOnly: true });
    const row = db.prepare("SELECT file FROM fleet_applies ORDER BY id DESC LIMIT 1").get() as
      | { file?: unknown }
      | undefined;
    return typeof row?.file === "string" ? row.file : null;
  } catch {
    return null;
  } finally {
    db?.close();
  }
}
