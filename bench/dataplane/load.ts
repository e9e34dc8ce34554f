/**
 * The open-loop load of every data-plane trial: the benches' generator
 * (`bench/common/loadgen/openloop.c`) with a fixed number of connections and a client timeout,
 * keeping one record per request (due, written, done, status, error) for `analysis.ts`.
 *
 * What the generator guarantees (see openloop.c): request i is due at t0 + i / rate whatever
 * happened before; its written time is taken when it goes on a socket, after any wait for a free
 * connection, so written − due is the generator's own lag; a request without a complete answer
 * `timeoutMs` after its *due* time ends as `timeout` (its connection is closed).
 */

import { type LoadgenRun, startLoadgen } from "../common/loadgen/native.ts";
import type { ProcessLedger } from "../foundation/processes.ts";

export interface LoadSettings {
  port: number;
  path: string;
  rate: number;
  warmupMs: number;
  durationMs: number;
  connections: number;
  timeoutMs: number;
}

/** Start the generator (built by `buildLoadgen`) with per-request records. */
export function startRecordedLoad(
  binary: string,
  load: LoadSettings,
  scratch: string,
  ledger: ProcessLedger,
): LoadgenRun {
  return startLoadgen(
    binary,
    {
      port: load.port,
      path: load.path,
      ratePerSecond: load.rate,
      warmupMs: load.warmupMs,
      durationMs: load.durationMs,
      connections: load.connections,
      timeoutMs: load.timeoutMs,
      records: true,
    },
    scratch,
    ledger,
  );
}
