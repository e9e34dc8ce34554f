/**
 * Runs the open-loop generator (`loadgen.ts`) in a child process and hands back its result.
 */

import { readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ProcessLedger } from "../foundation/processes.ts";
import { Child } from "./child.ts";
import { onCpus } from "./cpus.ts";
import type { OpenLoopOptions, OpenLoopResult } from "./openLoop.ts";

const LOADGEN = join(dirname(fileURLToPath(import.meta.url)), "loadgen.ts");
let runs = 0;

export interface LoadgenRun {
  /** Epoch ms of request 0's due time, once the child has fixed its schedule. */
  started: Promise<number>;
  result: Promise<OpenLoopResult>;
}

/** @param cpus `taskset -c` list to run the generator on (null: wherever the scheduler puts it) */
export function startLoadgen(
  options: OpenLoopOptions,
  scratch: string,
  ledger: ProcessLedger,
  cpus: string | null = null,
): LoadgenRun {
  const file = join(scratch, `loadgen-${process.pid}-${++runs}.json`);
  const [command, args] = onCpus(cpus, process.execPath, [LOADGEN, JSON.stringify(options), file]);
  const child = new Child("loadgen", command, args, { ledger });
  let resolveStarted!: (t0: number) => void;
  let rejectStarted!: (error: Error) => void;
  const started = new Promise<number>((resolve, reject) => {
    resolveStarted = resolve;
    rejectStarted = reject;
  });
  started.catch(() => undefined);
  child.onLine((line, stream) => {
    if (stream !== "stdout" || !line.startsWith('{"t0EpochMs"')) return;
    resolveStarted((JSON.parse(line) as { t0EpochMs: number }).t0EpochMs);
  });
  const result = child.exited.then(({ code, signal }) => {
    if (code !== 0) {
      const error = new Error(`loadgen exited ${code ?? signal}:\n${child.output()}`);
      rejectStarted(error);
      throw error;
    }
    const parsed = JSON.parse(readFileSync(file, "utf8")) as OpenLoopResult;
    rmSync(file, { force: true });
    return parsed;
  });
  return { started, result };
}
