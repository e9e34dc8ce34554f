/**
 * The release ledger: every release as deployed (full record, status, proof), the active release
 * and bank of each service, rollouts in progress or done, and the facts of the world that a
 * rollback cannot undo — datastore schema versions and the migrations applied to them.
 */

import type {
  AppliedMigration,
  ProofEvidence,
  ReleaseHistoryEntry,
  ReleaseStatus,
} from "../decide/rollback/types.ts";
import { HomeostatError } from "../errors.ts";
import type { MigrationSpec, ReleaseSpec } from "../spec/model.ts";
import type { SqlDatabase, SqlValue } from "./sql/database.ts";

type Row = Record<string, SqlValue>;

export interface ServiceState {
  service: string;
  activeRelease: string;
  activeBank: 0 | 1;
  /** The fleet file's `release` when this state was written: if the file changes, the file wins. */
  specRelease: string;
  updatedAt: number;
}

export interface RolloutRecord<T> {
  id: number;
  service: string;
  kind: "deploy" | "rollback";
  state: T;
  finished: boolean;
  updatedAt: number;
}

export class ReleaseLedger {
  readonly #db: SqlDatabase;
  readonly #sql: SqlDatabase;

  constructor(db: SqlDatabase) {
    this.#db = db;
    this.#sql = db;
  }

  // ── Release history ────────────────────────────────────────────────────────────────────────

