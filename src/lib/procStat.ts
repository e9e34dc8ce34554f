/**
 * Linux process identity from /proc. A pid alone is not an identity (pids are recycled); the
 * pair (pid, start time in clock ticks since boot) is.
 */

import { readdirSync, readFileSync } from "node:fs";

interface ProcStat {
  state: string;
  processGroup: number;
  startTime: string;
}

function readStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // Field 2 (comm) is in parentheses and may itself contain spaces or parentheses: split after the last ')'.
  const close = text.lastIndexOf(")");
  if (close < 0) return null;
  const rest = text.slice(close + 2).split(" ");
  // rest[0] is field 3 (state); field N is rest[N - 3].
  const state = rest[0];
  const processGroup = rest[2];
  const startTime = rest[19];
  if (state === undefined || processGroup === undefined || startTime === undefined) return null;
  return { state, processGroup: Number(processGroup), startTime };
}

/** Kernel start time of `pid` (clock ticks since boot), or null if there is no such process. */
export function processStartTime(pid: number): string | null {
  return readStat(pid)?.startTime ?? null;
}

/** Single-letter kernel state (R, S, D, T stopped, Z zombie, …), or null if gone. */
export function processState(pid: number): string | null {
  return readStat(pid)?.state ?? null;
}

export function processGroupOf(pid: number): number | null {
  return readStat(pid)?.processGroup ?? null;
}

/**
 * True when `pid` is a live (non-zombie) process and, if `startTime` is given, the same process
 * that had that start time.
 */
export function isProcessAlive(pid: number, startTime: string | null): boolean {
  const stat = readStat(pid);
  if (stat === null || stat.state === "Z" || stat.state === "X") return false;
  return startTime === null || stat.startTime === startTime;
}

/** Pids of every process whose process group is `pgid` (scans /proc). */
export function processesInGroup(pgid: number): number[] {
  const found: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return found;
  }
  for (const entry of entries) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    const stat = readStat(pid);
    if (stat && stat.processGroup === pgid && stat.state !== "Z" && stat.state !== "X") found.push(pid);
  }
  return found;
}
