/**
 * The HAProxy engine's figures: HAProxy writes one raw log line per request (the `hs1` log-format,
 * see haproxyConfig.ts) into a ring it forwards over TCP to the data plane, newline-terminated,
 * many lines per write; each line is recorded into the
 * shared TrafficStats exactly as the embedded proxy records its requests and attempts, so canary
 * analysis, failover planning and the dashboards read one set of windows whatever the engine.
 *
 * What a line cannot say: HAProxy logs only the server of the last attempt. The earlier attempts
 * of a retried request went to servers it does not name, so they are counted in the request's
 * `attempts` and in {@link HaproxyLogReceiver.unknownAttempts}, never in an instance's or a
 * release's window (TrafficStats has no attempt series that is neither).
 */

import { createServer, type Server, type Socket } from "node:net";
import { HomeostatError } from "../../errors.ts";
import type { AttemptOutcome, Criticality } from "../../traffic/contracts.ts";
import {
  blankAttemptRecord,
  blankRequestRecord,
  type RequestResult,
  type TrafficStats,
} from "../../traffic/stats/index.ts";
import { LOG_ALL } from "./haproxyConfig.ts";

/** One `hs1` line's fields. Times are milliseconds, -1 where HAProxy logs -1 (the step never happened). */
export interface ParsedLine {
  /** The backend, i.e. the service (a line answered in the frontend names `fe_<service>`: the prefix is removed). */
  service: string;
  /** The server of the last attempt (the instance), or null for `<NOSRV>`. */
  server: string | null;
  /** Status sent to the client; -1 when none was. */
  status: number;
  /** %Ta: total active time. */
  totalMs: number;
  /** %Tw: time queued (HAProxy adds the earlier attempts of a retried request to it). */
  queueMs: number;
  /** %Tc: connect time of the last attempt. */
  connectMs: number;
  /** %Tr: time to the last attempt's response headers; -1 when the server sent none. */
  responseMs: number;
  /** %rc without its `+` (redispatched) prefix. */
  retries: number;
  /** %tsc: four characters, e.g. `----`, `sH--`, `SC--`, `LR--`. */
  termination: string;
  /** `txn.hs_crit`; missing or unknown values read as `default`. */
  criticality: Criticality;
  method: string;
  /** `txn.hs_local`: why HAProxy answered itself (`failover-shed`), null when `-`. */
  local: string | null;
  /**
   * How many requests this line stands for: 1, or 10000 / `txn.hs_logp` for a line of an answered
   * request when the service's log lines are sampled (only answered requests are: see
   * haproxyConfig.ts), so the figures stay estimates of every request.
   */
  weight: number;
}

/** How one line is recorded: the request, and the last attempt when it says anything of its server. */
export interface LineOutcome {
  result: RequestResult;
  status: number;
  /** The shed counter to add to, when the request was shed. */
  shed: "failover-shed" | "queue-timeout" | null;
  /** The last attempt's outcome; null when no server was tried or the client left first. */
  attempt: AttemptOutcome | null;
  attemptLatencyMs: number;
}

/** What the engine knows of an instance (server name = instance name). */
export interface InstanceInfo {
  release: string;
  zone: string;
}

export interface HaproxyLogReceiverOptions {
  stats: TrafficStats;
  /** Release and zone of a served instance; null when it is not one (its attempt is not recorded). */
  lookup(service: string, instance: string): InstanceInfo | null;
  /** The last attempt's outcome, for passive outlier detection (called for known and unknown instances). */
  onOutcome?(service: string, instance: string, outcome: AttemptOutcome, now: number): void;
  /** TCP port on 127.0.0.1; default 0 (a free one, see {@link HaproxyLogReceiver.start}). */
  port?: number;
  /** Epoch ms for {@link HaproxyLogReceiverOptions.onOutcome}; default `Date.now`. */
  now?: () => number;
}

const LINE_TAG = "hs1";
const FIELD_COUNT = 14;
const NO_SERVER = "<NOSRV>";
const FRONTEND_PREFIX = "fe_";
/** What the embedded proxy records for a client that left before any answer (nginx's 499). */
const CLIENT_CLOSED_STATUS = 499;
/** Bursts of thousands of requests a second must not overflow the kernel's queue between reads. */
/** A line longer than this without a newline is not HAProxy's (its ring's maxlen is 4096): cut. */
const MAX_LINE_BYTES = 8 * 1024;
const CRITICALITIES: Record<string, Criticality> = {
  critical: "critical",
  default: "default",
  sheddable: "sheddable",
};

/**
 * Parse one `hs1` line (a trailing newline is fine); null for anything else.
 *
 * `hs1 %b %s %ST %Ta %Tw %Tc %Tr %rc %tsc %[var(txn.hs_crit)] %HM %[var(txn.hs_local)] %[var(txn.hs_logp)]`
 */
