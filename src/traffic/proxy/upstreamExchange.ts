/**
 * One attempt against one upstream, as an undici dispatch handler: the response is streamed to
 * the client chunk by chunk with backpressure (the upstream socket is paused while the client is
 * slow), never buffered. Retry decisions are taken synchronously when the status arrives, so a
 * delivered response costs no pause, no promise and no extra tick.
 */

import type { ServerResponse } from "node:http";
import type { Dispatcher } from "undici";
import { type DeadlineEntry, type DeadlineList, Deadlines } from "./deadlineList.ts";
import type { EndpointPool } from "./endpointPool.ts";
import type { AttemptFailure } from "./retryPolicy.ts";

export type UpstreamHeaders = Record<string, string | string[] | undefined>;

/** How an attempt ended, as far as the request is concerned. */
export type ExchangeEnd =
  /** No response to deliver: retry or answer with an error. */
  | { kind: "failed"; failure: AttemptFailure }
  /** The response went to the client (`complete` false: cut off half-way). */
  | { kind: "delivered"; complete: boolean };

/** The request an exchange works for. */
export interface ExchangeOwner {
  readonly res: ServerResponse;
  /**
   * The upstream's status arrived. Report the attempt, then either write the client's response
   * head and return true (the body follows), or return false to drop this response (retry).
   */
  onResponseHead(
    exchange: UpstreamExchange,
    status: number,
    statusText: string,
    headers: UpstreamHeaders,
  ): boolean;
}

/** Reasons an exchange is aborted from our side. */
export const PER_TRY_TIMEOUT = new Error("per-try timeout");
export const REQUEST_TIMEOUT = new Error("request timeout");
export const CLIENT_GONE = new Error("client closed the connection");
/** Another attempt of the same request answered first (hedging): this one is not needed any more. */
export const HEDGE_LOST = new Error("another attempt answered first");

