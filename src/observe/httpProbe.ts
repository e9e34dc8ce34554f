/**
 * HTTP probe: one GET; the status code decides. Speaks just enough HTTP/1.1 over a plain socket to
 * read a status and, to keep the connection for the next probe, find the end of the answer:
 * `node:http`'s request, agent and message objects cost more CPU than the rest of a probe
 * together (issue 15), and a probe needs none of what they offer.
 */

import type { ProbeCheck } from "../spec/model.ts";
import { type ConnectionUser, ProbeConnection, type ProbeConnections } from "./probeConnections.ts";
import {
  describeIoError,
  type Finish,
  type ProbeOutcome,
  type ProbeTarget,
  settleOnce,
} from "./probeTarget.ts";

type HttpCheck = Extract<ProbeCheck, { kind: "http" }>;

/** Node's own limit on a response head (`--max-http-header-size`). */
const MAX_HEAD_BYTES = 16 * 1024;
/** A body longer than this is not read to keep the connection: the connection is closed instead. */
const MAX_DRAINED_BODY_BYTES = 64 * 1024;
/** What `node:http` refuses in a request path. */
const INVALID_PATH = /[^\u0021-\u00ff]/;

/**
 * GET `check.path` and pass when the status is within `check.expectStatus` (inclusive). Only the
 * status line and headers are awaited: a server that stalls mid-body cannot hold the probe. With
 * `connections` the connection is kept for the next probe when the answer ended cleanly (see
 * probeConnections.ts for when a connection is reused); without, the probe uses a connection of
 * its own and closes it. Resolves within `timeoutMs` (plus timer latency), never rejects.
 */
export function httpProbe(
  check: HttpCheck,
  target: ProbeTarget,
  timeoutMs: number,
  connections?: ProbeConnections,
): Promise<ProbeOutcome> {
  if (INVALID_PATH.test(check.path)) {
    return Promise.resolve({
      ok: false,
      durationMs: 0,
      detail: "Request path contains unescaped characters",
    });
  }
  return settleOnce(timeoutMs, (finish) => {
    const exchange = new HttpExchange(check, target, timeoutMs, connections ?? null, finish);
    exchange.start();
    return { cleanup: () => exchange.settled() };
  });
}

/** Where an answer is in its reading. */
type Phase = "head" | "body-length" | "body-chunked" | "done";

/** One probe's request and answer, on one connection (two if a reused one was found dead). */
class HttpExchange implements ConnectionUser {
  readonly #check: HttpCheck;
  readonly #host: string;
  readonly #port: number;
  readonly #timeoutMs: number;
  readonly #startedAt = performance.now();
  readonly #pool: ProbeConnections | null;
  readonly #finish: Finish;
  #connection: ProbeConnection | null = null;
  #phase: Phase = "head";
  /** Head bytes so far, when a head spans several reads. */
  #head: Buffer | null = null;
  /** Any byte of an answer arrived on the current connection. */
  #answered = false;
  #settled = false;
  #reusable = false;
  #bodyLeft = 0;
  #bodyRead = 0;
  #chunked: ChunkedBody | null = null;
  #drainTimer: NodeJS.Timeout | null = null;

  constructor(
    check: HttpCheck,
    target: ProbeTarget,
    timeoutMs: number,
    pool: ProbeConnections | null,
    finish: Finish,
  ) {
    this.#check = check;
    this.#host = target.host;
    this.#port = check.port ?? target.port;
    this.#timeoutMs = timeoutMs;
    this.#pool = pool;
    this.#finish = finish;
  }

