/**
 * The open-loop load of every data-plane trial: the native generator (`bench/proxy/openloop.c`)
 * with a fixed number of connections and a client timeout, keeping one record per request (due,
 * sent, done, status, error) for `analysis.ts`.
 *
 * What the generator guarantees (see openloop.c): request i is due at t0 + i / rate whatever
 * happened before; its send time is taken when it is written to a socket, after any wait for a
 * free connection, so send − due is the generator's own lag; a request without a complete answer
 * `timeoutMs` after its *due* time ends as `timeout` (its connection is closed).
 */

import { rmSync } from "node:fs";
import { join } from "node:path";
import type { ProcessLedger } from "../foundation/processes.ts";
import { generatorChild, type LoadgenRun } from "../proxy/loadgenProcess.ts";
import { readNativeResult } from "../proxy/nativeLoadgen.ts";
import type { OpenLoopOptions } from "../proxy/openLoop.ts";

let runs = 0;

export interface LoadSettings {
  port: number;
  path: string;
  rate: number;
  warmupMs: number;
  durationMs: number;
  connections: number;
  timeoutMs: number;
}

/** Start the native generator (built by `buildNativeLoadgen`) with per-request records. */
export function startRecordedLoad(
  binary: string,
  load: LoadSettings,
  scratch: string,
  ledger: ProcessLedger,
): LoadgenRun {
  const options: OpenLoopOptions = {
    origin: `http://127.0.0.1:${load.port}`,
    path: load.path,
    ratePerSecond: load.rate,
    warmupMs: load.warmupMs,
    durationMs: load.durationMs,
    connections: load.connections,
    timeoutMs: load.timeoutMs,
    records: true,
    keepHeaders: [],
  };
  const file = join(scratch, `dataplane-load-${process.pid}-${++runs}.bin`);
  const args = [
    String(load.port),
    load.path,
    String(load.rate),
    String(load.warmupMs),
    String(load.durationMs),
    String(load.connections),
    String(load.timeoutMs),
    file,
  ];
  return generatorChild("openloop", binary, args, ledger, (t0EpochMs) => {
    const result = readNativeResult(file, options, t0EpochMs);
    rmSync(file, { force: true });
    return result;
  });
}
