/**
 * An open-loop, fixed-rate HTTP load generator (what wrk2 does; wrk2 is not packaged in Debian).
 *
 * Request i is due at t0 + i / rate whatever happened to the previous ones, and its latency is
 * counted from that due time, not from when it was actually sent: a stalled server makes every
 * request due during the stall late, and that lateness is in the figures (no coordinated
 * omission). Sends happen on a ~1 ms timer, so up to about 1 ms of the generator's own lateness is
 * in every figure too; it is reported separately (`lateness`) and weighs on every contender alike.
 *
 * One undici Pool, one dispatch handler per request (no promise, no body stream), latencies in a
 * preallocated Float64Array.
 */

import type { IncomingHttpHeaders } from "node:http";
import { type Dispatcher, Pool } from "undici";
import { percentile } from "../foundation/stats.ts";

export interface OpenLoopOptions {
  /** `http://127.0.0.1:PORT` */
  origin: string;
  path: string;
  ratePerSecond: number;
  /** Requests due in this first stretch are sent but not counted (JIT, connection set-up). */
  warmupMs: number;
  /** Measured stretch, after the warm-up. */
  durationMs: number;
  /** Most connections the generator opens (more requests in flight wait in its queue, late). */
  connections: number;
  /** A request without a complete answer after this long counts as an error. */
  timeoutMs: number;
  /** Keep one record per measured request (time, status, the headers named here). */
  records: boolean;
  /** Response headers (lower case) whose value each record keeps. */
  keepHeaders: string[];
}

/** Nearest-rank percentiles, ms. */
export interface LatencySummary {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/** Per measured request, column by column (index = request). Times are ms after `t0EpochMs`. */
export interface RequestRecords {
  dueMs: number[];
  sentMs: number[];
  doneMs: number[];
  /** 0: no HTTP answer (see `error`). */
  status: number[];
  error: (string | null)[];
  headers: Record<string, (string | null)[]>;
}

export interface OpenLoopResult {
  options: OpenLoopOptions;
  /** Epoch ms (sub-ms precision) of request 0's due time; the measured stretch starts warmupMs later. */
  t0EpochMs: number;
  /** Requests due in the measured stretch. */
  due: number;
  /** …answered with a 2xx. */
  ok: number;
  /** …answered with another status. */
  non2xx: number;
  /** …with no answer (connection error, timeout). */
  errors: number;
  statusCounts: Record<string, number>;
  errorCounts: Record<string, number>;
  /** The warm-up's requests: not in any other figure, but a failure there is still a failure. */
  warmup: { due: number; ok: number; non2xx: number; errors: number };
  /** Achieved completions per second over the measured stretch. */
  achievedRate: number;
  /** From the due time to the end of the answer: what the brief calls latency. */
  latency: LatencySummary | null;
  /** From the actual send to the end of the answer (no queueing in the generator). */
  service: LatencySummary | null;
  /** Actual send minus due time: the generator's own delay. */
  lateness: LatencySummary | null;
  records: RequestRecords | null;
}

function summary(values: Float64Array): LatencySummary | null {
  if (values.length === 0) return null;
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  const list = sorted as unknown as number[];
  return {
    n: sorted.length,
    p50: percentile(list, 50),
    p90: percentile(list, 90),
    p99: percentile(list, 99),
    p999: percentile(list, 99.9),
    max: sorted[sorted.length - 1]!,
    mean: sum / sorted.length,
  };
}

/** What a generator recorded, per request (times in ms from request 0's due time). */
export interface OpenLoopRaw {
  options: OpenLoopOptions;
  t0EpochMs: number;
  intervalMs: number;
  /** Requests before this index are the warm-up. */
  warmup: number;
  sent: ArrayLike<number>;
  done: ArrayLike<number>;
  /** 0: no HTTP answer (see `errors`). */
  status: ArrayLike<number>;
  errors: ArrayLike<string | null>;
  headers: Record<string, ArrayLike<string | null>>;
}

/** The summary both generators (this one and the native `openloop.c`) report. */
export function openLoopResult(raw: OpenLoopRaw): OpenLoopResult {
  const { warmup, intervalMs, sent, done, status: statusOf, options } = raw;
  const total = done.length;
  const measured = total - warmup;
  const latency = new Float64Array(measured);
  const service = new Float64Array(measured);
  const lateness = new Float64Array(measured);
  const statusCounts: Record<string, number> = {};
  const errorCounts: Record<string, number> = {};
  let ok = 0;
  let non2xx = 0;
  let errors = 0;
  let lastDone = 0;
  for (let i = warmup; i < total; i++) {
    const dueAt = i * intervalMs;
    const k = i - warmup;
    latency[k] = done[i]! - dueAt;
    service[k] = done[i]! - sent[i]!;
    lateness[k] = sent[i]! - dueAt;
    lastDone = Math.max(lastDone, done[i]!);
    const status = statusOf[i]!;
    if (status === 0) {
      errors++;
      const code = raw.errors[i] ?? "unknown";
      errorCounts[code] = (errorCounts[code] ?? 0) + 1;
    } else {
      if (status >= 200 && status < 300) ok++;
      else non2xx++;
      statusCounts[status] = (statusCounts[status] ?? 0) + 1;
    }
  }
  const slice = <T>(column: ArrayLike<T>): T[] => Array.prototype.slice.call(column, warmup, total) as T[];
  const records: RequestRecords | null = options.records
    ? {
        dueMs: Array.from({ length: measured }, (_, k) => (k + warmup) * intervalMs),
        sentMs: slice(sent),
        doneMs: slice(done),
        status: slice(statusOf),
        error: slice(raw.errors),
        headers: Object.fromEntries(Object.entries(raw.headers).map(([h, column]) => [h, slice(column)])),
      }
    : null;
  const warmupCounts = { due: warmup, ok: 0, non2xx: 0, errors: 0 };
  for (let i = 0; i < warmup; i++) {
    const status = statusOf[i]!;
    if (status === 0) warmupCounts.errors++;
    else if (status >= 200 && status < 300) warmupCounts.ok++;
    else warmupCounts.non2xx++;
  }
  const measuredFrom = warmup * intervalMs;
  return {
    options,
    t0EpochMs: raw.t0EpochMs,
    due: measured,
    ok,
    non2xx,
    errors,
    statusCounts,
    errorCounts,
    warmup: warmupCounts,
    achievedRate: measured / (Math.max(lastDone - measuredFrom, 1) / 1000),
    latency: summary(latency),
    service: summary(service),
    lateness: summary(lateness),
    records,
  };
}

const NOT_DONE = -1;

class Generator {
  readonly options: OpenLoopOptions;
  readonly pool: Pool;
  readonly total: number;
  readonly warmup: number;
  readonly intervalMs: number;
  readonly t0: number;
  readonly sent: Float64Array;
  readonly done: Float64Array;
  readonly status: Int32Array;
  readonly errors: (string | null)[];
  readonly headers: Record<string, (string | null)[]>;
  next = 0;
  finished = 0;
  resolveAll: () => void = () => {};

