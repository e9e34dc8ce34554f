/**
 * Checks an existing `state.db` before Homeostat writes a single byte to it. Anything that is
 * not a healthy Homeostat state database of a version we understand is refused with the file
 * left exactly as found, so the operator can inspect it, restore a backup, or move it aside.
 */

import { closeSync, openSync, readSync, statSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { HomeostatError } from "../errors.ts";
import {
  applicationId,
  HOMEOSTAT_APPLICATION_ID,
  LATEST_VERSION,
  tooNew,
  userVersion,
} from "./migrations.ts";

const SQLITE_MAGIC = Buffer.from("SQLite format 3\0", "latin1");
const HEADER_BYTES = 100;
// Offsets in the 100-byte SQLite header (https://sqlite.org/fileformat.html#the_database_header).
const USER_VERSION_OFFSET = 60;
const APPLICATION_ID_OFFSET = 68;
// Primary SQLite result codes that mean "the bytes are wrong", as opposed to permissions or I/O.
const SQLITE_CORRUPT = 11;
const SQLITE_NOTADB = 26;

/**
 * Throws HS_STATE_CORRUPT, HS_STATE_FOREIGN or HS_STATE_TOO_NEW if the file at `path` must not
 * be opened for writing. A missing or empty file is fine: it becomes a new database.
 *
 * The check only reads: the header with plain file I/O, then a read-only SQLite connection for
 * `PRAGMA quick_check` (which sees committed transactions still in the WAL after a crash).
 */
export function checkStateFile(path: string, latest: number = LATEST_VERSION): void {
  const size = fileSize(path);
  if (size === null || size === 0) return;

  const header = readHeader(path);
  if (header.length < HEADER_BYTES || !header.subarray(0, SQLITE_MAGIC.length).equals(SQLITE_MAGIC)) {
    throw corrupt(path, "this is not a SQLite database");
  }
  // Cheap early answers from the header alone, before SQLite so much as creates a -wal file.
  const headerAppId = header.readInt32BE(APPLICATION_ID_OFFSET);
  if (headerAppId !== 0 && headerAppId !== HOMEOSTAT_APPLICATION_ID) throw foreign(path, headerAppId);
  const headerVersion = header.readInt32BE(USER_VERSION_OFFSET);
  if (headerAppId === HOMEOSTAT_APPLICATION_ID && headerVersion > latest) {
    throw tooNew(path, headerVersion, latest);
  }

  const found = inspectWithSqlite(path);
  const isEmpty = found.appId === 0 && found.version === 0 && found.objects === 0;
  if (found.appId !== HOMEOSTAT_APPLICATION_ID && !isEmpty) throw foreign(path, found.appId);
  if (found.version > latest) throw tooNew(path, found.version, latest);
}

interface Inspection {
  appId: number;
  version: number;
  /** Tables, indexes, views and triggers in the schema. */
  objects: number;
}

function inspectWithSqlite(path: string): Inspection {
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(path, { readOnly: true });
    const problems = (db.prepare("PRAGMA quick_check").all() as { quick_check: string }[]).map(
      (row) => row.quick_check,
    );
    if (problems.length !== 1 || problems[0] !== "ok") {
      throw corrupt(path, `integrity check failed: ${problems.slice(0, 5).join("; ")}`);
    }
    const objects = db.prepare("SELECT count(*) AS n FROM sqlite_schema").get() as { n: number };
    return { appId: applicationId(db), version: userVersion(db), objects: objects.n };
  } catch (error) {
    if (error instanceof HomeostatError) throw error;
    const code = sqliteCode(error);
    if (code === SQLITE_CORRUPT || code === SQLITE_NOTADB) {
      throw corrupt(path, `SQLite says: ${(error as Error).message}`, error);
    }
    throw new HomeostatError("HS_INTERNAL", `${path}: cannot read the state database: ${String(error)}`, {
      details: { path },
      cause: error,
    });
  } finally {
    db?.close();
  }
}

function fileSize(path: string): number | null {
  try {
    const stat = statSync(path);
    if (!stat.isFile()) throw corrupt(path, "this is not a regular file");
    return stat.size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}

function readHeader(path: string): Buffer {
  const buffer = Buffer.alloc(HEADER_BYTES);
  const fd = openSync(path, "r");
  try {
    const read = readSync(fd, buffer, 0, HEADER_BYTES, 0);
    return buffer.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}

function sqliteCode(error: unknown): number | null {
  const errcode = (error as { errcode?: unknown } | null)?.errcode;
  // Extended result codes carry the primary code in the low byte.
  return typeof errcode === "number" ? errcode & 0xff : null;
}

function corrupt(path: string, why: string, cause?: unknown): HomeostatError {
  return new HomeostatError(
    "HS_STATE_CORRUPT",
    `${path}: ${why}; it was not modified. Move it aside to start fresh, or restore a backup`,
    { details: { path }, cause },
  );
}

function foreign(path: string, appId: number): HomeostatError {
  return new HomeostatError(
    "HS_STATE_FOREIGN",
    `${path}: this is a SQLite database, but not a Homeostat state database (application_id ${appId}); ` +
      "it was not modified. Use another state directory, or move the file aside",
    { details: { path, applicationId: appId } },
  );
}