export function parseHaproxyLogLine(line: string): ParsedLine | null {
  const f = line.trimEnd().split(" ");
  if (f.length !== FIELD_COUNT || f[0] !== LINE_TAG) return null;
  const [status, totalMs, queueMs, connectMs, responseMs] = [f[3], f[4], f[5], f[6], f[7]].map(integer);
  const rc = f[8]!;
  const retries = integer(rc.startsWith("+") ? rc.slice(1) : rc);
  const backend = f[1]!;
  const server = f[2]!;
  const termination = f[9]!;
  if (
    status == null ||
    totalMs == null ||
    queueMs == null ||
    connectMs == null ||
    responseMs == null ||
    retries === null ||
    retries < 0 ||
    backend === "" ||
    server === "" ||
    termination.length !== 4
  ) {
    return null;
  }
  // Sampling applies to answered requests only (`http-response`): any other line is always sent.
  const share = f[13] === "-" ? LOG_ALL : integer(f[13]);
  if (share === null || share < 1 || share > LOG_ALL) return null;
  const weight = responseMs >= 0 ? Math.round(LOG_ALL / share) : 1;
  return {
    service: backend.startsWith(FRONTEND_PREFIX) ? backend.slice(FRONTEND_PREFIX.length) : backend,
    server: server === NO_SERVER ? null : server,
    status,
    totalMs,
    queueMs,
    connectMs,
    responseMs,
    retries,
    termination,
    criticality: CRITICALITIES[f[10]!] ?? "default",
    method: f[11]!,
    local: f[12] === "-" ? null : f[12]!,
    weight,
  };
}

/**
 * What a parsed line means in the embedded proxy's terms (pure). By the termination state's first
 * two characters (who ended the session, and at which step):
 * - `txn.hs_local` = `failover-shed` (`LR`): shed by the failover gate, 503, no attempt.
 * - `sQ` (queue timeout): shed, `queue-timeout`, 503, no attempt.
 * - `<NOSRV>` 503 `SC` (no usable server): `no-upstream`. Other `<NOSRV>` lines (e.g. `PR` 400
 *   on a bad request) are answered locally: by status, no attempt.
 * - The server sent response headers (%Tr ≥ 0, whatever came after, as the embedded proxy
 *   reports at the head): attempt `http-5xx` for a 5xx else `success`; request `upstream-5xx`,
 *   `client-error` or `ok` by status.
 * - No response headers: `C`/`c` (client left or timed out first): no attempt, `failed` (499
 *   when nothing was sent); `SC`/`sC` (refused, connect timeout): `connect-error`; other `s`
 *   (`sH`, `sD`: server timeout): `timeout`; other `S` (`SH`, `SD`: server closed or reset)
 *   and anything else that cut an attempt (`D`, `K`, `P`…): `reset`. Request: `timeout` for a
 *   504 or an `s` state, else `failed`.
 */
export function lineOutcome(line: ParsedLine): LineOutcome {
  const who = line.termination[0]!;
  const step = line.termination[1]!;
  const status = line.status > 0 ? line.status : CLIENT_CLOSED_STATUS;
  const noAttempt = (result: RequestResult, shed: LineOutcome["shed"] = null): LineOutcome => ({
    result,
    status,
    shed,
    attempt: null,
    attemptLatencyMs: 0,
  });
  if (line.local === "failover-shed") return noAttempt("shed", "failover-shed");
  if (who === "s" && step === "Q") return noAttempt("shed", "queue-timeout");
  if (line.server === null) {
    if (line.status === 503 && who === "S" && step === "C") return noAttempt("no-upstream");
    return noAttempt(byStatus(status, "failed"));
  }
  if (line.responseMs >= 0) {
    return {
      result: byStatus(status, "upstream-5xx"),
      status,
      shed: null,
      attempt: status >= 500 ? "http-5xx" : "success",
      attemptLatencyMs: Math.max(0, line.connectMs) + line.responseMs,
    };
  }
  if (who === "C" || who === "c") return noAttempt("failed");
  let attempt: AttemptOutcome = "reset";
  if (step === "C" && (who === "S" || who === "s")) attempt = "connect-error";
  else if (who === "s") attempt = "timeout";
  return {
    result: line.status === 504 || who === "s" ? "timeout" : "failed",
    status,
    shed: null,
    attempt,
    // HAProxy counts the earlier attempts of a retried request in %Tw: what is left is the last one.
    attemptLatencyMs: Math.max(0, line.totalMs - Math.max(0, line.queueMs)),
  };
}

/**
 * Receives HAProxy's `hs1` log lines (its log ring, over TCP on 127.0.0.1) and records each into {@link TrafficStats}
 * as one client request (service window and metrics) and, when it names its server, one attempt
 * of that instance (instance and release windows), then tells {@link HaproxyLogReceiverOptions.onOutcome}.
 */
export class HaproxyLogReceiver {
  #received = 0;
  #unparsed = 0;
  #notices = 0;
  #unknownAttempts = 0;
  #server: Server | null = null;
  readonly #connections = new Set<Socket>();
  readonly #o: HaproxyLogReceiverOptions;
  readonly #now: () => number;
  /** Reused: the stats read records synchronously and keep nothing of them. */
  readonly #request = blankRequestRecord();
  readonly #attempt = blankAttemptRecord();

