/**
 * Answers the proxy gives itself (the upstream never produced them): small JSON bodies, and
 * `connection: close` whenever the client's request body was not read, so that an unread body is
 * never parsed as the next request and never has to be read just to be thrown away.
 */

import type { ServerResponse } from "node:http";
import type { Criticality, ShedReason } from "../contracts.ts";
import { ATTEMPTS_HEADER, HEDGED_HEADER, REQUEST_ID_HEADER, SHED_HEADER } from "./headers.ts";

export function sendJson(
  res: ServerResponse,
  status: number,
  body: object,
  headers: Record<string, string | number>,
  closeConnection: boolean,
): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const text = `${JSON.stringify(body)}\n`;
  res.statusCode = status;
  for (const name in headers) res.setHeader(name, headers[name]!);
  res.setHeader("content-type", "application/json");
  res.setHeader("content-length", Buffer.byteLength(text));
  res.setHeader("cache-control", "no-store");
  if (closeConnection) res.setHeader("connection", "close");
  res.end(text);
}

/** 400 for a request whose framing is ambiguous: the connection cannot be trusted past it. */
export function sendBadFraming(res: ServerResponse, reason: string): void {
  sendJson(res, 400, { error: "bad-request", reason }, {}, true);
}

/**
 * 503 from admission control or the failover shedding gate: the client should come back after
 * `retry-after` seconds.
 */
export function sendShed(
  res: ServerResponse,
  rejection: { reason: ShedReason; retryAfterSeconds: number },
  criticality: Criticality,
  requestId: string,
  closeConnection: boolean,
): void {
  sendJson(
    res,
    503,
    { error: "shed", reason: rejection.reason, criticality },
    {
      "retry-after": Math.max(1, Math.ceil(rejection.retryAfterSeconds)),
      [SHED_HEADER]: rejection.reason,
      [REQUEST_ID_HEADER]: requestId,
    },
    closeConnection,
  );
}

/** 503 when no endpoint can take the request. */
export function sendNoUpstream(
  res: ServerResponse,
  reason: "no-endpoints" | "all-ejected",
  requestId: string,
  closeConnection: boolean,
): void {
  sendJson(
    res,
    503,
    { error: "no-upstream", reason },
    { "retry-after": 1, [SHED_HEADER]: "no-upstream", [REQUEST_ID_HEADER]: requestId },
    closeConnection,
  );
}

/** One failed attempt, as the client sees it in a 502/504 body. */
export interface AttemptSummary {
  instance: string;
  outcome: string;
  status?: number;
}

/** 502 (504 when the last failure was a timeout) after every attempt failed without a response; `hedged`: a hedge was sent. */
export function sendUpstreamFailure(
  res: ServerResponse,
  status: 502 | 504,
  attempts: AttemptSummary[],
  requestId: string,
  closeConnection: boolean,
  hedged = false,
): void {
  const headers: Record<string, string | number> = {
    [ATTEMPTS_HEADER]: attempts.length,
    [REQUEST_ID_HEADER]: requestId,
  };
  if (hedged) headers[HEDGED_HEADER] = 1;
  sendJson(
    res,
    status,
    { error: status === 504 ? "upstream-timeout" : "upstream-failed", attempts },
    headers,
    closeConnection,
  );
}
