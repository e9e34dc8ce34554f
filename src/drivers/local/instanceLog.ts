/**
 * Per-instance log files. The child writes straight into the file through its own descriptor,
 * so its output does not pass through the controller: logs survive a controller crash and a
 * child never gets SIGPIPE because the controller went away.
 */

import { appendFileSync, closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";

/** Where the stdout/stderr of `instance` go. */
export function instanceLogPath(logDir: string, instance: string): string {
  return join(logDir, `${instance}.log`);
}

/** Open (creating `logDir` if needed) the instance log for appending; the caller closes the fd. */
export function openInstanceLog(logPath: string, logDir: string): number {
  mkdirSync(logDir, { recursive: true });
  return openSync(logPath, "a");
}

/** Append a controller line such as `--- … start web-0 release v1 pid 123 ---` to an open log. */
export function writeLogLine(fd: number, text: string): void {
  writeSync(fd, `--- ${text} ---\n`);
}

/**
 * Append a controller line to a log by path. Best effort: failing to annotate a log must never
 * break starting or stopping an instance.
 */
export function appendLogLine(logPath: string, text: string): void {
  try {
    appendFileSync(logPath, `--- ${text} ---\n`);
  } catch {
    // The log is a convenience; the run itself is tracked elsewhere.
  }
}

/** Close a descriptor, ignoring errors (it may already be closed on a failure path). */
export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Nothing useful to do: the descriptor is gone either way.
  }
}
