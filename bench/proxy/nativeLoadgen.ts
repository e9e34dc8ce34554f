/**
 * The native open-loop generator (`openloop.c`): built with the system's C compiler into the
 * bench's scratch directory (never committed), run in a process of its own, and summarised exactly
 * like the Node generator (`openLoopResult`). The proxy bench's latency runs use it; see
 * openloop.c for why.
 */

import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ProcessLedger } from "../foundation/processes.ts";
import { onCpus } from "./cpus.ts";
import { generatorChild, type LoadgenRun } from "./loadgenProcess.ts";
import { type OpenLoopOptions, openLoopResult } from "./openLoop.ts";

const SOURCE = join(dirname(fileURLToPath(import.meta.url)), "openloop.c");

/** What `openloop.c` writes in its error column. */
const ERROR_NAMES = ["", "connect-error", "closed", "timeout", "parse-error"] as const;

let runs = 0;

/**
 * Compile `openloop.c` into `scratch` with `cc -O2`.
 * @returns the binary's path
 * @throws when there is no C compiler or the build fails
 */
export function buildNativeLoadgen(scratch: string): string {
  const binary = join(scratch, "openloop");
  const built = spawnSync("cc", ["-O2", "-Wall", "-o", binary, SOURCE], { encoding: "utf8" });
  if (built.error !== undefined || built.status !== 0) {
    throw new Error(
      `could not build bench/proxy/openloop.c with cc (Debian: apt-get install -y gcc): ${built.error?.message ?? built.stderr}`,
    );
  }
  return binary;
}

/** Result file of `openloop.c`, decoded. */
export function readNativeResult(file: string, options: OpenLoopOptions, t0EpochMs: number) {
  const bytes = readFileSync(file);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const total = view.getInt32(0, true);
  const warmup = view.getInt32(4, true);
  const intervalMs = view.getFloat64(8, true);
  let offset = 16;
  const doubles = (): Float64Array => {
    const out = new Float64Array(total);
    for (let i = 0; i < total; i++) out[i] = view.getFloat64(offset + 8 * i, true);
    offset += 8 * total;
    return out;
  };
  const ints = (): Int32Array => {
    const out = new Int32Array(total);
    for (let i = 0; i < total; i++) out[i] = view.getInt32(offset + 4 * i, true);
    offset += 4 * total;
    return out;
  };
  const sent = doubles();
  const done = doubles();
  const status = ints();
  const errorCodes = ints();
  if (offset !== bytes.byteLength)
    throw new Error(`openloop result ${file}: ${bytes.byteLength} bytes, expected ${offset}`);
  const errors = Array.from(errorCodes, (code) =>
    code === 0 ? null : (ERROR_NAMES[code] ?? `error-${code}`),
  );
  return openLoopResult({ options, t0EpochMs, intervalMs, warmup, sent, done, status, errors, headers: {} });
}

/**
 * Start the native generator. Only `GET options.path` on 127.0.0.1; `records` and `keepHeaders`
 * are not supported (the failover bench, which needs them, uses the Node generator).
 * @param cpus `taskset -c` list to run it on (null: wherever the scheduler puts it)
 */
export function startNativeLoadgen(
  binary: string,
  options: OpenLoopOptions,
  scratch: string,
  ledger: ProcessLedger,
  cpus: string | null = null,
): LoadgenRun {
  if (options.records || options.keepHeaders.length > 0) {
    throw new Error("the native generator keeps no per-request records or headers");
  }
  const port = Number(new URL(options.origin).port);
  const file = join(scratch, `openloop-${process.pid}-${++runs}.bin`);
  const [command, args] = onCpus(cpus, binary, [
    String(port),
    options.path,
    String(options.ratePerSecond),
    String(options.warmupMs),
    String(options.durationMs),
    String(options.connections),
    String(options.timeoutMs),
    file,
  ]);
  return generatorChild("openloop", command, args, ledger, (t0EpochMs) => {
    const parsed = readNativeResult(file, options, t0EpochMs);
    rmSync(file, { force: true });
    return parsed;
  });
}
