/**
 * Schema migrations, shared by both backends (written in the shared dialect of
 * `sql/dialect.ts`; PostgreSQL gets them translated). The store records the version it is at
 * (SQLite: `PRAGMA user_version`; PostgreSQL: the `homeostat_schema` table); each migration runs
 * in its own transaction together with the bump of that version, so a controller killed
 * mid-migration leaves the store at the previous version, never in between.
 *
 * Append new migrations at the end; never edit or reorder a released one.
 */

import type { DatabaseSync } from "node:sqlite";
import { HomeostatError } from "../errors.ts";
import { BRAKES_MIGRATION } from "./brakeStore.ts";
import type { SqlDatabase } from "./sql/database.ts";

/** `PRAGMA application_id` of every Homeostat state database: "HMST" in ASCII. */
export const HOMEOSTAT_APPLICATION_ID = 0x484d5354;

export interface Migration {
  /** 1, 2, 3, …: the `user_version` the database is at once this migration has run. */
  version: number;
  /** SQL script, or a function for changes SQL alone cannot express. */
  up: string | ((db: SqlDatabase) => void);
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    up: `
      CREATE TABLE controller (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        pid INTEGER NOT NULL,
        start_time TEXT,
        api_port INTEGER NOT NULL,
        started_at INTEGER NOT NULL
      );
      CREATE TABLE fleet_applies (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        file TEXT NOT NULL,
        spec_json TEXT NOT NULL,
        at INTEGER NOT NULL
      );
      CREATE TABLE releases (
        service TEXT NOT NULL,
        version TEXT NOT NULL,
        spec_json TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        PRIMARY KEY (service, version)
      );
      CREATE TABLE instances (
        name TEXT PRIMARY KEY,
        service TEXT NOT NULL,
        slot INTEGER NOT NULL,
        port INTEGER NOT NULL,
        release TEXT NOT NULL,
        zone TEXT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER,
        start_time TEXT,
        log_path TEXT,
        started_at INTEGER,
        generation INTEGER NOT NULL,
        desired TEXT NOT NULL CHECK (desired IN ('running', 'stopped')),
        last_exit_code INTEGER,
        last_exit_signal TEXT,
        last_exit_at INTEGER
      );
      CREATE TABLE slots (
        instance TEXT PRIMARY KEY,
        consecutive_failures INTEGER NOT NULL,
        restart_times TEXT NOT NULL,
        next_start_at INTEGER,
        crash_loop INTEGER NOT NULL CHECK (crash_loop IN (0, 1)),
        updated_at INTEGER NOT NULL
      );
      CREATE TABLE incidents (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        service TEXT NOT NULL,
        instance TEXT NOT NULL,
        kind TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
        reason TEXT NOT NULL,
        detected_at INTEGER NOT NULL,
        last_good_at INTEGER,
        action_started_at INTEGER,
        mitigated_at INTEGER,
        closed_at INTEGER,
        ttd_ms INTEGER,
        ttr_ms INTEGER,
        detail TEXT NOT NULL
      );
      CREATE TABLE incident_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        incident_id INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
        at INTEGER NOT NULL,
        phase TEXT NOT NULL,
        detail TEXT NOT NULL
      );
      CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        type TEXT NOT NULL,
        service TEXT,
        instance TEXT,
        reason TEXT NOT NULL,
        message TEXT NOT NULL,
        data TEXT
      );
      CREATE TABLE journal (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        reason TEXT NOT NULL,
        data TEXT,
        result_at INTEGER,
        result_ok INTEGER CHECK (result_ok IN (0, 1)),
        result_detail TEXT
      );
    `,
  },
  {
    version: 2,
    // The lookups the controller and the CLI make on every tick or request.
    up: `
      CREATE INDEX incident_events_by_incident ON incident_events (incident_id, id);
      CREATE INDEX incidents_by_instance_status ON incidents (instance, status);
      CREATE INDEX incidents_by_status_detected ON incidents (status, detected_at);
      CREATE INDEX events_by_service ON events (service, seq);
      CREATE INDEX journal_pending ON journal (id) WHERE result_at IS NULL;
    `,
  },
  {
    version: 3,
    // Releases as deployed (full records with status and proof), rollouts, and the facts of the
    // world that rollbacks cannot change: datastore schema versions and applied migrations.
    up: `
      CREATE TABLE release_history (
        service TEXT NOT NULL,
        version TEXT NOT NULL,
        spec_json TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        status TEXT NOT NULL,
        deployed_at INTEGER NOT NULL,
        proven_at INTEGER,
        evidence_json TEXT,
        PRIMARY KEY (service, version)
      );
      CREATE TABLE service_state (
        service TEXT PRIMARY KEY,
        active_release TEXT NOT NULL,
        active_bank INTEGER NOT NULL CHECK (active_bank IN (0, 1)),
        spec_release TEXT NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE TABLE rollouts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        service TEXT NOT NULL,
        kind TEXT NOT NULL,
        state_json TEXT NOT NULL,
        finished INTEGER NOT NULL DEFAULT 0,
        updated_at INTEGER NOT NULL
      );
      CREATE INDEX rollouts_active ON rollouts (service) WHERE finished = 0;
      CREATE TABLE datastore_versions (
        datastore TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        at INTEGER NOT NULL,
        source TEXT NOT NULL
      );
      CREATE TABLE applied_migrations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        service TEXT NOT NULL,
        version TEXT NOT NULL,
        datastore TEXT NOT NULL,
        from_version INTEGER NOT NULL,
        to_version INTEGER NOT NULL,
        reversible INTEGER NOT NULL,
        at INTEGER NOT NULL
      );
    `,
  },
  {
    version: 4,
    up: `
      CREATE TABLE failover_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        state_json TEXT NOT NULL,
        updated_at INTEGER NOT NULL
      );
    `,
  },
  {
    version: 5,
    // API tokens (sha256 of the secret only; a name is unique among live tokens) and the audit
    // trail of every change asked of the API, refused ones included.
    up: `
      CREATE TABLE tokens (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
        hash TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        revoked_at INTEGER,
        last_used_at INTEGER
      );
      CREATE UNIQUE INDEX tokens_live_name ON tokens (name) WHERE revoked_at IS NULL;
      CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        token_id INTEGER,
        token_name TEXT NOT NULL,
        role TEXT,
        method TEXT NOT NULL,
        route TEXT,
        url TEXT NOT NULL,
        params_json TEXT,
        body_json TEXT,
        reason TEXT,
        status INTEGER NOT NULL,
        error_code TEXT,
        duration_ms REAL NOT NULL
      );
    `,
  },
  {
    version: 6,
    // Recovery: what each instance was launched with (a hash of its release's launch config and
    // the secret versions it referenced), so an instance on an old config is seen even when its
    // version key matches; and when an incident stabilized and passed the verification gate.
    // Instances launched before this version keep NULLs: their convergence is "unknown".
    up: `
      ALTER TABLE instances ADD COLUMN config_hash TEXT;
      ALTER TABLE instances ADD COLUMN secret_versions TEXT;
      ALTER TABLE incidents ADD COLUMN stabilized_at INTEGER;
      ALTER TABLE incidents ADD COLUMN verified_at INTEGER;
    `,
  },
  {
    version: 7,
    // Spec revisions (src/store/specRevisions.ts): every fleet file applied, its full text and
    // hash, the resolved spec, the diff from the one before, who, why, and how far applying got.
    up: `
      CREATE TABLE spec_revisions (
        number INTEGER PRIMARY KEY,
        content_hash TEXT NOT NULL,
        file TEXT NOT NULL,
        text TEXT NOT NULL,
        spec_json TEXT NOT NULL,
        diff_json TEXT,
        who TEXT NOT NULL,
        reason TEXT,
        at INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('applying', 'applied', 'failed')),
        settled_at INTEGER,
        error TEXT
      );
    `,
  },
  {
    version: 8,
    // Leadership (src/store/leadership.ts): the lease one controller holds, timed by the store's
    // clock, and the fencing token that grows with every new leader; every journal entry carries the
    // token of the controller that wrote it.
    up: `
      CREATE TABLE leadership (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        holder TEXT NOT NULL,
        token INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        acquired_at INTEGER NOT NULL,
        renewed_at INTEGER NOT NULL,
        pid INTEGER NOT NULL,
        host TEXT NOT NULL,
        api_url TEXT
      );
      ALTER TABLE journal ADD COLUMN token INTEGER;
    `,
  },
  {
    version: 9,
    // Automation brakes (src/store/brakeStore.ts): the pause (who, why, since), which outlives the
    // controller, and the automated actions the rate limits count over their windows.
    up: BRAKES_MIGRATION,
  },
];

