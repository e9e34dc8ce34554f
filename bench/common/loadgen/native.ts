/**
 * The benches' one open-loop generator (`openloop.c`): built with the system's C compiler into a
 * scratch directory (never committed), run in a process of its own, its result file decoded and
 * summarised (`summary.ts`). See openloop.c for what it guarantees.
 */

import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ProcessLedger } from "../../foundation/processes.ts";
import { Child } from "../../proxy/child.ts";
import { onCpus } from "../../proxy/cpus.ts";
import {
  ERROR_NAMES,
  type LoadgenRaw,
  type LoadSummary,
  type RequestRecords,
  recordsOf,
  summarizeLoad,
  type ValidityBounds,
} from "./summary.ts";

const SOURCE = join(dirname(fileURLToPath(import.meta.url)), "openloop.c");
const MAGIC = 0x32474c4f;
/** What openloop.c accepts. */
export const MAX_HEADER_CLASSES = 16;
export const MAX_PATTERN = 1024;
export const MAX_CAPTURES = 8;

export interface LoadgenOptions {
  /** On 127.0.0.1. */
  port: number;
  path: string;
  ratePerSecond: number;
  /** Requests due in this first stretch are sent but not counted (cold connections, JIT). */
  warmupMs: number;
  /** Measured stretch, after the warm-up (with `stop()`: the most it may run). */
  durationMs: number;
  /** Most connections the generator opens (more requests due wait in its queue, and are late). */
  connections: number;
  /** A request without a complete answer this long after its due time ends as `timeout`. */
  timeoutMs: number;
  /**
   * Extra request headers, by class (at most 16). Request i is sent with class
   * `pattern[i % pattern.length]` (default: class 0).
   */
  headerClasses?: Record<string, string>[];
  pattern?: number[];
  /** Response headers (lower case, at most 8) whose value (first 31 bytes) each request keeps. */
  captureHeaders?: string[];
  /** Request 0 due at this epoch ms (default: ~20 ms after the generator starts). */
  startAtEpochMs?: number;
  /** Keep the per-request columns of the measured stretch in the result (`records`). */
  records?: boolean;
  /** When the run counts as the generator having fallen behind (default `DEFAULT_BOUNDS`). */
  bounds?: Partial<ValidityBounds>;
}

export interface LoadgenResult extends LoadSummary {
  /** null unless `options.records`. */
  records: RequestRecords | null;
}

export interface LoadgenRun {
  /** Epoch ms of request 0's due time, once the generator has fixed its schedule. */
  started: Promise<number>;
  /** Every request due (until `stop()`) ended, decoded and summarised. */
  result: Promise<LoadgenResult>;
  /** The raw columns, for figures of the caller's own (same moment as `result`). */
  raw: Promise<LoadgenRaw>;
  /** Send nothing due from now on; `result` follows once the requests out have ended. */
  stop(): void;
}

const built = new Map<string, string>();

/**
 * Compile `openloop.c` into `scratch` with `cc -O2` (once per scratch directory).
 * @returns the binary's path
 * @throws when there is no C compiler or the build fails
 */
export function buildLoadgen(scratch: string): string {
  const known = built.get(scratch);
  if (known !== undefined) return known;
  const binary = join(scratch, "openloop");
  const result = spawnSync("cc", ["-O2", "-Wall", "-o", binary, SOURCE], { encoding: "utf8" });
  if (result.error !== undefined || result.status !== 0) {
    throw new Error(
      `could not build bench/common/loadgen/openloop.c with cc (Debian: apt-get install -y gcc): ${result.error?.message ?? result.stderr}`,
    );
  }
  built.set(scratch, binary);
  return binary;
}

