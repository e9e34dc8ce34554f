/**
 * {@link SqlDatabase} on PostgreSQL: the store several controllers share (leader election,
 * `src/store/leadership.ts`). Chosen with `--store postgres://…` or `HOMEOSTAT_STORE`.
 *
 * The store's interface is synchronous (see `database.ts`) and `pg` is not, so the connection lives
 * on a worker thread of its own: each call posts the query, blocks on a shared flag
 * (`Atomics.wait`) until the worker has the answer, and takes it with `receiveMessageOnPort`. One
 * worker per connection, because a transaction belongs to one connection. Why not a library for
 * this (synckit) in docs/decisions/0002-postgresql-store.md.
 *
 * Every wait has a deadline: a store that does not answer is an error (HS_STORE_UNAVAILABLE), the
 * worker is replaced, and the next call connects again.
 */

import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from "node:worker_threads";
import { HomeostatError } from "../../errors.ts";
import { modulePath } from "../../lib/modulePath.ts";
import type { SqlDatabase, SqlRow, SqlRunResult, SqlValue } from "./database.ts";
import { toPostgresDdl, toPostgresPlaceholders } from "./dialect.ts";
import type { WorkerResponse } from "./postgresWorker.ts";

/** How long one statement may run on the server. */
const STATEMENT_TIMEOUT_MS = 3_000;
/** How long the store's thread waits for any answer (the statement's time plus the round trip). */
const CALL_TIMEOUT_MS = 4_000;
/** How long connecting may take: the worker thread's start (loading `pg`) plus the connection. */
const CONNECT_TIMEOUT_MS = 15_000;
/** After a deadline passed, how long a woken process still waits for an answer its worker has. */
const WAKE_GRACE_MS = 300;
/** A session frozen inside a transaction loses it (and its locks) after this long. */
const IDLE_IN_TRANSACTION_TIMEOUT_MS = 1_000;
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** A PostgreSQL store address, parsed: the `schema` parameter is Homeostat's, the rest is libpq's. */
export interface PostgresAddress {
  /** The connection string without `schema`. */
  connectionString: string;
  /** The schema the store's tables live in (created if missing), or null for the default search path. */
  schema: string | null;
  /** The address to show: no password. */
  shown: string;
}

/**
 * Parses a `postgres://` or `postgresql://` address.
 * @throws HomeostatError HS_USAGE for anything else, or a schema name PostgreSQL would need quoted.
 */
export function parsePostgresAddress(address: string): PostgresAddress {
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    throw badAddress(address, "it is not a URL");
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    throw badAddress(address, `the scheme is ${url.protocol.replace(/:$/, "")}, not postgres`);
  }
  const schema = url.searchParams.get("schema");
  if (schema !== null && !SCHEMA_NAME.test(schema)) {
    throw badAddress(
      address,
      `schema "${schema}" must be lower-case letters, digits and _ (not starting with a digit)`,
    );
  }
  url.searchParams.delete("schema");
  const connectionString = url.toString();
  const shownUrl = new URL(url.toString());
  if (shownUrl.password !== "") shownUrl.password = "***";
  if (schema !== null) shownUrl.searchParams.set("schema", schema);
  return { connectionString, schema, shown: shownUrl.toString() };
}

/** True when `store` names a PostgreSQL store. */
export function isPostgresAddress(store: string): boolean {
  return /^postgres(ql)?:\/\//i.test(store);
}

export class PostgresDatabase implements SqlDatabase {
  readonly dialect = "postgres" as const;
  readonly location: string;
  readonly #address: PostgresAddress;
  readonly #flag = new Int32Array(new SharedArrayBuffer(4));
  #worker: Worker | null = null;
  #port: MessagePort | null = null;
  #nextId = 1;
  #depth = 0;
  #open = true;
  readonly #texts = new Map<string, string>();

  private constructor(address: PostgresAddress) {
    this.#address = address;
    this.location = address.shown;
  }

  /**
   * Connects (blocking until connected) and makes sure the schema is Homeostat's or empty.
   * @throws HomeostatError HS_STORE_UNAVAILABLE, HS_STATE_FOREIGN, HS_USAGE
   */
  static connect(address: string): PostgresDatabase {
    const db = new PostgresDatabase(parsePostgresAddress(address));
    try {
      db.#start();
      db.#checkOurs();
    } catch (error) {
      db.close();
      throw error;
    }
    return db;
  }

