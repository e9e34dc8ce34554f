import type { RollbackContext } from "./context.ts";

/** A datastore's schema version now, and where that number comes from. */
export interface SchemaReading {
  version: number;
  source: "live" | "last-migration" | "initial";
}

/**
 * The live schema of `datastore`: the live fact when there is one; otherwise the target of the last
 * migration Homeostat applied to it; otherwise the fleet file's `initialVersion` (what the spec
 * says to assume before any migration ran). `undefined` when the datastore is unknown everywhere.
 */
export function liveSchema(context: RollbackContext, datastore: string): SchemaReading | undefined {
  const live = context.facts.schemas[datastore];
  if (live !== undefined) return { version: live, source: "live" };
  const migrations = context.facts.appliedMigrations.filter(
    (applied) => applied.migration.datastore === datastore,
  );
  const last = migrations.at(-1);
  if (last !== undefined) return { version: last.migration.to, source: "last-migration" };
  const declared = context.fleet.datastores?.find((store) => store.name === datastore);
  if (declared !== undefined) return { version: declared.initialVersion, source: "initial" };
  return undefined;
}

/** "orders-db is at schema 6", with a note when the number is not a live reading. */
export function describeSchema(datastore: string, reading: SchemaReading): string {
  const note =
    reading.source === "live"
      ? ""
      : reading.source === "last-migration"
        ? " (from the last migration applied; no live reading)"
        : " (its declared initial version; no live reading)";
  return `${datastore} is at schema ${reading.version}${note}`;
}