  /** Record a release as deployed now (or refresh its record), with a status. */
  recordRelease(e: {
    service: string;
    spec: ReleaseSpec;
    contentHash: string;
    status: ReleaseStatus;
    at: number;
  }): void {
    this.#run(
      `INSERT INTO release_history (service, version, spec_json, content_hash, status, deployed_at)
       VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (service, version) DO UPDATE SET
         spec_json = excluded.spec_json, content_hash = excluded.content_hash,
         status = excluded.status, deployed_at = excluded.deployed_at`,
      e.service,
      e.spec.version,
      JSON.stringify(e.spec),
      e.contentHash,
      e.status,
      e.at,
    );
  }

  setReleaseStatus(service: string, version: string, status: ReleaseStatus, evidence?: ProofEvidence): void {
    const result =
      evidence === undefined
        ? this.#run(
            `UPDATE release_history SET status = ? WHERE service = ? AND version = ?`,
            status,
            service,
            version,
          )
        : this.#run(
            `UPDATE release_history SET status = ?, proven_at = ?, evidence_json = ? WHERE service = ? AND version = ?`,
            status,
            evidence.at,
            JSON.stringify(evidence),
            service,
            version,
          );
    if (Number(result.changes) === 0) {
      throw new HomeostatError("HS_NOT_FOUND", `no release ${version} of ${service} in the history`);
    }
  }

  /** History of a service, newest first (at most `limit`). */
  history(service: string, limit = 100): ReleaseHistoryEntry[] {
    return this.#all(
      `SELECT * FROM release_history WHERE service = ? ORDER BY deployed_at DESC, rowid DESC LIMIT ?`,
      service,
      limit,
    ).map(toHistoryEntry);
  }

  release(service: string, version: string): ReleaseHistoryEntry | null {
    const row = this.#get(
      `SELECT * FROM release_history WHERE service = ? AND version = ?`,
      service,
      version,
    );
    return row ? toHistoryEntry(row) : null;
  }

  /** Keep the newest `keep` releases of a service (never the active one). */
  prune(service: string, keep: number, active: string): void {
    this.#run(
      `DELETE FROM release_history WHERE service = ? AND version != ? AND rowid NOT IN (
         SELECT rowid FROM release_history WHERE service = ? ORDER BY deployed_at DESC, rowid DESC LIMIT ?)`,
      service,
      active,
      service,
      keep,
    );
  }

  // ── Active release per service ─────────────────────────────────────────────────────────────

  serviceState(service: string): ServiceState | null {
    const row = this.#get(`SELECT * FROM service_state WHERE service = ?`, service);
    if (!row) return null;
    return {
      service: String(row.service),
      activeRelease: String(row.active_release),
      activeBank: Number(row.active_bank) === 1 ? 1 : 0,
      specRelease: String(row.spec_release),
      updatedAt: Number(row.updated_at),
    };
  }

  setServiceState(s: ServiceState): void {
    this.#run(
      `INSERT INTO service_state (service, active_release, active_bank, spec_release, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (service) DO UPDATE SET active_release = excluded.active_release, active_bank = excluded.active_bank,
         spec_release = excluded.spec_release, updated_at = excluded.updated_at`,
      s.service,
      s.activeRelease,
      s.activeBank,
      s.specRelease,
      s.updatedAt,
    );
  }

  // ── Rollouts ───────────────────────────────────────────────────────────────────────────────

  startRollout<T>(
    service: string,
    kind: RolloutRecord<T>["kind"],
    state: (id: number) => T,
    at: number,
  ): RolloutRecord<T> {
    return this.#db.transaction(() => {
      if (this.#get(`SELECT id FROM rollouts WHERE service = ? AND finished = 0`, service)) {
        throw new HomeostatError("HS_CONFLICT", `a deploy or rollback of ${service} is already in progress`);
      }
      const inserted = this.#get(
        `INSERT INTO rollouts (service, kind, state_json, finished, updated_at) VALUES (?, ?, '{}', 0, ?) RETURNING id`,
        service,
        kind,
        at,
      );
      const id = Number(inserted?.id);
      const value = state(id);
      this.#run(`UPDATE rollouts SET state_json = ? WHERE id = ?`, JSON.stringify(value), id);
      return { id, service, kind, state: value, finished: false, updatedAt: at };
    });
  }

  saveRollout<T>(id: number, state: T, finished: boolean, at: number): void {
    this.#run(
      `UPDATE rollouts SET state_json = ?, finished = ?, updated_at = ? WHERE id = ?`,
      JSON.stringify(state),
      finished ? 1 : 0,
      at,
      id,
    );
  }

  activeRollouts<T>(): RolloutRecord<T>[] {
    return this.#all(`SELECT * FROM rollouts WHERE finished = 0 ORDER BY id`).map((r) => toRollout<T>(r));
  }

  rollouts<T>(service: string, limit = 20): RolloutRecord<T>[] {
    return this.#all(`SELECT * FROM rollouts WHERE service = ? ORDER BY id DESC LIMIT ?`, service, limit).map(
      (r) => toRollout<T>(r),
    );
  }

  // ── Datastores and migrations ──────────────────────────────────────────────────────────────

  datastoreVersion(datastore: string): { version: number; at: number; source: string } | null {
    const row = this.#get(`SELECT * FROM datastore_versions WHERE datastore = ?`, datastore);
    return row ? { version: Number(row.version), at: Number(row.at), source: String(row.source) } : null;
  }

  setDatastoreVersion(datastore: string, version: number, at: number, source: string): void {
    this.#run(
      `INSERT INTO datastore_versions (datastore, version, at, source) VALUES (?, ?, ?, ?)
       ON CONFLICT (datastore) DO UPDATE SET version = excluded.version, at = excluded.at, source = excluded.source`,
      datastore,
      version,
      at,
      source,
    );
  }

  /** Record that `version` of `service` applied `migration` (and move the datastore's version). */
  recordMigration(service: string, version: string, migration: MigrationSpec, at: number): void {
    this.#db.transaction(() => {
      this.#run(
        `INSERT INTO applied_migrations (service, version, datastore, from_version, to_version, reversible, at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
        service,
        version,
        migration.datastore,
        migration.from,
        migration.to,
        migration.reversible ? 1 : 0,
        at,
      );
      this.setDatastoreVersion(migration.datastore, migration.to, at, `migration by ${service} ${version}`);
    });
  }

  appliedMigrations(): AppliedMigration[] {
    return this.#all(`SELECT * FROM applied_migrations ORDER BY id`).map((r) => ({
      service: String(r.service),
      version: String(r.version),
      migration: {
        datastore: String(r.datastore),
        from: Number(r.from_version),
        to: Number(r.to_version),
        reversible: Number(r.reversible) === 1,
      },
      at: Number(r.at),
    }));
  }

  #run(sql: string, ...values: SqlValue[]) {
    return this.#sql.run(sql, ...values);
  }

  #get(sql: string, ...values: SqlValue[]): Row | undefined {
    return this.#sql.get(sql, ...values) as Row | undefined;
  }

  #all(sql: string, ...values: SqlValue[]): Row[] {
    return this.#sql.all(sql, ...values) as Row[];
  }
}

function toHistoryEntry(row: Row): ReleaseHistoryEntry {
  return {
    service: String(row.service),
    version: String(row.version),
    spec: JSON.parse(String(row.spec_json)) as ReleaseSpec,
    contentHash: String(row.content_hash),
    status: String(row.status) as ReleaseStatus,
    deployedAt: Number(row.deployed_at),
    provenAt: row.proven_at === null ? null : Number(row.proven_at),
    evidence: row.evidence_json === null ? null : (JSON.parse(String(row.evidence_json)) as ProofEvidence),
  };
}

function toRollout<T>(row: Row): RolloutRecord<T> {
  return {
    id: Number(row.id),
    service: String(row.service),
    kind: String(row.kind) as RolloutRecord<T>["kind"],
    state: JSON.parse(String(row.state_json)) as T,
    finished: Number(row.finished) === 1,
    updatedAt: Number(row.updated_at),
  };
}
