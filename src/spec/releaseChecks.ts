import { satisfies } from "semver";
import type { Problem } from "./problem.ts";
import type { MigrationInput, ReleaseInput } from "./schema.ts";
import { didYouMean } from "./suggest.ts";
import type { PathSegment } from "./yamlSource.ts";

/** The parts of a release that the record rules read (any may be missing in an invalid file). */
export interface ReleaseRecordInput {
  requires?: ReleaseInput["requires"];
  /** Entries that failed the schema are `undefined`, so indices still match the file. */
  migrations?: readonly (MigrationInput | undefined)[] | undefined;
}

/** What the release-record rules need to know about one service. */
export interface ReleaseCheckedService {
  name: string;
  /** Undefined when unknown (invalid): requirements are then not judged against it. */
  dependsOn?: readonly string[] | undefined;
  releases?: Readonly<Record<string, ReleaseRecordInput>> | undefined;
}

/** Everything declared in the file, valid or not (so a broken declaration is not also "unknown"). */
export interface Declared {
  services: readonly string[];
  datastores: readonly string[];
}

/**
 * The rules that tie release records to the rest of the fleet: required schemas and migrations name
 * declared datastores, required APIs name services this one depends on, and a release that migrates
 * a datastore must itself accept the version it leaves behind.
 */
export function checkReleaseRecords(
  services: readonly ReleaseCheckedService[],
  declared: Declared,
): Problem[] {
  const problems: Problem[] = [];
  for (const service of services) {
    for (const [version, release] of Object.entries(service.releases ?? {})) {
      const path = ["services", service.name, "releases", version];
      problems.push(...checkSchemas(release, path, declared));
      problems.push(...checkApis(release, path, service, declared));
      problems.push(...checkMigrations(release, path, declared));
    }
  }
  return problems;
}

function checkSchemas(release: ReleaseRecordInput, path: PathSegment[], declared: Declared): Problem[] {
  return Object.keys(release.requires?.schemas ?? {}).flatMap((datastore) =>
    unknownDatastore(datastore, [...path, "requires", "schemas", datastore], "key", declared),
  );
}

function checkApis(
  release: ReleaseRecordInput,
  path: PathSegment[],
  service: ReleaseCheckedService,
  declared: Declared,
): Problem[] {
  const problems: Problem[] = [];
  for (const dependency of Object.keys(release.requires?.apis ?? {})) {
    const at = [...path, "requires", "apis", dependency];
    if (!declared.services.includes(dependency)) {
      problems.push({
        path: at,
        target: "key",
        message: `unknown service "${dependency}"${didYouMean(dependency, declared.services)}`,
      });
    } else if (service.dependsOn !== undefined && !service.dependsOn.includes(dependency)) {
      problems.push({
        path: at,
        target: "key",
        message: `requires an API of ${dependency} but does not depend on it: add ${dependency} to the dependsOn of ${service.name} (an API is checked against the running release of a dependency)`,
      });
    }
  }
  return problems;
}

function checkMigrations(release: ReleaseRecordInput, path: PathSegment[], declared: Declared): Problem[] {
  const problems: Problem[] = [];
  const highest = new Map<string, { to: number; index: number }>();
  release.migrations?.forEach((migration, index) => {
    if (migration === undefined) return;
    const at = [...path, "migrations", index];
    const unknown = unknownDatastore(migration.datastore, [...at, "datastore"], "value", declared);
    problems.push(...unknown);
    const seen = highest.get(migration.datastore);
    if (unknown.length === 0 && (seen === undefined || migration.to > seen.to)) {
      highest.set(migration.datastore, { to: migration.to, index });
    }
  });
  for (const [datastore, { to, index }] of highest) {
    const range = release.requires?.schemas?.[datastore];
    if (range === undefined || satisfies(`${to}.0.0`, String(range))) continue;
    problems.push({
      path: [...path, "migrations", index, "to"],
      target: "value",
      message: `this release migrates ${datastore} to ${to}, outside its own requirement "${range}": it could not run on the schema it leaves`,
    });
  }
  return problems;
}

function unknownDatastore(
  datastore: string,
  path: PathSegment[],
  target: "key" | "value",
  declared: Declared,
): Problem[] {
  if (declared.datastores.includes(datastore)) return [];
  const known =
    declared.datastores.length === 0
      ? "the fleet declares no datastores: add it under the top-level datastores"
      : `datastores: ${declared.datastores.join(", ")}`;
  return [
    {
      path,
      target,
      message: `unknown datastore "${datastore}"${didYouMean(datastore, declared.datastores)} (${known})`,
    },
  ];
}
