/**
 * Header rewriting in both directions: hop-by-hop headers describe one connection and must not
 * cross the proxy (RFC 9110 §7.6.1); forwarding headers tell the upstream who really asked.
 */

import type { IncomingMessage, OutgoingHttpHeaders } from "node:http";

/** Headers that only concern one connection, whatever the `connection` header says. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/**
 * Request headers we set ourselves (the client's copies are replaced or extended), and `expect`,
 * which Node already answered with `100 Continue` and which the upstream client refuses.
 */
const SET_BY_PROXY = new Set(["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "expect"]);

export const REQUEST_ID_HEADER = "x-request-id";
export const ATTEMPTS_HEADER = "x-homeostat-attempts";
export const INSTANCE_HEADER = "x-homeostat-instance";
export const SHED_HEADER = "x-homeostat-shed";
export const FAULT_HEADER = "x-homeostat-fault";
/** On an answer to a request that was hedged (a second attempt was sent), whichever attempt answered. */
export const HEDGED_HEADER = "x-homeostat-hedged";

/** Extra header names a `connection` header declares hop-by-hop (lower case), or null. */
function connectionNamed(connection: string | string[] | undefined): Set<string> | null {
  if (connection === undefined) return null;
  const text = Array.isArray(connection) ? connection.join(",") : connection;
  // The common values name no other header: no set to build.
  if (text === "keep-alive" || text === "close" || text === "Keep-Alive") return null;
  const names = new Set<string>();
  for (const token of text.split(",")) {
    const name = token.trim().toLowerCase();
    if (name !== "" && name !== "close" && name !== "keep-alive") names.add(name);
  }
  return names.size === 0 ? null : names;
}

/**
 * The headers to send upstream, as a flat `[name, value, …]` list in the client's order and
 * spelling: hop-by-hop ones dropped, `x-forwarded-*` set, `x-request-id` added when absent.
 * For an upgrade, `connection: upgrade` and `upgrade` are kept: they are the point.
 */
export function upstreamRequestHeaders(req: IncomingMessage, requestId: string, upgrade: boolean): string[] {
  const raw = req.rawHeaders;
  const named = connectionNamed(req.headers.connection);
  const out: string[] = [];
  let hasRequestId = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || SET_BY_PROXY.has(lower) || named?.has(lower)) continue;
    if (lower === REQUEST_ID_HEADER) hasRequestId = true;
    out.push(name, raw[i + 1]!);
  }
  if (upgrade) {
    out.push("connection", "upgrade", "upgrade", String(req.headers.upgrade ?? ""));
  }
  const client = req.socket.remoteAddress ?? "unknown";
  const previous = req.headers["x-forwarded-for"];
  out.push("x-forwarded-for", previous ? `${previous}, ${client}` : client);
  out.push("x-forwarded-proto", "http");
  if (req.headers.host !== undefined) out.push("x-forwarded-host", req.headers.host);
  if (!hasRequestId) out.push(REQUEST_ID_HEADER, requestId);
  return out;
}

/** The request's own `x-request-id`, if it has one. */
export function incomingRequestId(req: IncomingMessage): string | undefined {
  const value = req.headers[REQUEST_ID_HEADER];
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** The upstream response's headers as the client should get them: hop-by-hop ones dropped. */
export function clientResponseHeaders(
  upstream: Record<string, string | string[] | undefined>,
): OutgoingHttpHeaders {
  const named = connectionNamed(upstream.connection);
  const out: OutgoingHttpHeaders = {};
  for (const name in upstream) {
    if (HOP_BY_HOP.has(name) || named?.has(name)) continue;
    const value = upstream[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}
