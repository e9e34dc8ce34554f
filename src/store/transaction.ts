import type { DatabaseSync } from "node:sqlite";

/**
 * Runs `fn` inside one write transaction: either all of its changes land or none do, even if the
 * process is killed half-way. `BEGIN IMMEDIATE` takes the write lock up front so that a
 * read-then-write (the controller lock) cannot interleave with another writer. Nested calls
 * join the outer transaction.
 */
export function inTransaction<T>(db: DatabaseSync, fn: () => T): T {
  if (db.isTransaction) return fn();
  db.exec("BEGIN IMMEDIATE");
  try {
    const result = fn();
    db.exec("COMMIT");
    return result;
  } catch (error) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw error;
  }
}

/**
 * Runs the reads in `fn` against one snapshot of the database, so that several SELECTs agree
 * with each other even while another process writes. Takes no write lock.
 */
export function inReadTransaction<T>(db: DatabaseSync, fn: () => T): T {
  if (db.isTransaction) return fn();
  db.exec("BEGIN DEFERRED");
  try {
    return fn();
  } finally {
    if (db.isTransaction) db.exec("COMMIT");
  }
}