  constructor(options: OpenLoopOptions) {
    this.options = options;
    this.intervalMs = 1000 / options.ratePerSecond;
    this.warmup = Math.floor(options.warmupMs / this.intervalMs);
    this.total = this.warmup + Math.floor(options.durationMs / this.intervalMs);
    this.sent = new Float64Array(this.total);
    this.done = new Float64Array(this.total).fill(NOT_DONE);
    this.status = new Int32Array(this.total);
    this.errors = new Array(this.total).fill(null);
    this.headers = Object.fromEntries(options.keepHeaders.map((h) => [h, new Array(this.total).fill(null)]));
    this.pool = new Pool(options.origin, {
      connections: options.connections,
      pipelining: 1,
      keepAliveTimeout: 30_000,
    });
    this.pool.on("connectionError", () => {});
    // Start a little later so the first due times are not already behind.
    this.t0 = performance.now() + 20;
  }

  run(): Promise<void> {
    const all = new Promise<void>((resolve) => {
      this.resolveAll = resolve;
    });
    setTimeout(this.tick, Math.max(0, this.t0 - performance.now()));
    return all;
  }

  private readonly tick = (): void => {
    const now = performance.now();
    const elapsed = now - this.t0;
    const dueNow = Math.min(this.total, Math.floor(elapsed / this.intervalMs) + 1);
    while (this.next < dueNow) this.send(this.next++);
    if (this.next < this.total) {
      const wait = this.t0 + this.next * this.intervalMs - performance.now();
      setTimeout(this.tick, Math.max(0, Math.min(wait, 1)));
    }
  };

  private send(index: number): void {
    this.sent[index] = performance.now() - this.t0;
    const options: Dispatcher.DispatchOptions = {
      path: this.options.path,
      method: "GET",
      headersTimeout: this.options.timeoutMs,
      bodyTimeout: this.options.timeoutMs,
    };
    this.pool.dispatch(options, new Exchange(this, index));
  }

  complete(index: number, status: number, error: string | null): void {
    if (this.done[index] !== NOT_DONE) return;
    this.done[index] = performance.now() - this.t0;
    this.status[index] = status;
    this.errors[index] = error;
    this.finished++;
    if (this.finished === this.total) this.resolveAll();
  }

  keepHeaders(index: number, headers: IncomingHttpHeaders): void {
    for (const name of this.options.keepHeaders) {
      const value = headers[name];
      this.headers[name]![index] =
        value === undefined ? null : Array.isArray(value) ? value.join(",") : value;
    }
  }

  result(): OpenLoopResult {
    return openLoopResult({
      options: this.options,
      t0EpochMs: performance.timeOrigin + this.t0,
      intervalMs: this.intervalMs,
      warmup: this.warmup,
      sent: this.sent,
      done: this.done,
      status: this.status,
      errors: this.errors,
      headers: this.headers,
    });
  }
}

class Exchange implements Dispatcher.DispatchHandler {
  private readonly generator: Generator;
  private readonly index: number;
  private status = 0;

  constructor(generator: Generator, index: number) {
    this.generator = generator;
    this.index = index;
  }

  /** Present so undici treats this as a new-style handler. */
  onRequestStart(): void {}

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
  ): void {
    if (statusCode < 200) return;
    this.status = statusCode;
    if (this.generator.options.keepHeaders.length > 0) this.generator.keepHeaders(this.index, headers);
  }

  onResponseData(): void {}

  onResponseEnd(): void {
    this.generator.complete(this.index, this.status, null);
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, error: Error): void {
    const code = (error as NodeJS.ErrnoException).code ?? error.name;
    this.generator.complete(this.index, 0, code);
  }
}

/**
 * Run the schedule to the end (every request answered or timed out). `onStart` gets request 0's
 * due time (epoch ms) before anything is sent.
 */
export async function runOpenLoop(
  options: OpenLoopOptions,
  onStart?: (t0EpochMs: number) => void,
): Promise<OpenLoopResult> {
  const generator = new Generator(options);
  onStart?.(performance.timeOrigin + generator.t0);
  await generator.run();
  await generator.pool.close();
  return generator.result();
}