  start(): void {
    const connection =
      this.#pool === null
        ? new ProbeConnection(this.#host, this.#port, null, this.#startedAt)
        : this.#pool.acquire(this.#host, this.#port);
    this.#use(connection);
  }

  /** The probe is settled (answered, failed or timed out): let go of the connection. */
  settled(): void {
    this.#settled = true;
    // Still reading the body of a good answer to keep the connection: that goes on (bounded).
    if (this.#phase === "body-length" || this.#phase === "body-chunked") {
      if (this.#drainTimer === null) {
        const left = Math.max(0, this.#timeoutMs - (performance.now() - this.#startedAt));
        this.#drainTimer = setTimeout(() => this.#release(false), left);
        this.#drainTimer.unref();
      }
      return;
    }
    this.#release(this.#phase === "done" && this.#reusable);
  }

  #use(connection: ProbeConnection): void {
    this.#connection = connection;
    this.#answered = false;
    connection.lend(this);
    if (connection.reused) this.#send();
    // A new connection sends once connected (onConnect).
  }

  #send(): void {
    const connection = this.#connection!;
    const ok = !connection.dead;
    if (ok) {
      connection.socket.write(requestBytes(this.#check.path, this.#host, this.#port));
    } else {
      connection.destroy();
      this.onEnd(null);
    }
  }

  onConnect(): void {
    this.#send();
  }

  onData(chunk: Buffer): void {
    this.#answered = true;
    if (this.#phase === "head") {
      const data = this.#head === null ? chunk : Buffer.concat([this.#head, chunk]);
      const end = data.indexOf("\r\n\r\n", 0, "latin1");
      if (end < 0) {
        if (data.length > MAX_HEAD_BYTES) this.#fail("Parse Error: Header overflow");
        // A chunk is a view of the connections' shared read buffer: kept, it is copied.
        else this.#head = data === chunk ? Buffer.from(chunk) : data;
        return;
      }
      this.#head = null;
      const head = parseHead(data, end);
      if (typeof head === "string") {
        this.#fail(head);
        return;
      }
      const rest = data.subarray(end + 4);
      // An informational answer (103 Early Hints…) comes before the real one.
      if (head.status >= 100 && head.status < 200 && head.status !== 101) {
        if (rest.length > 0) this.onData(rest);
        return;
      }
      this.#answer(head, rest);
      return;
    }
    this.#body(chunk);
  }

  onEnd(error: Error | null): void {
    const connection = this.#connection;
    this.#connection = null;
    if (this.#phase === "done" || (this.#settled && this.#phase !== "head")) {
      this.#release(false);
      return;
    }
    if (this.#settled) return;
    // A kept connection found closed before any answer: the server let it go meanwhile (its
    // keep-alive timeout, a restart). Once more on a new connection, within the same timeout.
    if (connection?.reused === true && !this.#answered && this.#pool !== null) {
      this.#use(this.#pool.fresh(this.#host, this.#port));
      return;
    }
    this.#finish(false, error === null ? "socket hang up" : describeIoError(error));
  }

  #answer(head: Head, rest: Buffer): void {
    const [min, max] = this.#check.expectStatus;
    const passed = head.status >= min && head.status <= max;
    this.#reusable = head.keepAlive;
    if (head.status === 204 || head.status === 304 || head.status === 101) {
      this.#phase = "done";
      this.#reusable = head.keepAlive && head.status !== 101 && rest.length === 0;
    } else if (head.chunked) {
      this.#phase = "body-chunked";
      this.#chunked = new ChunkedBody();
    } else if (head.contentLength !== null) {
      this.#phase = "body-length";
      this.#bodyLeft = head.contentLength;
    } else {
      // The body runs until the server closes: nothing to keep.
      this.#phase = "done";
      this.#reusable = false;
    }
    if (!this.#reusable) this.#phase = "done";
    else if (this.#phase !== "done") this.#body(rest);
    this.#finish(passed, passed ? undefined : `status ${head.status}`);
  }

  #body(chunk: Buffer): void {
    if (chunk.length === 0 && !(this.#phase === "body-length" && this.#bodyLeft === 0)) return;
    this.#bodyRead += chunk.length;
    if (this.#bodyRead > MAX_DRAINED_BODY_BYTES) {
      this.#reusable = false;
      this.#phase = "done";
    } else if (this.#phase === "body-length") {
      if (chunk.length > this.#bodyLeft) this.#reusable = false;
      this.#bodyLeft -= Math.min(this.#bodyLeft, chunk.length);
      if (this.#bodyLeft === 0) this.#phase = "done";
    } else if (this.#phase === "body-chunked") {
      const state = this.#chunked!.feed(chunk);
      if (state !== "more") {
        this.#phase = "done";
        if (state !== "complete") this.#reusable = false;
      }
    }
    if (this.#phase === "done" && this.#settled) this.#release(this.#reusable);
  }

  #fail(detail: string): void {
    this.#phase = "done";
    this.#reusable = false;
    this.#finish(false, detail);
  }

  #release(reusable: boolean): void {
    if (this.#drainTimer !== null) clearTimeout(this.#drainTimer);
    this.#drainTimer = null;
    const connection = this.#connection;
    this.#connection = null;
    if (connection === null) return;
    if (this.#pool === null) connection.destroy();
    else this.#pool.release(connection, reusable);
  }
}

interface Head {
  status: number;
  /** HTTP/1.1 without `Connection: close` (or 1.0 with `Connection: keep-alive`). */
  keepAlive: boolean;
  chunked: boolean;
  contentLength: number | null;
}

const CRLF = Buffer.from("\r\n", "latin1");
const COLON = 0x3a;
const SPACE = 0x20;
/** "HTTP/1." */
const HTTP_1 = [0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e];

/**
 * The status line and the framing headers of the head `data[0, end)`, or a parse error
 * ("Parse Error: …", as node:http says it). Read from the bytes: only the values of the three
 * headers that matter become strings (issue 15: a probe used to turn its whole head into a
 * string, then slice it line by line: 110 of the controller's 866 KiB/s of allocations at 120
 * probes/s, by its sampling heap profiler).
 */
function parseHead(data: Buffer, end: number): Head | string {
  let lineEnd = data.indexOf(CRLF, 0);
  if (lineEnd < 0 || lineEnd > end) lineEnd = end;
  // `HTTP/1.[01] NNN`, then a space or the end of the line.
  let statusLine = lineEnd >= 12 && (lineEnd === 12 || data[12] === SPACE);
  for (let i = 0; statusLine && i < HTTP_1.length; i++) statusLine = data[i] === HTTP_1[i];
  statusLine &&= (data[7] === 0x30 || data[7] === 0x31) && data[8] === SPACE;
  statusLine &&= isDigit(data[9]) && isDigit(data[10]) && isDigit(data[11]);
  if (!statusLine) {
    let http = lineEnd >= 5;
    for (let i = 0; http && i < 5; i++) http = data[i] === HTTP_1[i];
    return http ? "Parse Error: Invalid status code" : "Parse Error: Expected HTTP/";
  }
  const http11 = data[7] === 0x31;
  const status = (data[9]! - 0x30) * 100 + (data[10]! - 0x30) * 10 + (data[11]! - 0x30);
  let keepAlive = http11;
  let chunked = false;
  let contentLength: number | null = null;
  let lengthConflict = false;
  for (let at = lineEnd + 2; at < end; ) {
    let lineStop = data.indexOf(CRLF, at);
    if (lineStop < 0 || lineStop > end) lineStop = end;
    const colon = data.indexOf(COLON, at);
    if (colon <= at || colon >= lineStop) return "Parse Error: Invalid header token";
    const nameLength = colon - at;
    if (nameLength === 10 && nameIs(data, at, "connection")) {
      const tokens = headerValue(data, colon, lineStop)
        .split(",")
        .map((t) => t.trim());
      if (tokens.includes("close")) keepAlive = false;
      else if (tokens.includes("keep-alive") && !http11) keepAlive = true;
    } else if (nameLength === 17 && nameIs(data, at, "transfer-encoding")) {
      // Chunked only when it is the last coding; any other coding reads until close.
      chunked = headerValue(data, colon, lineStop).split(",").at(-1)?.trim() === "chunked";
      if (!chunked) keepAlive = false;
    } else if (nameLength === 14 && nameIs(data, at, "content-length")) {
      const value = headerValue(data, colon, lineStop);
      if (!/^\d+$/.test(value)) return "Parse Error: Invalid character in Content-Length";
      const length = Number(value);
      if (contentLength !== null && contentLength !== length) lengthConflict = true;
      contentLength = length;
    }
    at = lineStop + 2;
  }
  // Both framings, or two lengths: a response smuggling risk that node:http refuses; not kept.
  if (lengthConflict || (chunked && contentLength !== null)) keepAlive = false;
  return { status, keepAlive, chunked, contentLength: chunked ? null : contentLength };
}

function isDigit(byte: number | undefined): boolean {
  return byte !== undefined && byte >= 0x30 && byte <= 0x39;
}

/** Whether the header name at `at` is `lower` (lower case), in any case. */
function nameIs(data: Buffer, at: number, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    let byte = data[at + i]!;
    if (byte >= 0x41 && byte <= 0x5a) byte += 0x20;
    if (byte !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** The value of the header line whose colon is at `colon`, trimmed and lower-cased. */
function headerValue(data: Buffer, colon: number, lineStop: number): string {
  return data
    .toString("latin1", colon + 1, lineStop)
    .trim()
    .toLowerCase();
}

/** `chunk-size [; ext] CRLF data CRLF` … `0 CRLF [trailers] CRLF`, read to its end. */
class ChunkedBody {
  #state: "size" | "data" | "data-crlf" | "trailers" = "size";
  #line = "";
  #left = 0;

  /** Feed bytes: "more" to wait, "complete" at the end, "extra" if bytes follow it, "bad" if malformed. */
  feed(chunk: Buffer): "more" | "complete" | "extra" | "bad" {
    let i = 0;
    while (i < chunk.length) {
      switch (this.#state) {
        case "data": {
          const take = Math.min(this.#left, chunk.length - i);
          this.#left -= take;
          i += take;
          if (this.#left === 0) this.#state = "data-crlf";
          break;
        }
        default: {
          const nl = chunk.indexOf(10, i);
          const end = nl < 0 ? chunk.length : nl + 1;
          this.#line += chunk.toString("latin1", i, end);
          i = end;
          if (this.#line.length > 4096) return "bad";
          if (nl < 0) break;
          const line = this.#line.replace(/\r?\n$/, "");
          this.#line = "";
          if (this.#state === "data-crlf") {
            if (line !== "") return "bad";
            this.#state = "size";
          } else if (this.#state === "size") {
            const size = /^([0-9a-fA-F]+)[ \t]*(;.*)?$/.exec(line);
            if (size === null) return "bad";
            this.#left = Number.parseInt(size[1]!, 16);
            if (!Number.isSafeInteger(this.#left)) return "bad";
            this.#state = this.#left === 0 ? "trailers" : "data";
          } else if (line === "") {
            return i < chunk.length ? "extra" : "complete";
          }
        }
      }
    }
    return "more";
  }
}

const requests = new Map<string, Buffer>();

/** The request's bytes, made once per path and port (as node:http sends it, minus `Connection: close`). */
function requestBytes(path: string, host: string, port: number): Buffer {
  const key = `${host}:${port} ${path}`;
  let bytes = requests.get(key);
  if (bytes === undefined) {
    bytes = Buffer.from(
      `GET ${path} HTTP/1.1\r\nUser-Agent: homeostat-probe\r\nHost: ${host}:${port}\r\n\r\n`,
      "latin1",
    );
    // Bounded: paths come from the fleet file, ports from its services; a cap guards the rest.
    if (requests.size >= 10_000) requests.clear();
    requests.set(key, bytes);
  }
  return bytes;
}
