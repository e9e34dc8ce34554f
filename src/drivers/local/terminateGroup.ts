/**
 * The stop escalation for one process group: SIGTERM (plus SIGCONT for stopped members), then
 * SIGKILL once the grace period is over, until the group is empty. A grace of 0 skips SIGTERM.
 */

import { setTimeout as delay } from "node:timers/promises";
import { HomeostatError } from "../../errors.ts";
import { groupHasMembers, killProcessGroup, resumeGroupIfStopped } from "./processGroup.ts";

export interface TerminateOptions {
  graceMs: number;
  /** How long SIGKILL may take before giving up (a process stuck in uninterruptible sleep). */
  killTimeoutMs: number;
  pollMs: number;
  /**
   * Extra condition for "done" besides an empty group, e.g. that the leader's exit status has
   * been collected. Defaults to always true.
   */
  isSettled?: () => boolean;
  /** Monotonic clock for the deadlines; defaults to `performance.now`. */
  now?: () => number;
}

/**
 * Terminate every process of group `pgid`. Resolves once the group is empty (and `isSettled`
 * holds); rejects with `HS_DRIVER_STOP_FAILED` if processes survive SIGKILL for `killTimeoutMs`.
 */
export async function terminateGroup(pgid: number, options: TerminateOptions): Promise<void> {
  const now = options.now ?? (() => performance.now());
  const isSettled = options.isSettled ?? (() => true);
  const done = (): boolean => !groupHasMembers(pgid) && isSettled();

  if (done()) return;
  if (options.graceMs > 0) {
    killProcessGroup(pgid, "SIGTERM");
    resumeGroupIfStopped(pgid);
  }

  const killAt = now() + Math.max(0, options.graceMs);
  let killed = false;
  let giveUpAt = Number.POSITIVE_INFINITY;
  let lastKillAt = Number.NEGATIVE_INFINITY;
  while (!done()) {
    const current = now();
    if (!killed && current >= killAt) {
      killed = true;
      giveUpAt = current + options.killTimeoutMs;
    }
    if (killed && current - lastKillAt >= 1000) {
      // Repeated in case a member forked while the previous SIGKILL was being delivered.
      killProcessGroup(pgid, "SIGKILL");
      lastKillAt = current;
    }
    if (current >= giveUpAt) {
      throw new HomeostatError(
        "HS_DRIVER_STOP_FAILED",
        `process group ${pgid} still has processes ${options.killTimeoutMs} ms after SIGKILL`,
        { details: { pgid } },
      );
    }
    const untilKill = killed ? options.pollMs : Math.max(1, Math.min(options.pollMs, killAt - current));
    await delay(untilKill);
  }
}
