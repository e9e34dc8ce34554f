/**
 * CPU and memory of one process, read from /proc: what the controller costs while nothing fails.
 */

import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { median } from "./stats.ts";

/** Kernel clock ticks per second (the unit of utime/stime); 100 on practically every Linux. */
export function clockTicksPerSecond(): number {
  try {
    const ticks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
    return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
}

/** utime + stime of `pid`, in clock ticks (fields 14 and 15 of /proc/PID/stat). */
export function cpuTicks(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, "utf8");
  // comm (field 2) may contain spaces: fields are counted from after its closing parenthesis.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

/** Resident set size of `pid` in KiB (VmRSS of /proc/PID/status). */
export function rssKiB(pid: number): number {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (match === null) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]);
}

/** One reading of the sampling loop. */
export interface ProcessSample {
  /** Milliseconds since the window opened. */
  atMs: number;
  cpuTicks: number;
  rssKiB: number;
}

/** CPU and RSS of a process over a window. */
export interface ProcessCost {
  windowMs: number;
  /** CPU time used over the window, as a percentage of one core. */
  cpuPercent: number;
  /** Busiest single sampling interval, as a percentage of one core. */
  cpuPercentMaxInterval: number;
  rssMiB: { median: number; max: number; min: number };
  samples: ProcessSample[];
}

/**
 * Sample `pid` every `everyMs` for `windowMs`. CPU is the utime+stime delta between the first and
 * the last reading divided by the wall time between them; RSS is summarised over every reading.
 * Sampling only reads /proc, so it does not wake the process being measured.
 */
export async function sampleProcess(
  pid: number,
  options: { windowMs: number; everyMs: number; signal?: AbortSignal },
): Promise<ProcessCost> {
  const hz = clockTicksPerSecond();
  const start = performance.now();
  const read = (): ProcessSample => ({
    atMs: performance.now() - start,
    cpuTicks: cpuTicks(pid),
    rssKiB: rssKiB(pid),
  });
  const samples: ProcessSample[] = [read()];
  while (performance.now() - start < options.windowMs) {
    options.signal?.throwIfAborted();
    const wait = Math.min(options.everyMs, options.windowMs - (performance.now() - start));
    // A measurement window, not a synchronisation: the point is to let time pass.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, wait)));
    samples.push(read());
  }
  const first = samples[0]!;
  const last = samples[samples.length - 1]!;
  const percentOfCore = (a: ProcessSample, b: ProcessSample) =>
    b.atMs > a.atMs ? (((b.cpuTicks - a.cpuTicks) / hz) * 1000 * 100) / (b.atMs - a.atMs) : 0;
  let busiest = 0;
  for (let k = 1; k < samples.length; k++) {
    busiest = Math.max(busiest, percentOfCore(samples[k - 1]!, samples[k]!));
  }
  const rss = samples.map((s) => s.rssKiB / 1024);
  return {
    windowMs: last.atMs - first.atMs,
    cpuPercent: percentOfCore(first, last),
    cpuPercentMaxInterval: busiest,
    rssMiB: { median: median(rss)!, max: Math.max(...rss), min: Math.min(...rss) },
    samples,
  };
}
