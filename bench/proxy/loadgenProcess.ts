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
  return generatorChild("loadgen", command, args, ledger, () => {
    const parsed = JSON.parse(readFileSync(file, "utf8")) as OpenLoopResult;
    rmSync(file, { force: true });
    return parsed;
  });
}

/**
 * A generator process (this Node one or the native one): it prints `{"t0EpochMs":…}` once its
 * schedule is fixed and exits 0 once its result is written; `readResult` then reads that result.
 */
export function generatorChild(
  name: string,
  command: string,
  args: string[],
  ledger: ProcessLedger,
  readResult: (t0EpochMs: number) => OpenLoopResult,
): LoadgenRun {
  const child = new Child(name, command, args, { ledger });
  let t0EpochMs: number | null = null;
  let resolveStarted!: (t0: number) => void;
  let rejectStarted!: (error: Error) => void;
  const started = new Promise<number>((resolve, reject) => {
    resolveStarted = resolve;
    rejectStarted = reject;
  });
  started.catch(() => undefined);
  child.onLine((line, stream) => {
    if (stream !== "stdout" || !line.startsWith('{"t0EpochMs"')) return;
    t0EpochMs = (JSON.parse(line) as { t0EpochMs: number }).t0EpochMs;
    resolveStarted(t0EpochMs);
  });
  const result = child.exited.then(({ code, signal }) => {
    if (code !== 0 || t0EpochMs === null) {
      const error = new Error(`${name} exited ${code ?? signal}:\n${child.output()}`);
      rejectStarted(error);
      throw error;
    }
    return readResult(t0EpochMs);
  });
  return { started, result };
}