  get isOpen(): boolean {
    return this.#open;
  }

  run(sql: string, ...values: SqlValue[]): SqlRunResult {
    return { changes: this.#call(this.#text(sql), values).rowCount };
  }

  get(sql: string, ...values: SqlValue[]): SqlRow | undefined {
    return this.#call(this.#text(sql), values).rows[0];
  }

  all(sql: string, ...values: SqlValue[]): SqlRow[] {
    return this.#call(this.#text(sql), values).rows;
  }

  exec(script: string): void {
    this.#call(toPostgresDdl(script), undefined);
  }

  /**
   * A transaction holding the store's write lock (a transaction-scoped advisory lock per schema),
   * so read-then-write sequences serialize across controllers exactly as SQLite's `BEGIN IMMEDIATE`
   * does on one machine.
   */
  transaction<T>(fn: () => T): T {
    return this.#inTransaction(`BEGIN; SELECT pg_advisory_xact_lock(hashtext(current_schema()))`, fn);
  }

  readTransaction<T>(fn: () => T): T {
    return this.#inTransaction("BEGIN ISOLATION LEVEL REPEATABLE READ", fn);
  }

  readonly clockSql = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

  /** The server's clock: every controller sharing the store reads the same one. */
  clockMs(): number {
    const row = this.#call("SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint AS now", [])
      .rows[0];
    return Number(row?.now);
  }

  schemaVersion(): number {
    const row = this.#call("SELECT version FROM homeostat_schema WHERE id = 1", []).rows[0];
    return row === undefined ? 0 : Number(row.version);
  }

  setSchemaVersion(version: number): void {
    this.#call(
      "INSERT INTO homeostat_schema (id, version) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET version = excluded.version",
      [version],
    );
  }