  constructor(o: HaproxyLogReceiverOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
  }

  /** Lines received. */
  get received(): number {
    return this.#received;
  }

  /** `hs1` lines that could not be read (a format mismatch: counted, otherwise ignored). */
  get unparsed(): number {
    return this.#unparsed;
  }

  /**
   * HAProxy's own lines on the same socket (an old worker's "Proxy … stopped" at each reload and
   * stop): not traffic, counted apart so that a reload does not look like a parsing problem.
   */
  get notices(): number {
    return this.#notices;
  }

  /** Earlier attempts of retried requests: their servers are not in the log (see the module's note). */
  get unknownAttempts(): number {
    return this.#unknownAttempts;
  }

  /**
   * Listen (TCP, 127.0.0.1); resolves with the port.
   * @throws HomeostatError HS_PORT_IN_USE when the given port is taken
   */
  start(): Promise<number> {
    const server = createServer((socket) => this.#accept(socket));
    const port = this.#o.port ?? 0;
    return new Promise((resolve, reject) => {
      server.once("error", (error: NodeJS.ErrnoException) => {
        server.close();
        if (error.code !== "EADDRINUSE") return reject(error);
        reject(
          new HomeostatError(
            "HS_PORT_IN_USE",
            `the HAProxy log port ${port} on 127.0.0.1 is already in use`,
            {
              details: { port },
              cause: error,
            },
          ),
        );
      });
      // SO_REUSEPORT: during a planned data-plane restart the successor listens on the port HAProxy
      // forwards its ring to while its predecessor still does, so HAProxy's configuration (and so
      // HAProxy) need not change. The predecessor's close cuts HAProxy's connection; HAProxy
      // connects again, to the successor, and sends what waited in the ring meanwhile.
      server.listen({ port, host: "127.0.0.1", reusePort: true }, () => {
        server.removeAllListeners("error");
        server.on("error", () => {});
        this.#server = server;
        resolve((server.address() as { port: number }).port);
      });
    });
  }

  /** Stop listening and cut HAProxy's connections (idempotent). */
  close(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    for (const socket of this.#connections) socket.destroy();
    this.#connections.clear();
    if (server === null) return Promise.resolve();
    return new Promise((resolve) => server.close(() => resolve()));
  }

  #accept(socket: Socket): void {
    // Only HAProxy on this machine connects here; still, a connection is bounded in what it holds.
    this.#connections.add(socket);
    let pending = "";
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      pending += chunk;
      let newline = pending.indexOf("\n");
      while (newline !== -1) {
        this.#received++;
        this.record(pending.slice(0, newline));
        pending = pending.slice(newline + 1);
        newline = pending.indexOf("\n");
      }
      if (pending.length > MAX_LINE_BYTES) {
        this.#unparsed++;
        pending = "";
      }
    });
    socket.on("error", () => {});
    socket.on("close", () => this.#connections.delete(socket));
  }

  /** Record one line as if it had arrived; false when it is not an `hs1` line. */
  record(text: string): boolean {
    const line = parseHaproxyLogLine(text);
    if (line === null) {
      if (text.startsWith(`${LINE_TAG} `)) this.#unparsed++;
      else this.#notices++;
      return false;
    }
    const { stats } = this.#o;
    const outcome = lineOutcome(line);
    // The last attempt went to a server unless HAProxy answered without one (or before one: shed).
    const lastAttempt = line.server !== null && outcome.shed === null ? 1 : 0;
    this.#unknownAttempts += line.retries * line.weight;
    if (outcome.shed !== null) stats.recordShed(line.service, line.criticality, outcome.shed);
    if (outcome.attempt !== null && line.server !== null) {
      const info = this.#o.lookup(line.service, line.server);
      if (info !== null) {
        const a = this.#attempt;
        a.service = line.service;
        a.release = info.release;
        a.instance = line.server;
        a.zone = info.zone;
        a.outcome = outcome.attempt;
        a.status = line.responseMs >= 0 ? outcome.status : undefined;
        a.latencyMs = outcome.attemptLatencyMs;
        stats.recordAttempt(a, line.weight);
      }
      this.#o.onOutcome?.(line.service, line.server, outcome.attempt, this.#now());
    }
    const r = this.#request;
    r.service = line.service;
    r.criticality = line.criticality;
    r.result = outcome.result;
    r.status = outcome.status;
    r.latencyMs = Math.max(0, line.totalMs);
    r.attempts = line.retries + lastAttempt;
    r.retried = line.retries > 0;
    stats.recordRequest(r, line.weight);
    return true;
  }
}

function byStatus(status: number, serverError: RequestResult): RequestResult {
  if (status >= 500) return serverError;
  return status >= 400 ? "client-error" : "ok";
}

function integer(text: string | undefined): number | null {
  if (text === undefined || !/^-?\d{1,12}$/.test(text)) return null;
  return Number(text);
}
