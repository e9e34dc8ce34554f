/**
 * Spec revisions: every fleet file the controller was asked to run, numbered 1, 2, 3, … — the
 * file's full text and its content hash, the resolved spec, the diff from the revision applied
 * before it, who asked and why, and how far applying it got (`applying` → `applied` | `failed`).
 *
 * `homeostat up` records revision 1 on a state directory that has none; `homeostat apply` records
 * one per apply, marks it applied once converged, and a controller that finds one still `applying`
 * resumes it. `history`, `diff` and the drift check read them.
 */

import { createHash } from "node:crypto";
import type { Row } from "./rows.ts";
import type { SqlDatabase } from "./sql/database.ts";

/** How far a revision got: being converged to, done, or given up (the previous one stays applied). */
export type RevisionState = "applying" | "applied" | "failed";

/** One stored revision. */
export interface SpecRevision {
  number: number;
  /** sha256 (hex) of `text`: two revisions of the same file text have the same hash. */
  contentHash: string;
  /** Absolute path of the fleet file it was read from. */
  file: string;
  /** The fleet file's full text, as it was. */
  text: string;
  /** The resolved fleet (`FleetSpec`) as JSON. */
  specJson: string;
  /** The diff (`FleetDiff`) from the revision applied before it, as JSON; null for the first one. */
  diffJson: string | null;
  /** The token name that asked, or `homeostat up`. */
  who: string;
  reason: string | null;
  /** When it was recorded (epoch ms). */
  at: number;
  state: RevisionState;
  /** When it became `applied` or `failed`. */
  settledAt: number | null;
  /** Why it failed. */
  error: string | null;
}

/** The content hash revisions use: sha256 of the text, hex. */
export function specContentHash(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

const COLUMNS =
  "number, content_hash, file, text, spec_json, diff_json, who, reason, at, state, settled_at, error";

function revisionFromRow(row: Row): SpecRevision {
  return {
    number: row.number as number,
    contentHash: row.content_hash as string,
    file: row.file as string,
    text: row.text as string,
    specJson: row.spec_json as string,
    diffJson: (row.diff_json as string | null) ?? null,
    who: row.who as string,
    reason: (row.reason as string | null) ?? null,
    at: row.at as number,
    state: row.state as RevisionState,
    settledAt: (row.settled_at as number | null) ?? null,
    error: (row.error as string | null) ?? null,
  };
}

/** The `spec_revisions` table (see the module comment), on the store's connection. */
export class SpecRevisions {
  readonly #db: SqlDatabase;
  readonly #sql: SqlDatabase;

  constructor(db: SqlDatabase) {
    this.#db = db;
    this.#sql = db;
  }

  /**
   * Stores a new revision with the next number (`state` defaults to `applying`; `up` records its
   * first one as `applied` at once). The hash is computed from `text`.
   */
  record(r: {
    file: string;
    text: string;
    specJson: string;
    diffJson: string | null;
    who: string;
    reason?: string | null;
    at: number;
    state?: RevisionState;
  }): SpecRevision {
    return this.#db.transaction(() => {
      const last = this.#sql.get("SELECT max(number) AS n FROM spec_revisions");
      const number = Number(last?.n ?? 0) + 1;
      const state = r.state ?? "applying";
      this.#sql.run(
        `INSERT INTO spec_revisions (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
        number,
        specContentHash(r.text),
        r.file,
        r.text,
        r.specJson,
        r.diffJson,
        r.who,
        r.reason ?? null,
        r.at,
        state,
        state === "applying" ? null : r.at,
      );
      return this.get(number)!;
    });
  }

  /** Marks revision `number` applied (it becomes {@link latestApplied}). Returns it, or null if unknown. */
  markApplied(number: number, at: number): SpecRevision | null {
    this.#sql.run(
      "UPDATE spec_revisions SET state = 'applied', settled_at = ?, error = NULL WHERE number = ?",
      at,
      number,
    );
    return this.get(number);
  }

  /** Marks revision `number` failed, saying why. Returns it, or null if unknown. */
  markFailed(number: number, at: number, error: string): SpecRevision | null {
    this.#sql.run(
      "UPDATE spec_revisions SET state = 'failed', settled_at = ?, error = ? WHERE number = ?",
      at,
      error,
      number,
    );
    return this.get(number);
  }

  /** The newest applied revision: what the controller runs. Null before the first `up`. */
  latestApplied(): SpecRevision | null {
    const row = this.#sql.get(
      `SELECT ${COLUMNS} FROM spec_revisions WHERE state = 'applied' ORDER BY number DESC LIMIT 1`,
    );
    return row ? revisionFromRow(row) : null;
  }

  /** The newest revision still `applying` (an apply a controller did not finish), or null. */
  pending(): SpecRevision | null {
    const row = this.#sql.get(
      `SELECT ${COLUMNS} FROM spec_revisions WHERE state = 'applying' ORDER BY number DESC LIMIT 1`,
    );
    return row ? revisionFromRow(row) : null;
  }

  get(number: number): SpecRevision | null {
    const row = this.#sql.get(`SELECT ${COLUMNS} FROM spec_revisions WHERE number = ?`, number);
    return row ? revisionFromRow(row) : null;
  }

  /** Every revision, newest first (at most `limit`). */
  list(options: { limit?: number } = {}): SpecRevision[] {
    const limit = options.limit ?? Number.MAX_SAFE_INTEGER;
    return this.#sql
      .all(`SELECT ${COLUMNS} FROM spec_revisions ORDER BY number DESC LIMIT ?`, limit)
      .map(revisionFromRow);
  }
}

/**
 * What `homeostat up` records on a state directory with no revision yet (a new one, or one from
 * before revisions existed): revision 1, applied at once, by "homeostat up". Returns it, or null
 * when the directory already has revisions (what `up` does with a changed file is apply's call).
 * `text` is the fleet file's text as read at `up`, `specJson` the fleet resolved from it.
 */
export function recordFirstRevision(
  revisions: SpecRevisions,
  r: { file: string; text: string; specJson: string; at: number },
): SpecRevision | null {
  if (revisions.list({ limit: 1 }).length > 0) return null;
  return revisions.record({ ...r, diffJson: null, who: "homeostat up", state: "applied" });
}
