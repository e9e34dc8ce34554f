/**
 * Run an action with write-ahead journaling: the intent is recorded before anything happens and
 * the result after, so a controller that crashes mid-action leaves a visible trace
 * (`pendingIntents`) instead of a silent gap.
 */

import type { Reason } from "../decide/reasons.ts";

export interface Journal {
  journalIntent(j: { at: number; action: string; target: string; reason: string; data?: unknown }): number;
  journalResult(id: number, r: { at: number; ok: boolean; detail: string }): void;
}

export async function journaled<T>(
  journal: Journal,
  now: () => number,
  entry: { action: string; target: string; reason: Reason; data?: unknown },
  run: () => Promise<T>,
  describe: (value: T) => string,
): Promise<T> {
  const id = journal.journalIntent({
    at: now(),
    action: entry.action,
    target: entry.target,
    reason: `${entry.reason.code}: ${entry.reason.message}`,
    data: entry.data,
  });
  try {
    const value = await run();
    journal.journalResult(id, { at: now(), ok: true, detail: describe(value) });
    return value;
  } catch (error) {
    journal.journalResult(id, {
      at: now(),
      ok: false,
      detail: error instanceof Error ? error.message : String(error),
    });
    throw error;
  }
}
