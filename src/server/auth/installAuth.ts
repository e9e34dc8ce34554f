/**
 * Who may call the API, and the record of every change asked of it.
 *
 * - **Authentication.** Every route but the public ones (`/healthz`, `/openapi.json`, the
 *   dashboard's files) needs `Authorization: Bearer hs_…`: no token, or an unknown or revoked one,
 *   is 401 `HS_UNAUTHENTICATED`; a token whose role is weaker than the route's is 403
 *   `HS_FORBIDDEN`. The guard runs in `onRequest`, after the Host/Origin/JSON guards and before any
 *   body is read. A route registered without the {@link route} declaration fails closed: `viewer`
 *   to read, `admin` to change.
 * - **Audit.** Every POST, PUT, PATCH and DELETE, refused ones included (by a guard, the role check,
 *   the input schema or the handler), leaves one row in the store's audit table once answered.
 */

import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { HomeostatError } from "../../errors.ts";
import type { AuditLog, TokenStore } from "../../store/index.ts";
import { MUTATING_METHODS } from "../requestGuards.ts";
import {
  type Principal,
  principalOf,
  type RouteAccess,
  type RouteConfig,
  roleAllows,
  setPrincipal,
} from "../route.ts";
import { auditableBody, redactSecrets, redactText } from "./redact.ts";
import { hashToken, TOKEN_PATTERN } from "./tokens.ts";

/** What the auth guard reads and writes: the store's tokens and audit trail. */
export interface AuthDeps {
  store: { readonly tokens: TokenStore; readonly audit: AuditLog };
  /** Clock (tests); `Date.now` by default. */
  now?: () => number;
}

/** A token's `last_used_at` is written at most this often, not on every request. */
const TOUCH_INTERVAL_MS = 60_000;

/** Set on a request once its audit row is written (one row per change). */
const AUDITED = Symbol("homeostat.audited");

/** The error code of a refusal, read from the one error envelope every refusal uses. */
function errorCodeOf(payload: unknown): string | null {
  if (typeof payload !== "string") return null;
  try {
    const code = (JSON.parse(payload) as { error?: { code?: unknown } }).error?.code;
    return typeof code === "string" ? code : null;
  } catch {
    return null; // not JSON: no code to record
  }
}

function describe(request: FastifyRequest): string {
  return `${request.method} ${redactText(request.url.split("?")[0] ?? request.url)}`;
}

/**
 * The role a request's route needs. Declared routes say it; the not-found handler needs none (it
 * answers 404 to everybody); a route registered some other way fails closed.
 */
export function neededAccess(request: FastifyRequest): RouteAccess {
  const declared = (request.routeOptions.config as Partial<RouteConfig> | undefined)?.access;
  if (declared !== undefined) return declared;
  if (request.is404) return "public";
  return MUTATING_METHODS.has(request.method) ? "admin" : "viewer";
}

const HOW_TO =
  "send `Authorization: Bearer hs_…`: the homeostat CLI finds the admin token `homeostat up` wrote to <state dir>/admin-token (or takes --token / $HOMEOSTAT_TOKEN); `homeostat token create` makes more";

/** The principal a request's bearer token stands for; throws HS_UNAUTHENTICATED otherwise. */
function authenticate(request: FastifyRequest, tokens: TokenStore): Principal & { tokenId: number } {
  const header = request.headers.authorization;
  if (header === undefined || header.trim() === "") {
    throw new HomeostatError("HS_UNAUTHENTICATED", `${describe(request)} needs a token: ${HOW_TO}`);
  }
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (match === null) {
    throw new HomeostatError(
      "HS_UNAUTHENTICATED",
      `${describe(request)}: the Authorization header must be \`Bearer <token>\``,
    );
  }
  const secret = match[1] ?? "";
  if (TOKEN_PATTERN.test(secret)) {
    const hash = hashToken(secret);
    const token = tokens.byHash(hash);
    if (token !== null) return { tokenId: token.id, name: token.name, role: token.role };
    const revoked = tokens.anyByHash(hash);
    if (revoked?.revokedAt != null) {
      throw new HomeostatError(
        "HS_UNAUTHENTICATED",
        `${describe(request)}: token "${revoked.name}" was revoked at ${new Date(revoked.revokedAt).toISOString()}`,
        { details: { token: revoked.name, revokedAt: revoked.revokedAt } },
      );
    }
  }
  throw new HomeostatError(
    "HS_UNAUTHENTICATED",
    `${describe(request)}: the token is not valid (not one this controller issued): ${HOW_TO}`,
  );
}

/**
 * Installs the auth guard and the audit hook on `app`. Call it after `installRequestGuards`: a
 * request with a foreign Host or Origin is refused before its token is looked at.
 */
export function installAuth(app: FastifyInstance, deps: AuthDeps): void {
  const now = deps.now ?? Date.now;
  const touchedAt = new Map<number, number>();

  app.addHook("onRequest", async (request) => {
    const needed = neededAccess(request);
    if (needed === "public") return;
    const principal = authenticate(request, deps.store.tokens);
    setPrincipal(request, principal);
    const at = now();
    if (at - (touchedAt.get(principal.tokenId) ?? 0) >= TOUCH_INTERVAL_MS) {
      touchedAt.set(principal.tokenId, at);
      deps.store.tokens.touch(principal.tokenId, at);
    }
    if (principal.role === null || !roleAllows(principal.role, needed)) {
      throw new HomeostatError(
        "HS_FORBIDDEN",
        `${describe(request)} needs the ${needed} role; token "${principal.name}" has ${principal.role ?? "none"}`,
        { details: { needed, held: principal.role, token: principal.name } },
      );
    }
  });

  /**
   * The row is written when the answer is decided (`onSend`), not once it went out: a caller that
   * hangs up while its change runs must not leave that change unaudited ('finish' never comes for
   * a response whose socket is gone). `onResponse` catches an answer that skipped `onSend`.
   */
  const record = (request: FastifyRequest, reply: FastifyReply, payload: unknown): void => {
    const marks = request as unknown as Record<symbol, unknown>;
    if (marks[AUDITED] === true) return;
    marks[AUDITED] = true;
    const principal = principalOf(request);
    const body = request.body as Record<string, unknown> | undefined | null;
    const reason = body !== null && typeof body === "object" ? body.reason : undefined;
    try {
      deps.store.audit.append({
        at: now(),
        tokenId: principal.tokenId,
        tokenName: principal.name,
        role: principal.role,
        method: request.method,
        route: request.routeOptions.url ?? null,
        url: redactText(request.url),
        params: redactSecrets(request.params ?? {}),
        body: auditableBody(body),
        reason: typeof reason === "string" && reason !== "" ? redactText(reason).slice(0, 2000) : null,
        status: reply.statusCode,
        errorCode: reply.statusCode >= 400 ? errorCodeOf(payload) : null,
        durationMs: Math.round(reply.elapsedTime * 1000) / 1000,
      });
    } catch (error) {
      // The store closes on shutdown, possibly before the shutdown request's own row is written.
      process.emitWarning(
        `audit: could not record ${describe(request)} (${error instanceof Error ? error.message : String(error)})`,
      );
    }
  };

  app.addHook("onSend", async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    if (MUTATING_METHODS.has(request.method)) record(request, reply, payload);
    return payload;
  });

  app.addHook("onResponse", async (request, reply) => {
    if (MUTATING_METHODS.has(request.method)) record(request, reply, undefined);
  });
}
