/**
 * API tokens as the store keeps them: a name, a role and the sha256 of the secret (never the
 * secret itself). A name is unique among live tokens; revoked ones stay for the audit trail.
 */

import type { SqlDatabase } from "./sql/database.ts";

/** A token's role (the same three as the API's `Role`: the store does not depend on the server). */
export type TokenRole = "viewer" | "operator" | "admin";

/** A token as stored: everything but the secret, which is never kept. */
export interface TokenRecord {
  id: number;
  name: string;
  role: TokenRole;
  createdAt: number;
  /** Who created it: the name of the creating token, or `homeostat up` for the first admin token. */
  createdBy: string;
  revokedAt: number | null;
  /** Last authenticated request (updated at most once a minute). */
  lastUsedAt: number | null;
}

type Row = Record<string, unknown>;

function tokenFromRow(row: Row): TokenRecord {
  return {
    id: row.id as number,
    name: row.name as string,
    role: row.role as TokenRole,
    createdAt: row.created_at as number,
    createdBy: row.created_by as string,
    revokedAt: (row.revoked_at as number | null) ?? null,
    lastUsedAt: (row.last_used_at as number | null) ?? null,
  };
}

const COLUMNS = "id, name, role, created_at, created_by, revoked_at, last_used_at";

export class TokenStore {
  readonly #db: SqlDatabase;
  readonly #sql: SqlDatabase;

  constructor(db: SqlDatabase) {
    this.#db = db;
    this.#sql = db;
  }

  /**
   * Stores a new token by the hash of its secret. Returns null when a live token already has
   * `name` (the caller says so in its own terms).
   */
  insert(t: {
    name: string;
    role: TokenRole;
    hash: string;
    createdBy: string;
    at: number;
  }): TokenRecord | null {
    return this.#db.transaction(() => {
      if (this.live(t.name) !== null) return null;
      const inserted = this.#sql.get(
        "INSERT INTO tokens (name, role, hash, created_at, created_by) VALUES (?, ?, ?, ?, ?) RETURNING id",
        t.name,
        t.role,
        t.hash,
        t.at,
        t.createdBy,
      );
      return this.byId(Number(inserted?.id));
    });
  }

  /** The live (unrevoked) token whose secret hashes to `hash`, or null. */
  byHash(hash: string): TokenRecord | null {
    const row = this.#sql.get(`SELECT ${COLUMNS} FROM tokens WHERE hash = ? AND revoked_at IS NULL`, hash);
    return row ? tokenFromRow(row) : null;
  }

  /** Any token (revoked too) whose secret hashes to `hash`: to tell "revoked" from "unknown". */
  anyByHash(hash: string): TokenRecord | null {
    const row = this.#sql.get(`SELECT ${COLUMNS} FROM tokens WHERE hash = ?`, hash);
    return row ? tokenFromRow(row) : null;
  }

  byId(id: number): TokenRecord | null {
    const row = this.#sql.get(`SELECT ${COLUMNS} FROM tokens WHERE id = ?`, id);
    return row ? tokenFromRow(row) : null;
  }

  /** The live token named `name`, or null. */
  live(name: string): TokenRecord | null {
    const row = this.#sql.get(`SELECT ${COLUMNS} FROM tokens WHERE name = ? AND revoked_at IS NULL`, name);
    return row ? tokenFromRow(row) : null;
  }

  /** Every token, live first, then by id; revoked ones only when `includeRevoked`. */
  list(options: { includeRevoked?: boolean } = {}): TokenRecord[] {
    const rows = options.includeRevoked
      ? this.#sql.all(`SELECT ${COLUMNS} FROM tokens ORDER BY revoked_at IS NOT NULL, id`)
      : this.#sql.all(`SELECT ${COLUMNS} FROM tokens WHERE revoked_at IS NULL ORDER BY id`);
    return rows.map(tokenFromRow);
  }

  /** How many live tokens hold `role`. */
  countLive(role: TokenRole): number {
    const row = this.#sql.get("SELECT count(*) AS n FROM tokens WHERE role = ? AND revoked_at IS NULL", role);
    return Number(row?.n ?? 0);
  }

  /**
   * Revokes token `id` unless `refuse` (given the token, read in the same transaction) says why
   * not. Returns the token as revoked, `{ refused }`, or null when there is no live token `id`.
   */
  revoke(
    id: number,
    at: number,
    refuse: (token: TokenRecord) => string | undefined = () => undefined,
  ): TokenRecord | { refused: string } | null {
    return this.#db.transaction(() => {
      const token = this.byId(id);
      if (token === null || token.revokedAt !== null) return null;
      const why = refuse(token);
      if (why !== undefined) return { refused: why };
      this.#sql.run("UPDATE tokens SET revoked_at = ? WHERE id = ?", at, id);
      return this.byId(id);
    });
  }

  /** Notes that token `id` was used at `at`. */
  touch(id: number, at: number): void {
    this.#sql.run("UPDATE tokens SET last_used_at = ? WHERE id = ?", at, id);
  }
}
