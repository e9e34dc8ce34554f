/**
 * Where the proxy bench's processes run. On a 2-CPU machine the load tool, the proxy and the
 * upstream share two cores: unpinned, the scheduler moves them around and one of them regularly
 * waits for a core that another holds, which shows as clusters of slow requests in every
 * contender's tail (the more CPU a contender needs, the more often). Pinned, the contender has
 * CPU 0 to itself and the upstream and the load tool share CPU 1, the same for every contender
 * (direct included: there, CPU 0 stays idle).
 */

import { spawnSync } from "node:child_process";
import { availableParallelism } from "node:os";

export interface Placement {
  /** `taskset -c` list for the contender (the proxy), or null: not pinned. */
  contender: string | null;
  /** …for the upstream and the load tools (wrk, the open-loop generator). */
  others: string | null;
  /** How it was decided, for the results. */
  note: string;
}

/**
 * `BENCH_PIN=0` leaves everything to the scheduler. Otherwise, with `taskset` and at least 2 CPUs:
 * the contender on CPU 0, everything else on CPU 1.
 */
export function cpuPlacement(env: NodeJS.ProcessEnv): Placement {
  if (env.BENCH_PIN === "0") return { contender: null, others: null, note: "not pinned (BENCH_PIN=0)" };
  const cpus = availableParallelism();
  if (cpus < 2) return { contender: null, others: null, note: `not pinned: ${cpus} CPU` };
  if (spawnSync("taskset", ["-V"], { stdio: "ignore" }).status !== 0) {
    return { contender: null, others: null, note: "not pinned: no taskset" };
  }
  return {
    contender: "0",
    others: "1",
    note: "taskset: the contender on CPU 0; the upstream, wrk and the open-loop generator on CPU 1",
  };
}

/** `command args` run on `cpus` (through taskset, which execs it: the pid is the command's). */
export function onCpus(cpus: string | null, command: string, args: readonly string[]): [string, string[]] {
  return cpus === null ? [command, [...args]] : ["taskset", ["-c", cpus, command, ...args]];
}
