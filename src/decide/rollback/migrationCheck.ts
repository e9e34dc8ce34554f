import { checkResult, type WeighedFinding } from "./checkResult.ts";
import type { RollbackContext } from "./context.ts";
import { listSome } from "./display.ts";
import { describeSchema, liveSchema } from "./liveSchema.ts";
import type { AppliedMigration, CheckResult, ReleaseHistoryEntry } from "./types.ts";
import { schemaSatisfies } from "./versions.ts";

/** The migrations applied to one datastore since the target was deployed, and whether they matter. */
export interface DatastoreSince {
  datastore: string;
  /** Oldest first. */
  migrations: AppliedMigration[];
  /**
   * `declared-compatible`: the target declares a schema range that holds the live schema (it was
   * built to run on it). `undone`: the datastore is back where it was when the target was
   * deployed. `in-the-way`: the target would meet a schema it never ran on.
   */
  standing: "declared-compatible" | "undone" | "in-the-way";
}

/**
 * Migrations applied after `target` was deployed, grouped by datastore. A migration counts when it
 * was applied after the target's deploy time, or by a release of this service deployed after the
 * target (so a skewed clock cannot hide it). The target's own migrations never count, and other
 * services' migrations count only on datastores this service uses.
 */
export function migrationsSince(context: RollbackContext, target: ReleaseHistoryEntry): DatastoreSince[] {
  const self = context.service.name;
  const laterReleases = new Set(
    [...context.history, context.facts.current]
      .filter((entry) => entry.deployedAt > target.deployedAt && entry.version !== target.version)
      .map((entry) => entry.version),
  );
  const used = datastoresUsed(context, target);
  const byDatastore = new Map<string, AppliedMigration[]>();
  for (const applied of context.facts.appliedMigrations) {
    const ours = applied.service === self;
    if (ours && applied.version === target.version) continue;
    if (!ours && !used.has(applied.migration.datastore)) continue;
    const after = applied.at > target.deployedAt || (ours && laterReleases.has(applied.version));
    if (!after) continue;
    const list = byDatastore.get(applied.migration.datastore) ?? [];
    list.push(applied);
    byDatastore.set(applied.migration.datastore, list);
  }
  return [...byDatastore].map(([datastore, migrations]) => ({
    datastore,
    migrations,
    standing: standingOf(context, target, datastore, migrations),
  }));
}

function datastoresUsed(context: RollbackContext, target: ReleaseHistoryEntry): Set<string> {
  const used = new Set<string>();
  for (const spec of [target.spec, context.facts.current.spec]) {
    for (const datastore of Object.keys(spec.requires.schemas)) used.add(datastore);
    for (const migration of spec.migrations) used.add(migration.datastore);
  }
  for (const applied of context.facts.appliedMigrations) {
    if (applied.service === context.service.name) used.add(applied.migration.datastore);
  }
  return used;
}

function standingOf(
  context: RollbackContext,
  target: ReleaseHistoryEntry,
  datastore: string,
  migrations: AppliedMigration[],
): DatastoreSince["standing"] {
  const reading = liveSchema(context, datastore);
  if (reading === undefined) return "in-the-way";
  const declared = target.spec.requires.schemas[datastore];
  if (declared !== undefined && schemaSatisfies(reading.version, declared).kind === "satisfied") {
    return "declared-compatible";
  }
  if (reading.source === "live" && reading.version === migrations[0]!.migration.from) return "undone";
  return "in-the-way";
}

/**
 * The down-migrations an operator must run before rolling back to `target`, in the order to run
 * them (newest first). Empty when an irreversible migration stands in the way: no down-migration
 * can help then.
 */
export function downMigrationsNeeded(
  context: RollbackContext,
  target: ReleaseHistoryEntry,
): AppliedMigration[] {
  const inTheWay = new Set(
    migrationsSince(context, target)
      .filter((since) => since.standing === "in-the-way")
      .flatMap((since) => since.migrations),
  );
  if ([...inTheWay].some((applied) => !applied.migration.reversible)) return [];
  // `appliedMigrations` is oldest first; undoing goes the other way.
  return context.facts.appliedMigrations.filter((applied) => inTheWay.has(applied)).reverse();
}

/**
 * What the schemas went through since the target ran. An irreversible migration in the way blocks
 * (the target's code meets a schema it cannot run on, and nothing brings the old one back); a
 * reversible one warns (its down-migration must run first, and Homeostat does not run it). A
 * target that declares a schema range holding the live schema, or a datastore already back where
 * the target left it, is not in the way.
 */
export function migrationCheck(context: RollbackContext, target: ReleaseHistoryEntry): CheckResult {
  const to = target.version;
  const findings: WeighedFinding[] = migrationsSince(context, target).flatMap((since) =>
    datastoreFindings(context, target, since),
  );
  return checkResult("migrations", findings, (severity, ordered) => {
    if (ordered.length === 0) return `no schema migration ran since ${to} was deployed`;
    if (severity === "blocking") {
      const irreversible = ordered
        .filter((item) => item.severity === "blocking")
        .map((item) => item.finding.message);
      return `${to} cannot run on the schemas as they are now: ${listSome(irreversible, 3)}`;
    }
    if (severity === "warning") {
      const steps = downMigrationsNeeded(context, target).map(
        (applied) => `${applied.migration.datastore} ${applied.migration.to}→${applied.migration.from}`,
      );
      return `rolling back to ${to} needs these down-migrations first, in this order: ${steps.join(", ")}; Homeostat does not run them`;
    }
    return `the migrations since ${to} was deployed do not stand in its way`;
  });
}

function datastoreFindings(
  context: RollbackContext,
  target: ReleaseHistoryEntry,
  since: DatastoreSince,
): WeighedFinding[] {
  const { datastore, migrations } = since;
  const field = `migrations.${datastore}`;
  const first = migrations[0]!;
  const last = migrations.at(-1)!;
  const path = migrations.map(
    (applied) => `${applied.migration.from}→${applied.migration.to} by ${applied.version}`,
  );
  if (since.standing !== "in-the-way") {
    const reading = liveSchema(context, datastore)!;
    const why =
      since.standing === "declared-compatible"
        ? `${target.version} declares it runs on schema ${target.spec.requires.schemas[datastore]} and ${describeSchema(datastore, reading)}`
        : `${datastore} is back at schema ${reading.version}, where ${target.version} left it`;
    const message = `${datastore} changed since ${target.version} (${path.join(", ")}), but ${why}`;
    return [
      {
        severity: "ok",
        finding: { field, expected: String(first.migration.from), actual: String(reading.version), message },
      },
    ];
  }
  // Newest first: the order in which they would have to be undone.
  return [...migrations].reverse().map((applied): WeighedFinding => {
    const { from, to, reversible } = applied.migration;
    const message = reversible
      ? `would need the down-migration of ${datastore} ${to}→${from} (applied by ${applied.service} ${applied.version}) first; Homeostat does not run it`
      : `${datastore} ${from}→${to} by ${applied.version} is irreversible: ${target.version} cannot run on schema ${to}`;
    return {
      severity: reversible ? "warning" : "blocking",
      finding: { field, expected: String(first.migration.from), actual: String(last.migration.to), message },
    };
  });
}
