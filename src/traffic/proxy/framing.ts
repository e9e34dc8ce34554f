/**
 * Request framing checks: a request whose length can be read two ways is how request smuggling
 * starts (the proxy and the upstream disagree on where it ends). Node's parser (llhttp, strict
 * mode) already refuses most such requests and reports them as `clientError`; these checks cover
 * what it lets through and repeat the rest, so the guarantee does not depend on parser flags.
 */

import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";

/** Why a request's framing is refused, or null when it is unambiguous. */
export function framingProblem(req: IncomingMessage): string | null {
  const raw = req.rawHeaders;
  let contentLength: string | null = null;
  let transferEncodings = 0;
  let transferEncoding = "";
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === "host") hosts++;
    // Length first: the lower-casing (an allocation) only happens for the two candidates.
    if (name.length === 14 && name.toLowerCase() === "content-length") {
      const value = raw[i + 1]!;
      if (!isPlainDecimal(value)) return "content-length is not a plain decimal number";
      if (contentLength !== null && Number(contentLength) !== Number(value)) {
        return "several different content-length values";
      }
      contentLength = value;
    } else if (name.length === 17 && name.toLowerCase() === "transfer-encoding") {
      transferEncodings++;
      transferEncoding = raw[i + 1]!;
    }
  }
  // RFC 9112 §3.2: two Host headers name two targets.
  if (hosts > 1) return "several host headers";
  if (transferEncodings === 0) return null;
  if (contentLength !== null) return "both content-length and transfer-encoding";
  // RFC 9112 §6.1: an HTTP/1.0 message with transfer-encoding has faulty framing.
  if (req.httpVersionMajor === 1 && req.httpVersionMinor === 0)
    return "transfer-encoding in an HTTP/1.0 request";
  // Coding names are case-insensitive (RFC 9112 §7), but only plain `chunked` is accepted: a
  // list ("gzip, chunked") is a second reading of the length that an upstream may not share.
  if (transferEncodings > 1 || transferEncoding.trim().toLowerCase() !== "chunked") {
    return "transfer-encoding other than chunked";
  }
  return null;
}

function isPlainDecimal(value: string): boolean {
  if (value.length === 0 || value.length > 15) return false; // 15 digits stay exact as a double
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 48 || code > 57) return false;
  }
  return true;
}

/** Short reasons for the parser errors Node reports as `clientError` (llhttp codes). */
const PARSER_REASONS: Record<string, string> = {
  HPE_INVALID_CONTENT_LENGTH: "invalid content-length",
  HPE_UNEXPECTED_CONTENT_LENGTH: "several content-length headers",
  HPE_INVALID_TRANSFER_ENCODING: "invalid transfer-encoding",
  HPE_INVALID_CHUNK_SIZE: "invalid chunk size",
  HPE_INVALID_HEADER_TOKEN: "invalid header",
  HPE_INVALID_METHOD: "invalid method",
  HPE_INVALID_URL: "invalid request target",
  HPE_INVALID_VERSION: "invalid HTTP version",
  HPE_LF_EXPECTED: "bare LF where CRLF is required",
  HPE_CR_EXPECTED: "CR expected",
  HPE_INVALID_CONSTANT: "malformed request line",
};

/** Status and reason for a `clientError` from Node's parser. */
export function parserErrorResponse(error: NodeJS.ErrnoException): { status: number; reason: string } {
  const code = error.code ?? "";
  if (code === "HPE_HEADER_OVERFLOW") return { status: 431, reason: "request headers too large" };
  if (code === "ERR_HTTP_REQUEST_TIMEOUT" || code === "HPE_HEADERS_TIMEOUT") {
    return { status: 408, reason: "request not received in time" };
  }
  return { status: 400, reason: PARSER_REASONS[code] ?? "malformed request" };
}

/**
 * Answer a request the parser refused with a short reason and close the connection (Node's own
 * answer has no body; a silent close is worse: the client cannot tell a bug from a crash).
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  // A response already under way on this connection cannot be followed by another one.
  const inProgress = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (error.code === "ECONNRESET" || !socket.writable || inProgress?.headersSent) {
    socket.destroy();
    return;
  }
  const { status, reason } = parserErrorResponse(error);
  const body = `${JSON.stringify({ error: "bad-request", reason })}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Bad Request"}\r\n` +
      "content-type: application/json\r\n" +
      `content-length: ${Buffer.byteLength(body)}\r\n` +
      "connection: close\r\n\r\n" +
      body,
  );
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  408: "Request Timeout",
  431: "Request Header Fields Too Large",
};
