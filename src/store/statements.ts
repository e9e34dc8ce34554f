/**
 * Prepared statements, prepared once per SQL text and reused: the store runs the same few queries
 * on every controller pass.
 */

import type { DatabaseSync, SQLInputValue, StatementSync } from "node:sqlite";
import type { Row } from "./rows.ts";

export class Statements {
  readonly #db: DatabaseSync;
  readonly #cache = new Map<string, StatementSync>();

  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  run(sql: string, ...values: SQLInputValue[]) {
    return this.#prepared(sql).run(...values);
  }

  get(sql: string, ...values: SQLInputValue[]): Row | undefined {
    return this.#prepared(sql).get(...values) as Row | undefined;
  }

  all(sql: string, ...values: SQLInputValue[]): Row[] {
    return this.#prepared(sql).all(...values) as Row[];
  }

  /** Forget every statement (before the database closes). */
  clear(): void {
    this.#cache.clear();
  }

  #prepared(sql: string): StatementSync {
    let statement = this.#cache.get(sql);
    if (!statement) {
      statement = this.#db.prepare(sql);
      this.#cache.set(sql, statement);
    }
    return statement;
  }
}
