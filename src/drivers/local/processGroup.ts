/**
 * Signalling whole process groups. Every instance leads its own group (it is spawned detached),
 * so signalling `-pgid` reaches the instance and everything it forked, however deep.
 */

import { processesInGroup, processState } from "../../lib/procStat.ts";

/**
 * Send `signal` to every process of group `pgid`. Returns false when the group no longer exists
 * (ESRCH), true when the signal was delivered; any other error (EPERM…) is thrown.
 */
export function killProcessGroup(pgid: number, signal: NodeJS.Signals): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) {
    // kill(0) or kill(-1) would signal our own group or every process we may signal.
    throw new RangeError(`refusing to signal process group ${pgid}`);
  }
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw error;
  }
}

/** True when some live member of group `pgid` is job-control stopped (state T). */
export function groupHasStoppedMember(pgid: number): boolean {
  return processesInGroup(pgid).some((pid) => processState(pid) === "T");
}

/**
 * SIGCONT the group if any member is stopped: a stopped process keeps SIGTERM pending and
 * would only die at the SIGKILL deadline otherwise.
 */
export function resumeGroupIfStopped(pgid: number): void {
  if (groupHasStoppedMember(pgid)) killProcessGroup(pgid, "SIGCONT");
}

/** True while group `pgid` has at least one live (non-zombie) member. */
export function groupHasMembers(pgid: number): boolean {
  return processesInGroup(pgid).length > 0;
}