  close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#stop();
  }

  #inTransaction<T>(begin: string, fn: () => T): T {
    if (this.#depth > 0) return fn();
    this.#call(begin, undefined);
    this.#depth = 1;
    try {
      const result = fn();
      this.#call("COMMIT", undefined);
      return result;
    } catch (error) {
      try {
        if (this.#worker !== null) this.#call("ROLLBACK", undefined);
      } catch {
        // The connection is gone with its transaction: nothing was committed.
      }
      throw error;
    } finally {
      this.#depth = 0;
    }
  }

  #text(sql: string): string {
    let text = this.#texts.get(sql);
    if (text === undefined) {
      text = toPostgresPlaceholders(sql);
      this.#texts.set(sql, text);
    }
    return text;
  }

  #checkOurs(): void {
    const tables = this.#call(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()",
      [],
    ).rows.map((r) => String(r.table_name));
    if (tables.length > 0 && !tables.includes("homeostat_schema")) {
      throw new HomeostatError(
        "HS_STATE_FOREIGN",
        `${this.location}: the schema holds ${tables.length} table(s) but is not a Homeostat store (no homeostat_schema table); it was not modified. Give another schema with ?schema=NAME`,
        { details: { store: this.location, tables: tables.slice(0, 10) } },
      );
    }
    this.transaction(() =>
      this.#call(
        "CREATE TABLE IF NOT EXISTS homeostat_schema (id INTEGER PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL)",
        undefined,
      ),
    );
  }

  #start(): void {
    const { port1, port2 } = new MessageChannel();
    Atomics.store(this.#flag, 0, 0);
    const worker = new Worker(modulePath("./postgresWorker.ts", import.meta.url), {
      workerData: {
        flag: this.#flag,
        port: port2,
        connection: {
          connectionString: this.#address.connectionString,
          connectionTimeoutMillis: CALL_TIMEOUT_MS,
        },
        schema: this.#address.schema,
        statementTimeoutMs: STATEMENT_TIMEOUT_MS,
        idleInTransactionTimeoutMs: IDLE_IN_TRANSACTION_TIMEOUT_MS,
      },
      transferList: [port2],
      // The parent's flags are not the worker's business (`-e`/`--input-type` would break its start).
      execArgv: [],
    });
    // Neither thread keeps the process alive: the store's owner decides when it ends.
    worker.unref();
    port1.unref();
    this.#worker = worker;
    this.#port = port1;
    this.#await(0, "connect", CONNECT_TIMEOUT_MS);
  }

  #stop(): void {
    this.#port?.close();
    void this.#worker?.terminate();
    this.#worker = null;
    this.#port = null;
  }

  #call(sql: string, values: SqlValue[] | undefined): { rows: SqlRow[]; rowCount: number } {
    if (!this.#open) throw new HomeostatError("HS_INTERNAL", `${this.location}: the store is closed`);
    if (this.#worker === null) {
      // A connection lost inside a transaction took the transaction with it: say so, do not go on.
      if (this.#depth > 0) throw unavailable(this.location, "the connection was lost inside a transaction");
      this.#start();
    }
    const id = this.#nextId++;
    Atomics.store(this.#flag, 0, 0);
    this.#port?.postMessage({ id, sql, ...(values === undefined ? {} : { values: values.map(toParam) }) });
    return this.#await(id, sql);
  }

  #await(id: number, what: string, timeoutMs = CALL_TIMEOUT_MS): { rows: SqlRow[]; rowCount: number } {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0 || Atomics.wait(this.#flag, 0, 0, left) === "timed-out") {
        // A process frozen (SIGSTOP) past the deadline wakes with its worker frozen too: give the
        // worker a moment to deliver an answer it has, rather than call a live store unavailable.
        const late = Atomics.wait(this.#flag, 0, 0, WAKE_GRACE_MS) !== "timed-out" && this.#port !== null;
        const message = late && this.#port !== null ? receiveMessageOnPort(this.#port) : undefined;
        const answer = message?.message as WorkerResponse | undefined;
        if (answer?.id === id && answer.ok) return { rows: answer.rows, rowCount: answer.rowCount };
        this.#stop();
        throw unavailable(this.location, `no answer within ${timeoutMs} ms (${summary(what)})`);
      }
      const message = this.#port ? receiveMessageOnPort(this.#port) : undefined;
      if (message === undefined) {
        // Woken with nothing to read yet: wait again for the flag.
        Atomics.store(this.#flag, 0, 0);
        continue;
      }
      const response = message.message as WorkerResponse;
      if (response.id !== id) continue;
      if (response.ok) return { rows: response.rows, rowCount: response.rowCount };
      if (id === 0) {
        this.#stop();
        throw unavailable(this.location, response.message);
      }
      // A lost connection is the store unavailable, not a statement it refused: the caller may try
      // again on a new one (outside a transaction), and a leader frozen inside a transaction past
      // its lease, whose session the server ended meanwhile, leaves as deposed rather than as a
      // crash (runController's uncaught handler asks its own clock on HS_STORE_UNAVAILABLE).
      if (isConnectionLoss(response.code)) {
        this.#stop();
        throw unavailable(this.location, `${response.message} (${summary(what)})`);
      }
      throw new HomeostatError("HS_STORE_ERROR", `${this.location}: ${response.message} (${summary(what)})`, {
        details: { store: this.location, code: response.code ?? null },
      });
    }
  }
}

function toParam(value: SqlValue): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value);
  return value;
}

/** SQLSTATE classes 08 (connection exception) and 57P (operator intervention, e.g. admin shutdown). */
function isConnectionLoss(code: string | undefined): boolean {
  return code === undefined || code.startsWith("08") || code.startsWith("57P");
}

function summary(sql: string): string {
  const flat = sql.replace(/\s+/g, " ").trim();
  return flat.length > 80 ? `${flat.slice(0, 77)}...` : flat;
}

function unavailable(location: string, why: string): HomeostatError {
  return new HomeostatError(
    "HS_STORE_UNAVAILABLE",
    `${location}: the PostgreSQL store is unavailable: ${why}`,
    {
      details: { store: location },
    },
  );
}

function badAddress(address: string, why: string): HomeostatError {
  return new HomeostatError(
    "HS_USAGE",
    `--store ${address.replace(/:[^:@/]*@/, ":***@")}: ${why}; give postgres://USER@HOST:PORT/DATABASE[?schema=NAME]`,
  );
}
