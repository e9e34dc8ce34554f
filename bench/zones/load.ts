/**
 * Open-loop load with a criticality mix: request i is due at t0 + i / rate whatever happened to
 * the earlier ones (a saturated fleet cannot slow the load down and hide its own overload), and
 * carries `x-homeostat-criticality` from a fixed, interleaved pattern of ten: 2 critical,
 * 5 default, 3 sheddable. Every answer is kept with how it ended.
 */

import { Agent, request } from "node:http";
import type { Criticality } from "../../src/traffic/contracts.ts";

export const CRITICALITY_HEADER = "x-homeostat-criticality";
export const SHED_HEADER = "x-homeostat-shed";
export const INSTANCE_HEADER = "x-homeostat-instance";

/** 20 % critical, 50 % default, 30 % sheddable, spread out so every second has the same mix. */
export const MIX_PATTERN: readonly Criticality[] = [
  "critical",
  "default",
  "sheddable",
  "default",
  "sheddable",
  "default",
  "critical",
  "default",
  "sheddable",
  "default",
];

/** How a request ended. */
export type Outcome = "ok" | "shed" | "http-5xx" | "http-other" | "timeout" | "connection-error";

/** One request. Times are ms from the load's t0 (epoch ms in `LoadResult.t0`). */
export interface LoadRecord {
  due: number;
  criticality: Criticality;
  /** When the request was actually written (the agent may hold it back for a free socket). */
  sent: number;
  done: number;
  status: number;
  outcome: Outcome;
  /** `x-homeostat-shed` of a 503 the proxy gave itself. */
  shedReason: string | null;
  /** The instance that answered (`x-homeostat-instance`). */
  instance: string | null;
  error: string | null;
}

export interface LoadResult {
  /** Epoch ms of request 0's due time. */
  t0: number;
  ratePerSecond: number;
  records: LoadRecord[];
  /** Largest delay between a request's due time and its send (the generator's own lateness). */
  maxLatenessMs: number;
}

export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

export class OpenLoad {
  readonly #records: LoadRecord[] = [];
  readonly #port: number;
  readonly #path: string;
  readonly #rate: number;
  readonly #timeoutMs: number;
  readonly #agent: Agent;
  #t0 = 0;
  #next = 0;
  #timer: NodeJS.Timeout | null = null;
  #inFlight = 0;
  #drained: (() => void) | null = null;

  constructor(options: { port: number; path: string; ratePerSecond: number; timeoutMs: number }) {
    this.#port = options.port;
    this.#path = options.path;
    this.#rate = options.ratePerSecond;
    this.#timeoutMs = options.timeoutMs;
    // Enough sockets for every request that can be outstanding (rate × timeout, and then some):
    // the offered load must stay what it is set to even when answers are slow.
    this.#agent = new Agent({ keepAlive: true, maxSockets: Math.ceil(options.ratePerSecond * 4) + 64 });
  }

  /** Start sending; returns t0 (epoch ms). */
  start(): number {
    if (this.#timer !== null) throw new Error("the load is already running");
    this.#t0 = epochNow();
    this.#timer = setInterval(() => this.#sendDue(), 1);
    this.#sendDue();
    return this.#t0;
  }

  /** Ms since t0 now. */
  elapsed(): number {
    return epochNow() - this.#t0;
  }

  /** Stop sending, wait for the answers in flight (each ends by its timeout), and return everything. */
  async stop(): Promise<LoadResult> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#inFlight > 0) {
      await new Promise<void>((resolve) => {
        this.#drained = resolve;
      });
    }
    this.#agent.destroy();
    let maxLatenessMs = 0;
    for (const r of this.#records) maxLatenessMs = Math.max(maxLatenessMs, r.sent - r.due);
    return { t0: this.#t0, ratePerSecond: this.#rate, records: this.#records, maxLatenessMs };
  }

  #sendDue(): void {
    const now = this.elapsed();
    const interval = 1000 / this.#rate;
    while (this.#next * interval <= now) {
      this.#send(this.#next * interval, MIX_PATTERN[this.#next % MIX_PATTERN.length]!);
      this.#next++;
    }
  }

  #send(due: number, criticality: Criticality): void {
    const record: LoadRecord = {
      due,
      criticality,
      sent: this.elapsed(),
      done: 0,
      status: 0,
      outcome: "connection-error",
      shedReason: null,
      instance: null,
      error: null,
    };
    this.#records.push(record);
    this.#inFlight++;
    let settled = false;
    const settle = (outcome: Outcome, error: string | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      record.done = this.elapsed();
      record.outcome = outcome;
      record.error = error;
      this.#inFlight--;
      if (this.#inFlight === 0) this.#drained?.();
    };
    const req = request(
      {
        host: "127.0.0.1",
        port: this.#port,
        path: this.#path,
        method: "GET",
        agent: this.#agent,
        headers: { [CRITICALITY_HEADER]: criticality },
      },
      (res) => {
        const status = res.statusCode ?? 0;
        record.status = status;
        const instance = res.headers[INSTANCE_HEADER];
        record.instance = typeof instance === "string" ? instance : null;
        const shed = res.headers[SHED_HEADER];
        record.shedReason = typeof shed === "string" ? shed : null;
        res.resume();
        res.on("end", () =>
          settle(
            status === 200
              ? "ok"
              : status === 503 && record.shedReason !== null
                ? "shed"
                : status >= 500
                  ? "http-5xx"
                  : "http-other",
            null,
          ),
        );
        res.on("error", (error) => settle("connection-error", error.message));
      },
    );
    // The client's whole-request deadline, headers and body included.
    const deadline = setTimeout(() => {
      settle("timeout", `no complete answer within ${this.#timeoutMs}ms`);
      req.destroy();
    }, this.#timeoutMs);
    req.on("error", (error: NodeJS.ErrnoException) =>
      settle("connection-error", error.code ?? error.message),
    );
    req.end();
  }
}
