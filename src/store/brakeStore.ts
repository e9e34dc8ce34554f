/**
 * Automation brakes as the store keeps them (schema version 9): whether automation is paused — by
 * whom, why, since when — and the automated actions of the last hours the rate limits count. Both
 * outlive the controller: a controller that restarts (or a follower that takes over) is paused if
 * its predecessor was, and a crash does not reset a rate limit's window.
 */

import type { AutomatedKind, AutomatedRecord, PauseState } from "../decide/brakes/types.ts";
import type { SqlDatabase } from "./sql/database.ts";

/** Migration 9: the pause (one row) and the automated actions the rate limits count. */
export const BRAKES_MIGRATION = `
      CREATE TABLE brake_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        paused INTEGER NOT NULL CHECK (paused IN (0, 1)),
        paused_by TEXT,
        reason TEXT,
        since INTEGER,
        updated_at INTEGER NOT NULL,
        updated_by TEXT NOT NULL
      );
      CREATE TABLE automated_actions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('restart', 'rollback', 'failover')),
        service TEXT,
        target TEXT NOT NULL
      );
      CREATE INDEX automated_actions_at ON automated_actions (at);
    `;

/** What a pause or a resume found. */
export type PauseChange =
  | { changed: true; previous: PauseState | null }
  | { changed: false; current: PauseState | null };

export class BrakeStore {
  readonly #db: SqlDatabase;

  constructor(db: SqlDatabase) {
    this.#db = db;
  }

  /** The pause in force, or null when automation runs. */
  pause(): PauseState | null {
    const row = this.#db.get("SELECT paused, paused_by, reason, since FROM brake_state WHERE id = 1");
    if (row === undefined || Number(row.paused) !== 1) return null;
    return { by: String(row.paused_by), reason: String(row.reason), since: Number(row.since) };
  }

  /**
   * Pauses automation unless it is paused already (then nothing changes and the pause in force is
   * returned: who paused first and why is not overwritten).
   */
  setPaused(pause: PauseState): PauseChange {
    return this.#db.transaction(() => {
      const current = this.pause();
      if (current !== null) return { changed: false, current };
      this.#upsert(1, pause.by, pause.reason, pause.since, pause.since, pause.by);
      return { changed: true, previous: null };
    });
  }

  /** Lets automation act again; `changed: false` when it was not paused. */
  resume(by: string, at: number): PauseChange {
    return this.#db.transaction(() => {
      const current = this.pause();
      if (current === null) return { changed: false, current: null };
      this.#upsert(0, null, null, null, at, by);
      return { changed: true, previous: current };
    });
  }

  /** Records an automated action the controller carried out. */
  recordAutomated(record: AutomatedRecord): void {
    this.#db.run(
      "INSERT INTO automated_actions (at, kind, service, target) VALUES (?, ?, ?, ?)",
      record.at,
      record.kind,
      record.service,
      record.target,
    );
  }

  /** Automated actions at or after `since`, oldest first. */
  automatedSince(since: number): AutomatedRecord[] {
    return this.#db
      .all("SELECT at, kind, service, target FROM automated_actions WHERE at >= ? ORDER BY at, id", since)
      .map((row) => ({
        at: Number(row.at),
        kind: row.kind as AutomatedKind,
        service: row.service === null || row.service === undefined ? null : String(row.service),
        target: String(row.target),
      }));
  }

  /** Forgets automated actions older than `before` (no window reaches back that far); returns how many. */
  pruneAutomated(before: number): number {
    return this.#db.run("DELETE FROM automated_actions WHERE at < ?", before).changes;
  }

  #upsert(
    paused: 0 | 1,
    by: string | null,
    reason: string | null,
    since: number | null,
    at: number,
    updatedBy: string,
  ): void {
    this.#db.run(
      `INSERT INTO brake_state (id, paused, paused_by, reason, since, updated_at, updated_by)
       VALUES (1, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET paused = excluded.paused, paused_by = excluded.paused_by,
         reason = excluded.reason, since = excluded.since, updated_at = excluded.updated_at,
         updated_by = excluded.updated_by`,
      paused,
      by,
      reason,
      since,
      at,
      updatedBy,
    );
  }
}
