/**
 * One error envelope for every refusal the API makes: `{ error: { code, message, details? } }`
 * with a code from the catalogue (src/errors.ts) and the HTTP status that code maps to.
 *
 * Errors reach a client from four places, and each is routed here:
 * - a handler or guard throws a {@link HomeostatError} (the common case);
 * - Fastify refuses a body (malformed JSON, too large, bad Content-Length) or a URL (bad escape,
 *   a path segment over `maxParamLength`): its `FST_ERR_*` errors are translated to catalogued codes;
 * - no route matches: 404 `HS_NOT_FOUND`, or 405 `HS_METHOD_NOT_ALLOWED` (with `Allow`) when the
 *   path names a route under another method;
 * - Node's HTTP parser refuses the request before Fastify sees it (headers over `maxHeaderSize`:
 *   a long URL counts too): the `clientError` handler writes the same envelope on the raw socket,
 *   414 when it was the request line that overflowed, 431 when it was the headers.
 */

import type { Socket } from "node:net";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { type ErrorCode, HomeostatError, httpStatusFor } from "../errors.ts";
import type { RequestGuard } from "./requestGuards.ts";
import { routesOf } from "./route.ts";

/** What every refused request gets, whatever refused it. */
export interface ErrorEnvelope {
  error: { code: ErrorCode; message: string; details?: unknown };
}

/** Largest request body (bytes): the largest legitimate body (a fault rule, weights) is under 1 KiB. */
export const BODY_LIMIT_BYTES = 1024 * 1024;
/** Longest request target (path and query) answered; longer gets 414 `HS_URI_TOO_LONG`. */
export const MAX_URL_LENGTH = 8 * 1024;
/** Longest path segment a route parameter may be (Fastify's `maxParamLength`). */
export const MAX_PARAM_LENGTH = 200;
/** Node's request-head limit (request line and headers, `maxHeaderSize`); over it: 414 or 431. */
export const MAX_HEADER_BYTES = 16 * 1024;

/** The envelope of a catalogued error. */
export function envelopeOf(error: HomeostatError): ErrorEnvelope {
  return {
    error: {
      code: error.code,
      message: error.message,
      ...(error.details === undefined ? {} : { details: error.details }),
    },
  };
}

/** `METHOD /path` for a message, the path cut at 100 characters (it may be what was too long). */
function describeRequest(request: FastifyRequest): string {
  const path = request.url.split("?")[0] ?? "";
  return `${request.method} ${path.length > 100 ? `${path.slice(0, 100)}…` : path}`;
}

/**
 * The catalogued error for anything thrown while serving a request: HomeostatErrors as they are,
 * Fastify's own refusals translated, anything else HS_INTERNAL.
 */
export function toHomeostatError(error: unknown, request?: FastifyRequest): HomeostatError {
  if (error instanceof HomeostatError) return error;
  const what = request === undefined ? "the request" : describeRequest(request);
  const code = (error as Partial<FastifyError> | null)?.code;
  switch (code) {
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return new HomeostatError(
        "HS_MALFORMED_JSON",
        `${what}: the body is not well-formed JSON (or it names __proto__ or constructor.prototype, which are refused)`,
      );
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return new HomeostatError(
        "HS_MALFORMED_JSON",
        `${what}: the body is empty but says it is JSON; send {} when there is nothing to say`,
      );
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new HomeostatError(
        "HS_BODY_TOO_LARGE",
        `${what}: the body is larger than ${BODY_LIMIT_BYTES} bytes, the most this API accepts`,
        { details: { limit: BODY_LIMIT_BYTES } },
      );
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new HomeostatError(
        "HS_NOT_JSON",
        `${what}: the body must be JSON (Content-Type: application/json)`,
      );
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return new HomeostatError(
        "HS_BAD_REQUEST",
        `${what}: the body's length is not the Content-Length it announced`,
      );
    case "FST_ERR_BAD_URL":
      return new HomeostatError("HS_BAD_REQUEST", `${what}: the URL is not valid (a bad %-escape?)`);
    case "FST_ERR_MAX_PARAM_LENGTH":
      return new HomeostatError(
        "HS_URI_TOO_LONG",
        `${what}: a path segment is longer than ${MAX_PARAM_LENGTH} characters, the most a name or id may be`,
        { details: { limit: MAX_PARAM_LENGTH } },
      );
  }
  const status = (error as Partial<FastifyError> | null)?.statusCode;
  const message = error instanceof Error ? error.message : String(error);
  if (typeof status === "number" && status >= 400 && status < 500) {
    return new HomeostatError("HS_BAD_REQUEST", `${what}: ${message}`);
  }
  return new HomeostatError("HS_INTERNAL", `${what}: ${message}`, { cause: error });
}

