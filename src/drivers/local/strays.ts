/**
 * Finding the instances this driver started whatever the store says: every instance leads its own
 * process group and writes its stdout to `<logDir>/<instance>.log` through a descriptor the
 * driver opened, so a live group leader whose stdout is one of those files is an instance of this
 * fleet. A controller killed between spawning a process and recording its pid leaves exactly
 * such a process: the next controller finds it here (docs/operations.md#crash-safety).
 */

import { readdirSync, readlinkSync } from "node:fs";
import { resolve } from "node:path";
import { isProcessAlive, processGroupOf, processStartTime } from "../../lib/procStat.ts";
import type { RuntimeHandle } from "../driver.ts";

/** A live process of the fleet found by its log file: which instance, and its handle. */
export interface Stray {
  instance: string;
  handle: RuntimeHandle;
}

/**
 * Every live process group leader (not a zombie) whose stdout is `<logDir>/<name>.log`, as
 * `{ instance: name, handle }`. Linux only (reads `/proc`); elsewhere, or when a process's
 * descriptors cannot be read (another user's), it is not found.
 */
export function findStrays(logDir: string): Stray[] {
  const prefix = `${resolve(logDir)}/`;
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  const found: Stray[] = [];
  for (const entry of entries) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) continue;
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/1`);
    } catch {
      continue;
    }
    if (!target.startsWith(prefix) || !target.endsWith(".log")) continue;
    const instance = target.slice(prefix.length, -".log".length);
    if (instance === "" || instance.includes("/")) continue;
    // The instance itself leads its group; what it forked shares the log but not the leadership.
    if (processGroupOf(pid) !== pid) continue;
    const startTime = processStartTime(pid);
    if (startTime === null || !isProcessAlive(pid, startTime)) continue;
    found.push({ instance, handle: { pid, startTime, logPath: target } });
  }
  return found;
}
