/**
 * PostgreSQL for tests: the machine's server (127.0.0.1:5432, trust auth, database `test`; CI
 * machines start it before the run), one fresh schema per test, dropped afterwards.
 */

import { randomBytes } from "node:crypto";
import type { TestContext } from "node:test";
import pg from "pg";

/** The server tests use; `HOMEOSTAT_TEST_PG` overrides it. */
export const TEST_PG_URL = process.env.HOMEOSTAT_TEST_PG ?? "postgres://postgres@127.0.0.1:5432/test";

/** A `--store` address for a new schema of its own, dropped (with everything in it) when the test ends. */
export function pgStoreUrl(t: TestContext, prefix = "hs_test"): string {
  const schema = `${prefix}_${randomBytes(6).toString("hex")}`;
  t.after(() => dropSchema(schema));
  const url = new URL(TEST_PG_URL);
  url.searchParams.set("schema", schema);
  return url.toString();
}

/** Runs one statement on the test server with a connection of its own. */
export async function pgQuery(sql: string, values: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: TEST_PG_URL });
  await client.connect();
  try {
    return await client.query(sql, values);
  } finally {
    await client.end();
  }
}

async function dropSchema(schema: string): Promise<void> {
  await pgQuery(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}