/** Error codes that mean the TCP connection was never established: the request was never sent. */
const CONNECT_ERRORS = new Set([
  "ECONNREFUSED",
  "UND_ERR_CONNECT_TIMEOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/** A 5xx body larger than this is not worth reading to keep the connection: it is cut instead. */
const MAX_DISCARD_BYTES = 64 * 1024;

/** Classify an attempt error. `sent`: the request was handed to a connected socket. */
export function failureOf(error: Error, sent: boolean): AttemptFailure {
  if (error === HEDGE_LOST) return { outcome: "reset", cancelled: true };
  if (error === PER_TRY_TIMEOUT || error === REQUEST_TIMEOUT) return { outcome: "timeout" };
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "UND_ERR_HEADERS_TIMEOUT") return { outcome: "timeout" };
  if (!sent || (code !== undefined && CONNECT_ERRORS.has(code))) return { outcome: "connect-error" };
  return { outcome: "reset" };
}

const WAITING = 0;
const DELIVERING = 1;
const DISCARDING = 2;
const FINISHED = 3;

export class UpstreamExchange implements Dispatcher.DispatchHandler, DeadlineEntry {
  /** Resolves once: a failure before a usable response, or the end of delivery. */
  readonly ended: Promise<ExchangeEnd>;
  readonly pool: EndpointPool;
  /** `performance.now()` when the attempt started. */
  readonly startedAt: number;
  /** Time to the response head, or to the failure: the attempt's latency. */
  latencyMs = 0;
  private readonly owner: ExchangeOwner;
  private failure: AttemptFailure | null = null;
  private resolveEnded!: (end: ExchangeEnd) => void;
  private controller: Dispatcher.DispatchController | null = null;
  private state = WAITING;
  private resolved = false;
  private settled = false;
  private sent = false;
  /** Counted in the pool's `waiting` (until the response head, or the attempt's end). */
  private waitOpen = true;
  private abortReason: Error | null = null;
  /** The per-try timer, when the attempt was delayed (fault rules) and its deadline is not a list's. */
  private perTryTimer: NodeJS.Timeout | null = null;
  private discarded = 0;
  // The per-try deadline, on the proxy's shared lists (see DeadlineList) when it is a whole per-try timeout.
  deadlineAt = 0;
  deadlinePrev: DeadlineEntry | null = null;
  deadlineNext: DeadlineEntry | null = null;
  deadlineList: DeadlineList | null = null;

  /**
   * Counts as in flight to `pool` from now until undici is done with it.
   * @param startedAt `performance.now()` when the attempt began (an injected delay counts in it)
   * @param deadlines where a whole per-try timeout is armed (an attempt delayed by a fault gets a
   *   timer of its own for what is left of it)
   */
  constructor(
    owner: ExchangeOwner,
    pool: EndpointPool,
    perTryTimeoutMs: number,
    startedAt: number,
    deadlines: Deadlines,
  ) {
    this.owner = owner;
    this.pool = pool;
    pool.begin();
    this.startedAt = startedAt;
    this.ended = new Promise((resolve) => {
      this.resolveEnded = resolve;
    });
    const now = performance.now();
    pool.waitStarted(now);
    const elapsedMs = now - startedAt;
    if (elapsedMs < 1) deadlines.arm(this, perTryTimeoutMs);
    else {
      this.perTryTimer = setTimeout(() => this.perTryExpired(), Math.max(1, perTryTimeoutMs - elapsedMs));
    }
  }

  /** Still waiting for a response head (neither answered nor failed). */
  get waiting(): boolean {
    return this.state === WAITING && !this.resolved;
  }

  /** Cancelled because another attempt of the request answered first (see {@link cancel}). */
  get cancelled(): boolean {
    return this.abortReason === HEDGE_LOST;
  }

  /** How the attempt failed, once it has (null: not failed, or not yet). */
  get failed(): AttemptFailure | null {
    return this.failure;
  }

  /** The per-try deadline passed (called by the deadline list). */
  onDeadline(): void {
    this.perTryExpired();
  }

  /**
   * Another attempt of the request answered first: stop this one if it is still waiting (its
   * connection is dropped, its in-flight count released without a latency sample). An attempt
   * that already has its answer is left alone.
   */
  cancel(): void {
    if (this.waiting) this.abort(HEDGE_LOST);
  }

  /** Stop the attempt (deadline, client gone). A delivered response is cut off. */
  abort(reason: Error): void {
    if (this.state === FINISHED) return;
    this.abortReason ??= reason;
    if (this.controller !== null) this.controller.abort(reason);
    else if (this.state === WAITING) {
      // Still queued for a connection: answer now; undici aborts it as soon as it would start.
      this.clearTimer();
      this.fail(failureOf(reason, false));
    }
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    this.sent = true;
    if (this.abortReason !== null) controller.abort(this.abortReason);
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    status: number,
    headers: UpstreamHeaders,
    statusText?: string,
  ): void {
    // 1xx (e.g. 103 Early Hints) are informational: the real answer follows.
    if (this.state !== WAITING || status < 200) return;
    this.clearTimer();
    const now = performance.now();
    this.latencyMs = now - this.startedAt;
    this.stopWaiting(now, true);
    if (this.owner.onResponseHead(this, status, statusText ?? "", headers)) {
      this.state = DELIVERING;
    } else {
      this.state = DISCARDING;
      this.resolve({ kind: "failed", failure: { outcome: "http-5xx", status } });
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.state === DELIVERING) {
      if (!this.owner.res.write(chunk)) {
        controller.pause();
        this.owner.res.once("drain", () => this.controller?.resume());
      }
    } else if (this.state === DISCARDING) {
      this.discarded += chunk.length;
      if (this.discarded > MAX_DISCARD_BYTES) controller.abort(new Error("discarded body too large"));
    }
  }

  onResponseEnd(): void {
    if (this.state === DELIVERING) {
      this.owner.res.end();
      this.resolve({ kind: "delivered", complete: true });
    }
    this.finish();
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, error: Error): void {
    this.clearTimer();
    if (this.state === WAITING) {
      this.fail(failureOf(this.abortReason ?? error, this.sent));
    } else if (this.state === DELIVERING) {
      // Headers are out: the only honest signal left for the client is a cut connection.
      this.owner.res.destroy();
      this.resolve({ kind: "delivered", complete: false });
    }
    this.finish();
  }

  private perTryExpired(): void {
    this.perTryTimer = null;
    if (this.state === WAITING) this.abort(PER_TRY_TIMEOUT);
  }

  private clearTimer(): void {
    Deadlines.disarm(this);
    if (this.perTryTimer !== null) {
      clearTimeout(this.perTryTimer);
      this.perTryTimer = null;
    }
  }

  private stopWaiting(now: number, answered: boolean): void {
    if (!this.waitOpen) return;
    this.waitOpen = false;
    this.pool.waitEnded(now, answered);
  }

  private fail(failure: AttemptFailure): void {
    if (this.resolved) return;
    const now = performance.now();
    this.stopWaiting(now, false);
    this.latencyMs = now - this.startedAt;
    this.failure = failure;
    this.resolve({ kind: "failed", failure });
  }

  private resolve(end: ExchangeEnd): void {
    if (this.resolved) return;
    this.resolved = true;
    this.resolveEnded(end);
  }

  private finish(): void {
    this.state = FINISHED;
    this.clearTimer();
    if (this.settled) return;
    this.settled = true;
    if (this.waitOpen) this.stopWaiting(performance.now(), false);
    const failure = this.failure;
    if (failure === null) this.pool.end(this.latencyMs, false);
    // Our own aborts (client gone, hedge lost) say nothing of the endpoint's latency.
    else if (this.abortReason === CLIENT_GONE || this.abortReason === HEDGE_LOST) this.pool.endQuietly();
    else this.pool.end(this.latencyMs, failure.outcome !== "http-5xx");
  }
}
