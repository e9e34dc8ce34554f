/**
 * The one interface every store class talks to: a synchronous SQL connection. Two backends
 * implement it — SQLite (`node:sqlite`, the embedded default) and PostgreSQL (several controllers
 * on one store; see `postgresDatabase.ts`) — so the schema, the migrations and every query are
 * written once, in the shared dialect described in `dialect.ts`.
 *
 * Synchronous on purpose: the controller's decisions read and write the store inside one pass, and
 * a pass must not interleave with another turn of the event loop half-way through a transaction.
 */

/** A value bound to a `?` placeholder. */
export type SqlValue = string | number | bigint | null | Uint8Array;

/** A result row: column name to value. */
export type SqlRow = Record<string, unknown>;

/** What a data-changing statement did. */
export interface SqlRunResult {
  /** Rows inserted, updated or deleted. */
  changes: number;
}

/** The backend a connection talks to. */
export type SqlDialect = "sqlite" | "postgres";

/**
 * A synchronous SQL connection in the shared dialect: `?` placeholders, `INSERT … ON CONFLICT …
 * DO UPDATE`, `INSERT … RETURNING`, subqueries in FROM with an alias.
 */
export interface SqlDatabase {
  readonly dialect: SqlDialect;
  /** Where the data lives, for messages: a file path, or a PostgreSQL address without password. */
  readonly location: string;
  /** True until {@link SqlDatabase.close}. */
  readonly isOpen: boolean;
  /** Runs a data-changing statement. */
  run(sql: string, ...values: SqlValue[]): SqlRunResult;
  /** The first row of a query, or undefined. */
  get(sql: string, ...values: SqlValue[]): SqlRow | undefined;
  /** Every row of a query. */
  all(sql: string, ...values: SqlValue[]): SqlRow[];
  /** Runs a script of statements with no parameters (migrations). */
  exec(script: string): void;
  /**
   * Runs `fn` in one write transaction, serialized with every other writer of the same store (the
   * SQLite write lock; a PostgreSQL advisory lock): all of its changes land or none do. Nested calls
   * join the outer transaction.
   */
  transaction<T>(fn: () => T): T;
  /** Runs the reads in `fn` against one consistent snapshot. */
  readTransaction<T>(fn: () => T): T;
  /** The store's clock in epoch ms: leases are timed by it, so controllers' clocks need not agree. */
  clockMs(): number;
  /** The same clock as an SQL expression (epoch ms, an integer), to compare with inside a statement. */
  readonly clockSql: string;
  /** The schema version the store is at (0 when new). */
  schemaVersion(): number;
  /** Sets the schema version; only inside {@link SqlDatabase.transaction}. */
  setSchemaVersion(version: number): void;
  close(): void;
}