/** The schema version this code writes. */
export const LATEST_VERSION: number = MIGRATIONS.at(-1)?.version ?? 0;

/** `PRAGMA user_version` of a SQLite database (the pre-open check reads files this way). */
export function userVersion(db: DatabaseSync): number {
  const row = db.prepare("PRAGMA user_version").get() as { user_version: number } | undefined;
  return row?.user_version ?? 0;
}

export function applicationId(db: DatabaseSync): number {
  const row = db.prepare("PRAGMA application_id").get() as { application_id: number } | undefined;
  return row?.application_id ?? 0;
}

/**
 * Brings `db` up to the last version in `migrations`, one transaction per migration, on either
 * backend: the transaction holds the store's write lock, so two controllers starting at once on
 * one PostgreSQL store run each migration once. Throws HS_STATE_TOO_NEW (changing nothing) if the
 * store is already past it. `path` is only for messages.
 */
export function migrate(
  db: SqlDatabase,
  migrations: readonly Migration[] = MIGRATIONS,
  path = db.location,
): void {
  assertOrdered(migrations);
  const latest = migrations.at(-1)?.version ?? 0;
  const found = db.schemaVersion();
  if (found > latest) throw tooNew(path, found, latest);
  for (const migration of migrations) {
    if (migration.version <= found) continue;
    db.transaction(() => {
      // Re-read under the write lock: another process may have migrated since we looked.
      const current = db.schemaVersion();
      if (current > latest) throw tooNew(path, current, latest);
      if (current >= migration.version) return;
      if (typeof migration.up === "string") db.exec(migration.up);
      else migration.up(db);
      db.setSchemaVersion(migration.version);
    });
  }
}

/** The HS_STATE_TOO_NEW error, shared with the pre-open check in `stateFile.ts`. */
export function tooNew(path: string, found: number, latest: number): HomeostatError {
  return new HomeostatError(
    "HS_STATE_TOO_NEW",
    `${path}: state database is at schema version ${found} but this Homeostat only knows up to ${latest}; ` +
      "it was not modified. Use the newer Homeostat that wrote it, or move it aside to start fresh",
    { details: { path, version: found, latest } },
  );
}

function assertOrdered(migrations: readonly Migration[]): void {
  migrations.forEach((migration, index) => {
    if (!Number.isInteger(migration.version) || migration.version !== index + 1) {
      throw new HomeostatError(
        "HS_INTERNAL",
        `migration #${index} has version ${migration.version}; versions must be 1, 2, 3, … in order`,
      );
    }
  });
}
