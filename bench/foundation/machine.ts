/**
 * What the numbers were measured on: they mean little without it.
 */

import { type ExecFileSyncOptionsWithStringEncoding, execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism, loadavg, release, totalmem } from "node:os";

export interface MachineInfo {
  /** `nproc`: CPUs this process may use. */
  cpus: number;
  cpuModel: string;
  /** Total memory in GiB, rounded down as `free -g` prints it. */
  memoryGiB: number;
  /** `uname -r`. */
  kernel: string;
  node: string;
  /** 1-minute load average when the bench started: other work on the machine skews timings. */
  loadAverage1m: number;
  /** `free -g` as printed, for the record. */
  freeG: string;
  /** The commit measured, and whether src/, bin/ or examples/ had uncommitted changes on top of it. */
  git: { commit: string; dirty: boolean } | null;
}

function cpuModel(): string {
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    return match?.[1]?.trim() ?? "unknown";
  } catch {
    return "unknown";
  }
}

function freeG(): string {
  try {
    return execFileSync("free", ["-g"], { encoding: "utf8" }).trim();
  } catch {
    return "";
  }
}

function gitState(cwd: string): MachineInfo["git"] {
  try {
    const quiet: ExecFileSyncOptionsWithStringEncoding = {
      cwd,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    };
    const commit = execFileSync("git", ["rev-parse", "HEAD"], quiet).trim();
    // Only the code under test counts; the bench itself is not measured. No optional locks: the
    // bench must not touch the repository's index while others work in it.
    const changes = execFileSync(
      "git",
      ["--no-optional-locks", "status", "--porcelain", "--", "src", "bin", "examples"],
      quiet,
    ).trim();
    return { commit, dirty: changes.length > 0 };
  } catch {
    return null;
  }
}

/** The machine, and the code in `repo` being measured. */
export function machineInfo(repo: string): MachineInfo {
  return {
    cpus: availableParallelism(),
    cpuModel: cpuModel(),
    memoryGiB: Math.floor(totalmem() / 1024 ** 3),
    kernel: release(),
    node: process.version,
    loadAverage1m: loadavg()[0] ?? 0,
    freeG: freeG(),
    git: gitState(repo),
  };
}
