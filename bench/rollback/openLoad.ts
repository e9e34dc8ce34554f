/**
 * Steady open-loop load: request i is due at t0 + i / rate whatever happened to the earlier ones,
 * so a slow or failing release cannot slow the load down and hide itself. Each answer is kept with
 * its times, status, the proxy's `x-homeostat-instance` header and the `version` in the demo app's
 * JSON body: which release answered is read from the answer itself, not inferred.
 *
 * Times are epoch ms with sub-ms precision (`performance.timeOrigin + performance.now()`), on the
 * same clock as the controller's event times (`Date.now()` in another process on this machine).
 */

import { Agent, request } from "node:http";

export const INSTANCE_HEADER = "x-homeostat-instance";

/** One request. Times are epoch ms; `status` 0 means no HTTP answer (see `error`). */
export interface LoadRecord {
  due: number;
  sent: number;
  done: number;
  status: number;
  instance: string | null;
  version: string | null;
  error: string | null;
}

export interface LoadOptions {
  port: number;
  path: string;
  ratePerSecond: number;
  /** A request without a complete answer after this long counts as failed. */
  timeoutMs: number;
}

export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

/** Reads `version` from a JSON body, or null (not JSON, or no such field). */
function versionOf(body: string): string | null {
  try {
    const value = (JSON.parse(body) as { version?: unknown }).version;
    return typeof value === "string" ? value : null;
  } catch {
    return null;
  }
}

export class OpenLoad {
  readonly records: LoadRecord[] = [];
  readonly #options: LoadOptions;
  readonly #agent: Agent;
  readonly #intervalMs: number;
  #t0 = 0;
  #next = 0;
  #timer: NodeJS.Timeout | null = null;
  #inFlight = 0;
  #drained: (() => void) | null = null;

  constructor(options: LoadOptions) {
    this.#options = options;
    this.#intervalMs = 1000 / options.ratePerSecond;
    this.#agent = new Agent({ keepAlive: true, maxSockets: 512 });
  }

  /** Start sending; returns t0 (epoch ms of request 0's due time). */
  start(): number {
    if (this.#timer !== null) throw new Error("the load is already running");
    this.#t0 = epochNow();
    this.#next = 0;
    this.#timer = setInterval(() => this.#sendDue(), 1);
    this.#sendDue();
    return this.#t0;
  }

  /** Stop sending and wait (up to the request timeout and a bit) for the answers in flight. */
  async stop(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#inFlight > 0) {
      await new Promise<void>((resolve) => {
        const deadline = setTimeout(resolve, this.#options.timeoutMs + 1000);
        this.#drained = () => {
          clearTimeout(deadline);
          resolve();
        };
      });
    }
    this.#agent.destroy();
  }

  #sendDue(): void {
    const now = epochNow();
    while (this.#t0 + this.#next * this.#intervalMs <= now) {
      this.#send(this.#t0 + this.#next * this.#intervalMs);
      this.#next++;
    }
  }

  #send(due: number): void {
    const record: LoadRecord = {
      due,
      sent: epochNow(),
      done: 0,
      status: 0,
      instance: null,
      version: null,
      error: null,
    };
    this.records.push(record);
    this.#inFlight++;
    let settled = false;
    const settle = (error: string | null): void => {
      if (settled) return;
      settled = true;
      record.done = epochNow();
      if (error !== null) record.error = error;
      this.#inFlight--;
      if (this.#inFlight === 0) this.#drained?.();
    };
    const req = request(
      {
        host: "127.0.0.1",
        port: this.#options.port,
        path: this.#options.path,
        method: "GET",
        agent: this.#agent,
      },
      (res) => {
        record.status = res.statusCode ?? 0;
        const instance = res.headers[INSTANCE_HEADER];
        record.instance = typeof instance === "string" ? instance : null;
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          body += chunk;
        });
        res.on("end", () => {
          record.version = versionOf(body);
          settle(null);
        });
        res.on("error", (error) => settle(error.message));
      },
    );
    req.setTimeout(this.#options.timeoutMs, () => req.destroy(new Error("timeout")));
    req.on("error", (error: NodeJS.ErrnoException) => settle(error.code ?? error.message));
    req.end();
  }
}
