/**
 * The PostgreSQL connection's own thread (see `postgresDatabase.ts`): runs each query the store's
 * thread posts with `pg`, posts the answer back, then wakes the store's thread, which has been
 * waiting on the shared flag.
 */

import { type MessagePort, workerData } from "node:worker_threads";
import pg from "pg";

/** A request from the store's thread. */
export type WorkerRequest = { id: number; sql: string; values?: unknown[] };

/** The answer to one request. */
export type WorkerResponse =
  | { id: number; ok: true; rows: Record<string, unknown>[]; rowCount: number }
  | { id: number; ok: false; message: string; code?: string };

interface Setup {
  flag: Int32Array;
  port: MessagePort;
  connection: pg.ClientConfig;
  schema: string | null;
  statementTimeoutMs: number;
  idleInTransactionTimeoutMs: number;
}

const INT8_OID = 20;
const NUMERIC_OID = 1700;
// Ids, counts and epoch milliseconds are BIGINT: as numbers, like SQLite returns them (all fit 2^53).
pg.types.setTypeParser(INT8_OID, (v) => Number(v));
pg.types.setTypeParser(NUMERIC_OID, (v) => Number(v));

const setup = workerData as Setup;
const client = new pg.Client(setup.connection);
// A dropped connection is reported to the next query; the thread itself must not die of it.
client.on("error", () => {});

function answer(response: WorkerResponse): void {
  setup.port.postMessage(response);
  Atomics.store(setup.flag, 0, 1);
  Atomics.notify(setup.flag, 0);
}

function failure(id: number, error: unknown): WorkerResponse {
  const e = error as { message?: string; code?: string };
  return { id, ok: false, message: e?.message ?? String(error), ...(e?.code ? { code: e.code } : {}) };
}

async function connect(): Promise<void> {
  await client.connect();
  // A controller frozen (SIGSTOP) inside a transaction must not hold the store's write lock for
  // ever: the server ends such a session, and the others go on.
  await client.query(`SET idle_in_transaction_session_timeout = ${setup.idleInTransactionTimeoutMs}`);
  await client.query(`SET statement_timeout = ${setup.statementTimeoutMs}`);
  if (setup.schema !== null) {
    // Two controllers creating the same new schema at once: IF NOT EXISTS alone races in PostgreSQL.
    const key = `homeostat:${setup.schema}`;
    await client.query("SELECT pg_advisory_lock(hashtext($1))", [key]);
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS "${setup.schema}"`);
    } finally {
      await client.query("SELECT pg_advisory_unlock(hashtext($1))", [key]);
    }
    await client.query(`SET search_path TO "${setup.schema}"`);
  }
}

const ready = connect().then(
  () => answer({ id: 0, ok: true, rows: [], rowCount: 0 }),
  (error) => answer(failure(0, error)),
);

setup.port.on("message", (request: WorkerRequest) => {
  void ready.then(async () => {
    try {
      const result =
        request.values === undefined
          ? await client.query(request.sql)
          : await client.query(request.sql, request.values);
      // A script of several statements answers with one result per statement: the last one counts.
      const last = Array.isArray(result) ? result.at(-1) : result;
      answer({ id: request.id, ok: true, rows: last?.rows ?? [], rowCount: last?.rowCount ?? 0 });
    } catch (error) {
      answer(failure(request.id, error));
    }
  });
});