/** Sends `error` in the envelope, with the status its code maps to. */
export function sendError(reply: FastifyReply, error: HomeostatError): FastifyReply {
  return reply.status(httpStatusFor(error)).type("application/json; charset=utf-8").send(envelopeOf(error));
}

/** Fastify's `frameworkErrors` option: URL and routing refusals, in the envelope. */
export function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  void sendError(reply, toHomeostatError(error, request));
}

/** A request target over {@link MAX_URL_LENGTH} is refused (414) before anything else looks at it. */
export const urlLengthGuard: RequestGuard = (request) => {
  const length = request.raw.url?.length ?? 0;
  if (length <= MAX_URL_LENGTH) return;
  throw new HomeostatError(
    "HS_URI_TOO_LONG",
    `${describeRequest(request)}: the URL is ${length} characters long; the most this API answers is ${MAX_URL_LENGTH}`,
    { details: { length, limit: MAX_URL_LENGTH } },
  );
};

/** `/v1/services/:service/deploy` → a RegExp matching its paths. */
function patternOf(url: string): RegExp {
  const escaped = url
    .split("/")
    .map((part) =>
      part.startsWith(":") ? "[^/]+" : part === "*" ? ".*" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"),
    )
    .join("/");
  return new RegExp(`^${escaped}/?$`);
}

/**
 * Installs the error handler and the not-found handler on `app` (call before declaring routes;
 * the 405 check reads the routes declared with `route()` when a request comes).
 */
export function installErrorEnvelope(app: FastifyInstance): void {
  app.setErrorHandler((error, request, reply) => {
    void sendError(reply, toHomeostatError(error, request));
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split("?")[0] ?? "";
    const shown = path.length > 100 ? `${path.slice(0, 100)}…` : path;
    const allowed = [
      ...new Set(
        routesOf(app)
          .filter((r) => patternOf(r.url).test(path))
          .map((r) => r.method),
      ),
    ];
    if (allowed.length > 0) {
      void reply.header("allow", allowed.join(", "));
      void sendError(
        reply,
        new HomeostatError(
          "HS_METHOD_NOT_ALLOWED",
          `${request.method} is not a method of ${shown}; it takes ${allowed.join(", ")}`,
          { details: { method: request.method, allowed } },
        ),
      );
      return;
    }
    void sendError(reply, new HomeostatError("HS_NOT_FOUND", `no route ${request.method} ${shown}`));
  });
}

/** Where in the request head an overflow happened: past the request line (headers) or in it (the URL). */
function overflowCode(rawPacket: unknown): "HS_URI_TOO_LONG" | "HS_HEADERS_TOO_LARGE" {
  if (!Buffer.isBuffer(rawPacket)) return "HS_HEADERS_TOO_LARGE";
  const lineEnd = rawPacket.indexOf("\r\n");
  // No end of the request line in what was read, or a request line over the URL limit: the URL.
  return lineEnd === -1 || lineEnd > MAX_URL_LENGTH ? "HS_URI_TOO_LONG" : "HS_HEADERS_TOO_LARGE";
}

/**
 * Fastify's `clientErrorHandler`: Node's HTTP parser refused the request before any route could
 * (a request head over {@link MAX_HEADER_BYTES}, a malformed request line). Writes the envelope
 * on the socket and closes it, as Node's own handler would with a bare status line.
 */
export function clientErrorHandler(
  error: Error & { code?: string; rawPacket?: unknown },
  socket: Socket,
): void {
  if (error.code === "ECONNRESET" || socket.destroyed) return;
  let refusal: HomeostatError;
  if (error.code === "HPE_HEADER_OVERFLOW") {
    const code = overflowCode(error.rawPacket);
    refusal = new HomeostatError(
      code,
      code === "HS_URI_TOO_LONG"
        ? `the request's URL is too long: the request line and headers together may be at most ${MAX_HEADER_BYTES} bytes, and the URL at most ${MAX_URL_LENGTH} characters`
        : `the request's headers are too large: the request line and headers together may be at most ${MAX_HEADER_BYTES} bytes`,
      { details: { limit: MAX_HEADER_BYTES } },
    );
  } else if (error.code === "ERR_HTTP_REQUEST_TIMEOUT") {
    refusal = new HomeostatError("HS_BAD_REQUEST", "the request was not received in time");
  } else {
    refusal = new HomeostatError(
      "HS_BAD_REQUEST",
      `the request is not valid HTTP (${error.code ?? error.message})`,
    );
  }
  const body = JSON.stringify(envelopeOf(refusal));
  const status = httpStatusFor(refusal);
  if (socket.writable) {
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Bad Request"}\r\n` +
        "Connection: close\r\n" +
        "Content-Type: application/json; charset=utf-8\r\n" +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  } else {
    socket.destroy(error);
  }
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  408: "Request Timeout",
  414: "URI Too Long",
  431: "Request Header Fields Too Large",
};