/** The command line of openloop.c for `options`, writing to `file`. */
export function loadgenArgs(options: LoadgenOptions, file: string): string[] {
  const args = [
    "--port",
    String(options.port),
    "--path",
    options.path,
    "--rate",
    String(options.ratePerSecond),
    "--warmup-ms",
    String(options.warmupMs),
    "--duration-ms",
    String(options.durationMs),
    "--connections",
    String(options.connections),
    "--timeout-ms",
    String(options.timeoutMs),
    "--out",
    file,
  ];
  if (options.startAtEpochMs !== undefined) args.push("--start-epoch-ms", options.startAtEpochMs.toFixed(3));
  const classes = options.headerClasses ?? [];
  if (classes.length > MAX_HEADER_CLASSES) throw new Error(`at most ${MAX_HEADER_CLASSES} header classes`);
  for (const headers of classes) {
    const lines = Object.entries(headers).map(([name, value]) => {
      if (/[\r\n]/.test(name + value)) throw new Error(`header ${name}: no line breaks`);
      return `${name}: ${value}`;
    });
    args.push("--class", lines.join("\n"));
  }
  const pattern = options.pattern ?? [];
  if (pattern.length > MAX_PATTERN) throw new Error(`a pattern of at most ${MAX_PATTERN}`);
  for (const k of pattern) {
    if (!Number.isInteger(k) || k < 0 || k >= Math.max(1, classes.length)) {
      throw new Error(`pattern names class ${k} of ${classes.length}`);
    }
  }
  if (pattern.length > 0) args.push("--pattern", pattern.join(","));
  const captures = options.captureHeaders ?? [];
  if (captures.length > MAX_CAPTURES) throw new Error(`at most ${MAX_CAPTURES} captured headers`);
  for (const name of captures) args.push("--capture", name.toLowerCase());
  return args;
}

/** Result file of `openloop.c`, decoded (`captureHeaders` in the order they were passed). */
export function readLoadgenFile(file: string, captureHeaders: readonly string[] = []): LoadgenRaw {
  const bytes = readFileSync(file);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 40 || view.getInt32(0, true) !== MAGIC) {
    throw new Error(`openloop result ${file}: not an openloop result file`);
  }
  const total = view.getInt32(4, true);
  const warmup = view.getInt32(8, true);
  const captures = view.getInt32(12, true);
  const captureLen = view.getInt32(16, true);
  const intervalMs = view.getFloat64(24, true);
  const t0EpochMs = view.getFloat64(32, true);
  if (captures !== captureHeaders.length) {
    throw new Error(
      `openloop result ${file}: ${captures} captured headers, expected ${captureHeaders.length}`,
    );
  }
  let offset = 40;
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
  const written = doubles();
  const done = doubles();
  const status = ints();
  const errorCodes = ints();
  const headerClass = ints();
  const headers: Record<string, (string | null)[]> = {};
  for (const name of captureHeaders) {
    const column: (string | null)[] = new Array(total);
    for (let i = 0; i < total; i++) {
      const at = offset + i * captureLen;
      const len = bytes[at]!;
      column[i] = len === 0 ? null : bytes.toString("latin1", at + 1, at + len);
    }
    offset += total * captureLen;
    headers[name.toLowerCase()] = column;
  }
  if (offset !== bytes.byteLength) {
    throw new Error(`openloop result ${file}: ${bytes.byteLength} bytes, expected ${offset}`);
  }
  const errors = Array.from(errorCodes, (code) =>
    code === 0 ? null : (ERROR_NAMES[code] ?? `error-${code}`),
  );
  return { t0EpochMs, intervalMs, warmup, written, done, status, errors, headerClass, headers };
}

let runs = 0;

/**
 * Start the generator (built by `buildLoadgen`).
 * @param cpus `taskset -c` list to run it on (null: wherever the scheduler puts it)
 */
export function startLoadgen(
  binary: string,
  options: LoadgenOptions,
  scratch: string,
  ledger: ProcessLedger,
  cpus: string | null = null,
): LoadgenRun {
  const file = join(scratch, `openloop-${process.pid}-${++runs}.bin`);
  const [command, args] = onCpus(cpus, binary, loadgenArgs(options, file));
  const child = new Child("openloop", command, args, { ledger });
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
  const raw = child.exited.then(({ code, signal }) => {
    try {
      if (code !== 0 || t0EpochMs === null) {
        const error = new Error(`openloop exited ${code ?? signal}:\n${child.output()}`);
        rejectStarted(error);
        throw error;
      }
      return readLoadgenFile(file, options.captureHeaders ?? []);
    } finally {
      rmSync(file, { force: true });
    }
  });
  const result = raw.then((r) => ({
    ...summarizeLoad(r, options.bounds),
    records: options.records ? recordsOf(r) : null,
  }));
  raw.catch(() => undefined);
  return {
    started,
    raw,
    result,
    // Signalled only once it has said its t0: it installs its SIGUSR1 handler before that.
    stop: () => {
      started.then(
        () => {
          if (child.running) child.child.kill("SIGUSR1");
        },
        () => undefined,
      );
    },
  };
}
