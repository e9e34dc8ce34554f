/**
 * {@link SqlDatabase} on SQLite (`node:sqlite`): the embedded store, one file in the state
 * directory. Statements are prepared once per SQL text and reused (the controller runs the same few
 * queries on every pass).
 */

import type { DatabaseSync, StatementSync } from "node:sqlite";
import { HOMEOSTAT_APPLICATION_ID } from "../migrations.ts";
import type { SqlDatabase, SqlRow, SqlRunResult, SqlValue } from "./database.ts";

export class SqliteDatabase implements SqlDatabase {
  readonly dialect = "sqlite" as const;
  readonly location: string;
  readonly #db: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();

  constructor(db: DatabaseSync, location: string) {
    this.#db = db;
    this.location = location;
  }

  get isOpen(): boolean {
    return this.#db.isOpen;
  }

  run(sql: string, ...values: SqlValue[]): SqlRunResult {
    return { changes: Number(this.#prepared(sql).run(...values).changes) };
  }

  get(sql: string, ...values: SqlValue[]): SqlRow | undefined {
    return this.#prepared(sql).get(...values) as SqlRow | undefined;
  }

  all(sql: string, ...values: SqlValue[]): SqlRow[] {
    return this.#prepared(sql).all(...values) as SqlRow[];
  }

  exec(script: string): void {
    this.#db.exec(script);
  }

  /** `BEGIN IMMEDIATE` takes the write lock up front, so a read-then-write cannot interleave with another writer. */
  transaction<T>(fn: () => T): T {
    if (this.#db.isTransaction) return fn();
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const result = fn();
      this.#db.exec("COMMIT");
      return result;
    } catch (error) {
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      throw error;
    }
  }

  readTransaction<T>(fn: () => T): T {
    if (this.#db.isTransaction) return fn();
    this.#db.exec("BEGIN DEFERRED");
    try {
      return fn();
    } finally {
      if (this.#db.isTransaction) this.#db.exec("COMMIT");
    }
  }

  readonly clockSql = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";

  /** One machine, one clock: SQLite's store is only ever shared by processes of this machine. */
  clockMs(): number {
    return Date.now();
  }

  schemaVersion(): number {
    const row = this.#db.prepare("PRAGMA user_version").get() as { user_version: number } | undefined;
    return row?.user_version ?? 0;
  }

  setSchemaVersion(version: number): void {
    this.#db.exec(`PRAGMA application_id = ${HOMEOSTAT_APPLICATION_ID}`);
    this.#db.exec(`PRAGMA user_version = ${Math.trunc(version)}`);
  }

  close(): void {
    if (!this.#db.isOpen) return;
    this.#statements.clear();
    this.#db.close();
  }

  #prepared(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }
}
