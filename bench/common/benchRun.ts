/**
 * What every bench does at its end: write the JSON result under `bench/results/` (gitignored)
 * and exit with the bench's verdict, whatever timer a failed poll left behind.
 */

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "../../test/helpers/e2e.ts";

export const RESULTS_DIR = join(REPO, "bench/results");

/** A start time as it appears in result file names: 2026-11-26T08-24-00-000Z. */
export function resultStamp(startedAt: Date): string {
  return startedAt.toISOString().replace(/[:.]/g, "-");
}

/** Write `value` to `bench/results/<name>-<stamp>.json`; returns the path. */
export function saveResult(name: string, startedAt: Date, value: unknown): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${name}-${resultStamp(startedAt)}.json`);
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
  return file;
}

/** The timing fields every result file starts with. */
export function runTimes(
  startedAt: Date,
  finishedAt: Date,
): { startedAt: string; finishedAt: string; durationMs: number } {
  return {
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationMs: finishedAt.getTime() - startedAt.getTime(),
  };
}

/**
 * The end of a bench: save `result`, say where, print its markdown, and fail the run (exit code 1)
 * unless `ok`.
 */
export function publishResult<T>(
  name: string,
  startedAt: Date,
  result: T,
  render: (result: T) => string,
  log: (message: string) => void,
  ok: boolean,
): void {
  const file = saveResult(name, startedAt, result);
  log(`results written to ${file}`);
  process.stdout.write(render(result));
  if (!ok) process.exitCode = 1;
}

/** Run a bench's `main`, report a failure through `log`, and exit with its code. */
export async function runBench(main: () => Promise<void>, log: (message: string) => void): Promise<never> {
  try {
    await main();
  } catch (error) {
    log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exitCode = 1;
  }
  // Anything left behind (a timer of a failed poll) must not keep the bench alive.
  process.exit(process.exitCode ?? 0);
}
