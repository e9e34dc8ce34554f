/**
 * The audit trail: one row per change asked of the API (POST, PUT, PATCH, DELETE), refused ones
 * included: who asked (token and role), what (method, route, URL, params, body with secrets
 * removed), why (the body's `reason`), and what came of it (status, error code, duration).
 */

import type { SqlDatabase } from "./sql/database.ts";

export interface AuditEntry {
  at: number;
  /** The token's id; null when the request carried no valid token. */
  tokenId: number | null;
  /** The token's name, or "anonymous". */
  tokenName: string;
  role: string | null;
  method: string;
  /** The route's pattern (`/v1/services/:service/rollback`); null when no route matched. */
  route: string | null;
  url: string;
  params: unknown;
  /** The body as parsed, secrets redacted; null when the request was refused before it was read. */
  body: unknown;
  reason: string | null;
  status: number;
  errorCode: string | null;
  durationMs: number;
}

export interface AuditRecord extends AuditEntry {
  id: number;
}

type Row = Record<string, unknown>;

function parseJson(text: unknown): unknown {
  return typeof text === "string" ? JSON.parse(text) : null;
}

function auditFromRow(row: Row): AuditRecord {
  return {
    id: row.id as number,
    at: row.at as number,
    tokenId: (row.token_id as number | null) ?? null,
    tokenName: row.token_name as string,
    role: (row.role as string | null) ?? null,
    method: row.method as string,
    route: (row.route as string | null) ?? null,
    url: row.url as string,
    params: parseJson(row.params_json),
    body: parseJson(row.body_json),
    reason: (row.reason as string | null) ?? null,
    status: row.status as number,
    errorCode: (row.error_code as string | null) ?? null,
    durationMs: row.duration_ms as number,
  };
}

const json = (value: unknown): string | null =>
  value === undefined || value === null ? null : JSON.stringify(value);

export class AuditLog {
  readonly #sql: SqlDatabase;

  constructor(db: SqlDatabase) {
    this.#sql = db;
  }

  /** Appends one entry; returns its id. */
  append(e: AuditEntry): number {
    const row = this.#sql.get(
      `INSERT INTO audit (at, token_id, token_name, role, method, route, url, params_json, body_json,
                          reason, status, error_code, duration_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
      e.at,
      e.tokenId,
      e.tokenName,
      e.role,
      e.method,
      e.route,
      e.url,
      json(e.params),
      json(e.body),
      e.reason,
      e.status,
      e.errorCode,
      e.durationMs,
    );
    return Number(row?.id);
  }

  /** Entries in id order: the newest `limit`, or the first `limit` after id `after`. */
  list(options: { limit: number; after?: number }): AuditRecord[] {
    const rows =
      options.after === undefined
        ? this.#sql.all(
            "SELECT * FROM (SELECT * FROM audit ORDER BY id DESC LIMIT ?) AS latest ORDER BY id",
            options.limit,
          )
        : this.#sql.all("SELECT * FROM audit WHERE id > ? ORDER BY id LIMIT ?", options.after, options.limit);
    return rows.map(auditFromRow);
  }
}
