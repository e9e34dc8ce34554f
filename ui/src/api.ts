/**
 * The dashboard's only way to the controller: the same JSON API the CLI uses, with the token the
 * user pasted sent as `Authorization: Bearer` on every call. No cookie and no token in a URL, so a
 * foreign page can neither ride the session nor read it from logs.
 */

/** An answer the API refused, with its catalogued code and message (shown to the user as is). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export type Method = "GET" | "POST" | "PUT" | "DELETE";

/** A client bound to one token. */
export class Api {
  readonly token: string;
  /** Origin of the API: "" (the page's own) in the browser, `http://127.0.0.1:PORT` in tests. */
  readonly base: string;
  constructor(token: string, base = "") {
    this.token = token;
    this.base = base;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { authorization: `Bearer ${this.token}`, ...extra };
  }

  /** GET a JSON document. */
  async get<T>(path: string, signal?: AbortSignal): Promise<T> {
    return await this.call<T>("GET", path, undefined, signal);
  }

  /** GET a text document (Prometheus metrics). */
  async text(path: string, signal?: AbortSignal): Promise<string> {
    const response = await fetch(this.base + path, { headers: this.headers(), signal: signal ?? null });
    if (!response.ok) throw await errorOf(response);
    return await response.text();
  }

  /** Any call; a change always carries a JSON body (the API refuses changes without one). */
  async call<T>(method: Method, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const init: RequestInit = { method, headers: this.headers(), signal: signal ?? null };
    if (method !== "GET") {
      init.headers = this.headers({ "content-type": "application/json" });
      init.body = JSON.stringify(body ?? {});
    }
    const response = await fetch(this.base + path, init);
    if (!response.ok) throw await errorOf(response);
    return (await response.json()) as T;
  }
}

async function errorOf(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => "");
  try {
    const parsed = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (parsed.error?.message !== undefined) {
      return new ApiError(
        response.status,
        parsed.error.code ?? `HTTP_${response.status}`,
        parsed.error.message,
      );
    }
  } catch {
    // not the API's envelope
  }
  return new ApiError(response.status, `HTTP_${response.status}`, text.slice(0, 300) || response.statusText);
}

/** One Server-Sent Event. */
export interface StreamMessage {
  id: string | null;
  event: string;
  data: string;
}

/**
 * Reads `GET /v1/stream` with fetch and a stream reader (EventSource cannot send an Authorization
 * header), calling `onMessage` for each event, until the stream ends, fails or `signal` aborts.
 * Resumes after `lastEventId` when given. Resolves with the last event id seen.
 *
 * @throws ApiError when the stream is refused (404 before the stream exists, 401, 403).
 */
export async function readStream(
  api: Api,
  lastEventId: string | null,
  onOpen: () => void,
  onMessage: (message: StreamMessage) => void,
  signal: AbortSignal,
): Promise<string | null> {
  const headers: Record<string, string> = {
    authorization: `Bearer ${api.token}`,
    accept: "text/event-stream",
  };
  if (lastEventId !== null) headers["last-event-id"] = lastEventId;
  const response = await fetch(`${api.base}/v1/stream`, { headers, signal, cache: "no-store" });
  if (!response.ok || response.body === null) throw await errorOf(response);
  onOpen();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let lastId = lastEventId;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return lastId;
    buffer += value;
    // Events end with a blank line; a partial one waits for the next chunk.
    for (;;) {
      const end = buffer.search(/\r?\n\r?\n/);
      if (end < 0) break;
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
      const message = parseBlock(block);
      if (message === null) continue;
      if (message.id !== null) lastId = message.id;
      onMessage(message);
    }
  }
}

/** Parses one SSE block (comments, i.e. heartbeats, give null). */
export function parseBlock(block: string): StreamMessage | null {
  let id: string | null = null;
  let event = "message";
  const data: string[] = [];
  for (const line of block.split(/\r?\n/)) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "id") id = value;
    else if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  if (data.length === 0) return null;
  return { id, event, data: data.join("\n") };
}

/** Sums of the data plane's Prometheus counters the dashboard turns into rates, per service. */
export interface TrafficCounters {
  requests: number;
  errors: number;
  shed: number;
}

/**
 * Reads `homeostat_proxy_requests_total` (by result) and `homeostat_proxy_shed_total` from the
 * Prometheus text `/metrics` serves, summed per service.
 */
export function parseCounters(text: string): Map<string, TrafficCounters> {
  const out = new Map<string, TrafficCounters>();
  const line = /^(homeostat_proxy_requests_total|homeostat_proxy_shed_total)\{([^}]*)\}\s+([0-9.eE+-]+)/;
  for (const raw of text.split("\n")) {
    const match = line.exec(raw);
    if (match === null) continue;
    const labels = Object.fromEntries(
      [...match[2]!.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]),
    );
    const service = labels.service;
    if (service === undefined) continue;
    const value = Number(match[3]);
    const c = out.get(service) ?? { requests: 0, errors: 0, shed: 0 };
    if (match[1] === "homeostat_proxy_shed_total") c.shed += value;
    else {
      c.requests += value;
      // A 4xx is the client's doing and a shed request is counted as shed: neither is an error.
      if (!["ok", "client-error", "shed"].includes(labels.result ?? "")) c.errors += value;
    }
    out.set(service, c);
  }
  return out;
}
