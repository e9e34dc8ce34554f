/**
 * Every process the bench causes to exist, so that none outlives it: pids are remembered with
 * their kernel start time, and only a process that still has that start time is ever signalled
 * (a recycled pid belongs to someone else).
 */

import { isProcessAlive, processStartTime } from "../../src/lib/procStat.ts";

/** A process as the kernel identifies it: pid plus start time. */
export interface ProcessIdentity {
  pid: number;
  startTime: string | null;
}

/** The identity of a running `pid`, read now. */
export function identify(pid: number): ProcessIdentity {
  return { pid, startTime: processStartTime(pid) };
}

/** True while the process is alive and is still the one identified (zombies count as gone). */
export function stillRunning(process: ProcessIdentity): boolean {
  return process.startTime !== null && isProcessAlive(process.pid, process.startTime);
}

/** Send `signal` to the identified process if it still runs. Returns whether it was sent. */
export function signalIfRunning(target: ProcessIdentity, signal: NodeJS.Signals): boolean {
  if (!stillRunning(target)) return false;
  try {
    process.kill(target.pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Processes seen during the run; `sweep` SIGKILLs the ones still running. */
export class ProcessLedger {
  readonly #known = new Map<string, ProcessIdentity>();

  /** Remember `pid` (read its start time now). Ignored if it is already gone. */
  note(pid: number): void {
    const id = identify(pid);
    if (id.startTime !== null) this.#known.set(`${id.pid}:${id.startTime}`, id);
  }

  /** Those still running. */
  running(): ProcessIdentity[] {
    return [...this.#known.values()].filter(stillRunning);
  }

  /** SIGKILL every remembered process that still runs (stopped ones included); returns their pids. */
  sweep(): number[] {
    const killed: number[] = [];
    for (const id of this.running()) {
      if (signalIfRunning(id, "SIGKILL")) killed.push(id.pid);
    }
    return killed;
  }
}
