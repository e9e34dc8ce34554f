/**
 * A gate before each measured run: on a small shared machine, someone else's test suite can take
 * a whole core, and a proxy measured then is measured against the wrong opponent. Before a run the
 * bench (idle itself) reads how busy all CPUs are over a short window and waits while the machine
 * is busier than a threshold. The figure is kept with the run either way.
 */

import { readFileSync } from "node:fs";
import { log } from "./teardown.ts";

/** [busy, total] jiffies over all CPUs (the `cpu` line of /proc/stat). */
function cpuJiffies(): [number, number] {
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!;
  const fields = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0); // idle + iowait
  const total = fields.slice(0, 8).reduce((sum, v) => sum + v, 0);
  return [total - idle, total];
}

/** % of all CPUs busy over the next `windowMs`. */
export async function machineBusyPercent(windowMs = 1_000): Promise<number> {
  const [busy0, total0] = cpuJiffies();
  // A measurement window: the point is to let time pass.
  await new Promise((resolve) => setTimeout(resolve, windowMs));
  const [busy1, total1] = cpuJiffies();
  return total1 > total0 ? ((busy1 - busy0) / (total1 - total0)) * 100 : 0;
}

export interface QuietReading {
  /** Busy % of all CPUs in the last window before the run. */
  busyPercent: number;
  /** ms spent waiting for the machine to calm down. */
  waitedMs: number;
  /** False when it never got below the threshold before the timeout (the run went ahead anyway). */
  quiet: boolean;
}

/** Wait until all CPUs together are at most `maxBusyPercent` busy, for up to `timeoutMs`. */
export async function waitQuiet(maxBusyPercent = 10, timeoutMs = 180_000): Promise<QuietReading> {
  const started = performance.now();
  let warned = false;
  for (;;) {
    const busyPercent = await machineBusyPercent();
    const waitedMs = performance.now() - started;
    if (busyPercent <= maxBusyPercent) return { busyPercent, waitedMs, quiet: true };
    if (waitedMs >= timeoutMs) {
      log(
        `the machine stayed ${busyPercent.toFixed(0)} % busy for ${Math.round(waitedMs / 1000)} s: measuring anyway`,
      );
      return { busyPercent, waitedMs, quiet: false };
    }
    if (!warned) {
      log(`the machine is ${busyPercent.toFixed(0)} % busy with other work: waiting for it to calm down…`);
      warned = true;
    }
  }
}

/** utime + stime (+ cutime + cstime with `children`) of `pid`, in ticks; null if it is gone. */
function processTicks(pid: number | "self", children: boolean): number | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = text
      .slice(text.lastIndexOf(")") + 2)
      .split(" ")
      .map(Number);
    // Fields 14–17 (utime, stime, cutime, cstime) are f[11]–f[14].
    return f[11]! + f[12]! + (children ? f[13]! + f[14]! : 0);
  } catch {
    return null;
  }
}

/** user + nice + system jiffies over all CPUs: what processes' utime + stime add up to. */
function machineProcessJiffies(): number {
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  return (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0);
}

/**
 * CPU used by processes outside the bench while a run lasts, in % of one core: the machine's
 * user + system time minus the bench's own (itself, its reaped children such as wrk and the load
 * generator, and `pids`, its children alive when the meter starts; all must be direct children). Kernel work no process is charged for (part of the
 * loopback network's softirq time, depending on the kernel) is left out on both sides.
 */
export class OthersMeter {
  readonly #pids: number[];
  readonly #startedAt = performance.now();
  readonly #machine0 = machineProcessJiffies();
  readonly #self0 = processTicks("self", true) ?? 0;
  readonly #pids0: (number | null)[];

  constructor(pids: number[]) {
    this.#pids = pids;
    this.#pids0 = pids.map((pid) => processTicks(pid, false));
  }

  /** % of one core used by others since construction (clock ticks = USER_HZ, 100 on Linux). */
  read(ticksPerSecond: number): number {
    const seconds = (performance.now() - this.#startedAt) / 1000;
    let ours = (processTicks("self", true) ?? 0) - this.#self0;
    this.#pids.forEach((pid, k) => {
      const before = this.#pids0[k];
      if (before === null || before === undefined) return;
      const after = processTicks(pid, false);
      // Gone and reaped (the load generator): its whole life is now in our cutime, so only the
      // part before the meter started is taken back out.
      ours += after === null ? -before : after - before;
    });
    const others = machineProcessJiffies() - this.#machine0 - ours;
    return Math.max(0, (others / ticksPerSecond / seconds) * 100);
  }
}
