/**
 * Write fencing for a leading controller's store: once fenced with a token, every statement that
 * changes the fleet's state (instances, slots, incidents, rollouts, failover state, spec revisions,
 * brakes, stores' topology…) runs in a write transaction that first checks, by the store's clock,
 * that the token still holds the lease. The check and the write are one transaction under the
 * store's write lock, and a new leader's claim takes the same lock, so no write of a deposed leader
 * can land after the lease passed to another — whatever the deposed leader believes.
 *
 * Not fenced: observations and bookkeeping any controller may add (events, the audit trail, API
 * token use) and the leadership tables themselves.
 */

import type { SqlDatabase, SqlRow, SqlRunResult, SqlValue } from "./database.ts";

/** Tables any controller may write whether it leads or not. */
const UNFENCED_TABLES = new Set([
  "events",
  "audit",
  "tokens",
  "leadership",
  "controller",
  "homeostat_schema",
]);

const WRITE = /^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(\w+)/i;

/** Makes the error for a refused write (HS_FENCED) and says so (after the transaction is undone). */
export interface FenceRefusal {
  error(token: number, table: string): Error;
  refused(token: number, table: string, error: Error): void;
}

export class FencedWrites implements SqlDatabase {
  readonly #db: SqlDatabase;
  readonly #token: () => number | null;
  readonly #refuse: FenceRefusal;
  readonly #fencedSql = new Map<string, string | undefined>();
  #check = "";

  constructor(db: SqlDatabase, token: () => number | null, refuse: FenceRefusal) {
    this.#db = db;
    this.#token = token;
    this.#refuse = refuse;
  }

  get dialect(): SqlDatabase["dialect"] {
    return this.#db.dialect;
  }
  get location(): string {
    return this.#db.location;
  }
  get isOpen(): boolean {
    return this.#db.isOpen;
  }
  get clockSql(): string {
    return this.#db.clockSql;
  }

  run(sql: string, ...values: SqlValue[]): SqlRunResult {
    return this.#fenced(sql, () => this.#db.run(sql, ...values));
  }

  get(sql: string, ...values: SqlValue[]): SqlRow | undefined {
    return this.#fenced(sql, () => this.#db.get(sql, ...values));
  }

  all(sql: string, ...values: SqlValue[]): SqlRow[] {
    return this.#fenced(sql, () => this.#db.all(sql, ...values));
  }

  exec(script: string): void {
    this.#db.exec(script);
  }

  transaction<T>(fn: () => T): T {
    return this.#db.transaction(fn);
  }

  readTransaction<T>(fn: () => T): T {
    return this.#db.readTransaction(fn);
  }

  clockMs(): number {
    return this.#db.clockMs();
  }

  schemaVersion(): number {
    return this.#db.schemaVersion();
  }

  setSchemaVersion(version: number): void {
    this.#db.setSchemaVersion(version);
  }

  close(): void {
    this.#db.close();
  }

  #fenced<T>(sql: string, write: () => T): T {
    const token = this.#token();
    const table = token === null ? undefined : this.#fencedTable(sql);
    if (token === null || table === undefined) return write();
    let refusal: Error | null = null;
    try {
      return this.#db.transaction(() => {
        this.#check ||= `SELECT 1 AS ok FROM leadership WHERE id = 1 AND token = ? AND expires_at > ${this.#db.clockSql}`;
        if (this.#db.get(this.#check, token) === undefined) {
          refusal = this.#refuse.error(token, table);
          throw refusal;
        }
        return write();
      });
    } catch (error) {
      if (error === refusal && refusal !== null) this.#refuse.refused(token, table, refusal);
      throw error;
    }
  }

  /** The table a fenced write changes, or undefined for a read or an unfenced table. */
  #fencedTable(sql: string): string | undefined {
    if (this.#fencedSql.has(sql)) return this.#fencedSql.get(sql);
    const table = WRITE.exec(sql)?.[1]?.toLowerCase();
    const fenced = table !== undefined && !UNFENCED_TABLES.has(table) ? table : undefined;
    this.#fencedSql.set(sql, fenced);
    return fenced;
  }
}
