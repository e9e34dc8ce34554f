/**
 * No ambient authority: what a request must be before any route sees it.
 *
 * The API listens on loopback, and a browser on the same machine can reach loopback. Without these
 * checks any web page the operator opens could stop the fleet or move its traffic:
 *
 * - **DNS rebinding.** A page's own name can be made to resolve to 127.0.0.1; the browser then
 *   treats the API as that page's origin and lets it read and write. Its requests still carry the
 *   page's name in `Host`, so every request (reads too) whose `Host` is not the address the API is
 *   bound to is refused (`HS_HOST_REFUSED`, 403).
 * - **CSRF.** A page can send a `text/plain`, form or multipart body to any address without asking
 *   (a "simple" request: no CORS preflight). Every change (POST, PUT, PATCH, DELETE) therefore
 *   needs `Content-Type: application/json` (`HS_NOT_JSON`, 415; a change with nothing to say sends
 *   `{}`), and a change that carries an `Origin` other than the API's own is refused
 *   (`HS_ORIGIN_REFUSED`, 403).
 * - **No CORS.** The API sends no `Access-Control-*` header, so a browser lets no other origin read
 *   an answer or send a JSON body (its preflight gets a 405, or a 404 off a route's path).
 *
 * Each guard is a function that throws a catalogued {@link HomeostatError}; they run in order in
 * one `onRequest` hook, before any body is parsed. An authentication check (a token) slots in as
 * one more guard.
 */

import type { FastifyInstance, FastifyRequest } from "fastify";
import { HomeostatError } from "../errors.ts";

/** Methods that change something: these need a JSON body and no foreign `Origin`. */
export const MUTATING_METHODS: ReadonlySet<string> = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** A check of one request: returns when it may go on, throws a HomeostatError when refused. */
export type RequestGuard = (request: FastifyRequest) => void;

const LOOPBACK_ADDRESSES = new Set(["127.0.0.1", "::1", "::ffff:127.0.0.1"]);

/**
 * The `Host` values that name the address a connection reached: `127.0.0.1:PORT`, `localhost:PORT`
 * and `[::1]:PORT` on loopback, else the local address itself (`ADDRESS:PORT`). Port 80 may also
 * be left out, as browsers do.
 */
export function hostsFor(localAddress: string | undefined, port: number): string[] {
  const names =
    localAddress === undefined || LOOPBACK_ADDRESSES.has(localAddress)
      ? ["127.0.0.1", "localhost", "[::1]"]
      : [localAddress.includes(":") ? `[${localAddress}]` : localAddress];
  return names.flatMap((name) => (port === 80 ? [`${name}:${port}`, name] : [`${name}:${port}`]));
}

function allowedHosts(request: FastifyRequest): string[] {
  const socket = request.raw.socket;
  const port = socket.localPort;
  // No local port: not a TCP connection (never the case for the listening API): nothing matches.
  if (port === undefined) return [];
  return hostsFor(socket.localAddress, port);
}

function describe(request: FastifyRequest): string {
  return `${request.method} ${request.url.split("?")[0]}`;
}

/** `Host` must name the address the API is bound to (DNS rebinding). Every method. */
export const hostGuard: RequestGuard = (request) => {
  const host = request.headers.host?.toLowerCase();
  const allowed = allowedHosts(request);
  if (host !== undefined && allowed.includes(host)) return;
  throw new HomeostatError(
    "HS_HOST_REFUSED",
    `${describe(request)} with Host ${host === undefined ? "(none)" : `"${host}"`} refused: this API answers only to the address it listens on (${allowed.join(", ")}), so that a web page whose name was pointed at this machine (DNS rebinding) cannot use it`,
    { details: { host: host ?? null, allowed } },
  );
};

/** A change that carries an `Origin` must come from the API's own origin (CSRF). */
export const originGuard: RequestGuard = (request) => {
  if (!MUTATING_METHODS.has(request.method)) return;
  const origin = request.headers.origin;
  if (origin === undefined) return;
  // The API's own origin has its scheme: https when it serves TLS (`up --tls-cert`).
  const own = allowedHosts(request).map((host) => `${request.protocol}://${host}`);
  if (own.includes(origin.toLowerCase())) return;
  throw new HomeostatError(
    "HS_ORIGIN_REFUSED",
    `${describe(request)} from origin "${origin}" refused: changes are taken from the homeostat CLI and other local clients, not from a web page (CSRF)`,
    { details: { origin, allowed: own } },
  );
};

/** A change needs `Content-Type: application/json`, which a page cannot send unasked (CSRF). */
export const jsonBodyGuard: RequestGuard = (request) => {
  if (!MUTATING_METHODS.has(request.method)) return;
  const contentType = request.headers["content-type"];
  const mediaType = contentType?.split(";")[0]?.trim().toLowerCase();
  if (mediaType === "application/json") return;
  throw new HomeostatError(
    "HS_NOT_JSON",
    `${describe(request)} needs a JSON body (Content-Type: application/json; send {} when there is nothing to say), not ${contentType === undefined ? "no Content-Type" : `"${contentType}"`}: a web page can send text/plain and form bodies to any address without asking (CSRF), so they are refused`,
    { details: { contentType: contentType ?? null } },
  );
};

/** The guards every request passes, in order. */
export const DEFAULT_GUARDS: readonly RequestGuard[] = [hostGuard, originGuard, jsonBodyGuard];

/** Runs `guards` on every request (routes and the not-found handler), before its body is read. */
export function installRequestGuards(
  app: FastifyInstance,
  guards: readonly RequestGuard[] = DEFAULT_GUARDS,
): void {
  app.addHook("onRequest", async (request) => {
    for (const guard of guards) guard(request);
  });
}
