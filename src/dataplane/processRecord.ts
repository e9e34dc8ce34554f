/**
 * The data plane's `process.json`: who serves the fleet's ports now. Written by the data plane
 * once it accepts on the feed (a successor overwrites it at handover); read by a controller that
 * adopts it and by `homeostat down` after a controller crash.
 */

import { readdirSync, readFileSync } from "node:fs";
import { killProcessGroup } from "../drivers/local/processGroup.ts";
import { isProcessAlive } from "../lib/procStat.ts";
import { dataPlanePaths } from "./paths.ts";

export interface DataPlaneProcessRecord {
  pid: number;
  /** Kernel start time: a recycled pid is never taken for the data plane. */
  startTime: string | null;
  startedAt: number;
  generation: number;
  /** Which worker (absent in records written before workers existed: 0). */
  worker?: number;
  feed: string;
}

/** The record of data-plane worker `worker` of `stateDir` if that process is alive, else null. */
export function liveDataPlane(stateDir: string, worker = 0): DataPlaneProcessRecord | null {
  let record: DataPlaneProcessRecord;
  try {
    record = JSON.parse(
      readFileSync(dataPlanePaths(stateDir, worker).process, "utf8"),
    ) as DataPlaneProcessRecord;
  } catch {
    return null;
  }
  if (typeof record.pid !== "number" || !isProcessAlive(record.pid, record.startTime ?? null)) return null;
  return record;
}

/** Every live data-plane worker of `stateDir` (worker 0 first). */
export function liveDataPlanes(stateDir: string): DataPlaneProcessRecord[] {
  const found: DataPlaneProcessRecord[] = [];
  const first = liveDataPlane(stateDir, 0);
  if (first !== null) found.push(first);
  let entries: string[] = [];
  try {
    entries = readdirSync(dataPlanePaths(stateDir).dir);
  } catch {
    return found;
  }
  for (const entry of entries) {
    const match = /^worker-(\d+)$/.exec(entry);
    if (match === null) continue;
    const record = liveDataPlane(stateDir, Number(match[1]));
    if (record !== null) found.push(record);
  }
  return found;
}

/**
 * Stop the data-plane workers a crashed controller left: SIGTERM (they drain), then SIGKILL to
 * their process groups after `timeoutMs`. Returns their pids.
 */
export async function stopOrphanedDataPlane(stateDir: string, timeoutMs: number): Promise<number[]> {
  const records = liveDataPlanes(stateDir);
  for (const record of records) process.kill(record.pid, "SIGTERM");
  const deadline = Date.now() + timeoutMs;
  while (records.some((r) => isProcessAlive(r.pid, r.startTime)) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  for (const record of records)
    if (isProcessAlive(record.pid, record.startTime)) killProcessGroup(record.pid, "SIGKILL");
  return records.map((r) => r.pid);
}
