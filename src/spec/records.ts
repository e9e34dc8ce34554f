import path from "node:path";
import type { DatastoreSpec, ReleaseSpec, SecuritySpec } from "./model.ts";
import type { DatastoresInput, ReleaseInput, SecurityInput } from "./schema.ts";

/** The parts of a release that record what it needs and does: secrets, requirements, API, migrations. */
export type ReleaseRecord = Pick<ReleaseSpec, "secrets" | "requires" | "provides" | "migrations">;

/** A release's record with defaults: nothing required, nothing provided, no migrations. Versions become strings. */
export function resolveReleaseRecord(release: ReleaseInput): ReleaseRecord {
  const provides: ReleaseSpec["provides"] = {};
  if (release.provides?.api !== undefined) provides.api = release.provides.api;
  return {
    secrets: (release.secrets ?? []).map((secret) => ({
      name: secret.name,
      version: String(secret.version),
    })),
    requires: {
      schemas: stringValues(release.requires?.schemas),
      apis: stringValues(release.requires?.apis),
    },
    provides,
    migrations: (release.migrations ?? []).map((migration) => ({ ...migration })),
  };
}

/** Declared datastores in file order; a version command runs in the fleet file's directory unless it says otherwise. */
export function resolveDatastores(input: DatastoresInput | undefined, directory: string): DatastoreSpec[] {
  return Object.entries(input ?? {}).map(([name, datastore]) => {
    const resolved: DatastoreSpec = { name, initialVersion: datastore.initialVersion ?? 0 };
    const command = datastore.versionCommand;
    if (command !== undefined) {
      resolved.versionCommand = {
        command: command.command,
        args: command.args ?? [],
        cwd: path.resolve(directory, command.cwd ?? "."),
      };
    }
    return resolved;
  });
}

/** Security facts with defaults (none); secret versions become strings. */
export function resolveSecurity(input: SecurityInput | undefined): SecuritySpec {
  return {
    deniedReleases: (input?.deniedReleases ?? []).map((denied) => ({ ...denied })),
    revokedSecrets: (input?.revokedSecrets ?? []).map((revoked) => ({
      ...revoked,
      version: String(revoked.version),
    })),
  };
}

function stringValues(map: Record<string, string | number> | undefined): Record<string, string> {
  const strings: Record<string, string> = {};
  for (const [key, value] of Object.entries(map ?? {})) strings[key] = String(value);
  return strings;
}
