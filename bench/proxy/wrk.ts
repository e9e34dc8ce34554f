/**
 * Closed-loop maximum throughput with wrk: every connection sends its next request as soon as the
 * previous answer arrives, so req/s is what the path sustains at that concurrency.
 */

import { spawn } from "node:child_process";
import type { ProcessLedger } from "../foundation/processes.ts";
import { onCpus } from "./cpus.ts";

export interface WrkSettings {
  threads: number;
  connections: number;
  durationS: number;
}

export interface WrkResult {
  requestsPerSecond: number;
  requests: number;
  /** "Non-2xx or 3xx responses". */
  non2xx: number;
  /** connect + read + write + timeout socket errors. */
  socketErrors: number;
  /** wrk's own (closed-loop) latency percentiles, ms: informative only, they hide queueing. */
  p50Ms: number | null;
  p99Ms: number | null;
  /** The exact command line run. */
  command: string;
}

export function wrkArgs(settings: WrkSettings, url: string): string[] {
  return [`-t${settings.threads}`, `-c${settings.connections}`, `-d${settings.durationS}s`, "--latency", url];
}

/** @param cpus `taskset -c` list to run wrk on (null: wherever the scheduler puts it) */
export function runWrk(
  settings: WrkSettings,
  url: string,
  ledger: ProcessLedger,
  cpus: string | null = null,
): Promise<WrkResult> {
  const args = wrkArgs(settings, url);
  return new Promise((resolve, reject) => {
    const [command, commandArgs] = onCpus(cpus, "wrk", args);
    const child = spawn(command, commandArgs, { stdio: ["ignore", "pipe", "pipe"] });
    if (child.pid !== undefined) ledger.note(child.pid);
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.once("error", reject);
    child.once("close", (code) => {
      if (code !== 0) {
        reject(new Error(`wrk ${args.join(" ")} exited ${code}:\n${out}`));
        return;
      }
      try {
        resolve({ ...parseWrk(out), command: `wrk ${args.join(" ")}` });
      } catch (error) {
        reject(error);
      }
    });
  });
}

/** Milliseconds from wrk's "1.23ms" / "456.00us" / "1.20s". */
function durationMs(text: string): number {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(text);
  if (!match) throw new Error(`wrk: unreadable duration ${JSON.stringify(text)}`);
  const value = Number(match[1]);
  const unit = match[2];
  return unit === "us" ? value / 1000 : unit === "ms" ? value : unit === "s" ? value * 1000 : value * 60_000;
}

export function parseWrk(out: string): Omit<WrkResult, "command"> {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const total = /(\d+) requests in/.exec(out);
  if (!rps || !total) throw new Error(`wrk: no throughput in its output:\n${out}`);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const percentile = (p: string): number | null => {
    const m = new RegExp(`^\\s+${p}%\\s+(\\S+)`, "m").exec(out);
    return m ? durationMs(m[1]!) : null;
  };
  return {
    requestsPerSecond: Number(rps[1]),
    requests: Number(total[1]),
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors: sock ? sock.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0,
    p50Ms: percentile("50"),
    p99Ms: percentile("99"),
  };
}
