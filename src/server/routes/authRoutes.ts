/**
 * Tokens and the audit trail over the API (admin only): list, create (the secret is answered once,
 * never again), revoke (not the last live admin token), and read the audit trail.
 */

import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { HomeostatError } from "../../errors.ts";
import type { AuthDeps } from "../auth/installAuth.ts";
import { issueToken, ROLES } from "../auth/tokens.ts";
import { principalOf, type Role, route } from "../route.ts";

const roleSchema = z.enum(ROLES as [Role, ...Role[]]);

/** A token as the API shows it: never its secret nor its hash. */
export const tokenSchema = z.object({
  id: z.number().int(),
  name: z.string(),
  role: roleSchema,
  createdAt: z.number().int(),
  createdBy: z.string(),
  revokedAt: z.number().int().nullable(),
  lastUsedAt: z.number().int().nullable(),
});

export const auditRecordSchema = z.object({
  id: z.number().int(),
  at: z.number().int(),
  tokenId: z.number().int().nullable(),
  tokenName: z.string(),
  role: z.string().nullable(),
  method: z.string(),
  route: z.string().nullable(),
  url: z.string(),
  params: z.unknown(),
  body: z.unknown(),
  reason: z.string().nullable(),
  status: z.number().int(),
  errorCode: z.string().nullable(),
  durationMs: z.number(),
});

/** What a client reads: a token (never its secret), an audit row. */
export type TokenAnswer = z.output<typeof tokenSchema>;
export type AuditAnswer = z.output<typeof auditRecordSchema>;

const createBody = z.object({ name: z.string().min(1).max(64), role: roleSchema }).strict();

/** Registers `/v1/tokens` and `/v1/audit` on `app`. */
export function registerAuthRoutes(app: FastifyInstance, deps: AuthDeps): void {
  const { tokens, audit } = deps.store;
  const now = deps.now ?? Date.now;

  route(app, {
    method: "GET",
    url: "/v1/tokens",
    summary: "List tokens (names, roles, dates; never a secret or its hash)",
    tag: "auth",
    access: "admin",
    query: z.object({ revoked: z.enum(["true", "false"]).optional() }).strict(),
    responses: { 200: { description: "The tokens", schema: z.object({ tokens: z.array(tokenSchema) }) } },
    handler: ({ query }) => ({ tokens: tokens.list({ includeRevoked: query.revoked === "true" }) }),
  });

  route(app, {
    method: "POST",
    url: "/v1/tokens",
    summary: "Create a token; its secret is in this answer only",
    tag: "auth",
    access: "admin",
    body: createBody,
    responses: {
      201: {
        description: "The token, and its secret (shown once: store it now)",
        schema: z.object({ token: tokenSchema, secret: z.string() }),
      },
    },
    handler: ({ body, request, reply }) => {
      const issued = issueToken(tokens, {
        name: body.name,
        role: body.role,
        createdBy: principalOf(request).name,
        at: now(),
      });
      return reply.status(201).send(issued);
    },
  });

  route(app, {
    method: "DELETE",
    url: "/v1/tokens/:id",
    summary: "Revoke a token (not the last live admin token)",
    tag: "auth",
    access: "admin",
    params: z.object({ id: z.coerce.number().int().min(1) }).strict(),
    responses: { 200: { description: "The token as revoked", schema: z.object({ token: tokenSchema }) } },
    handler: ({ params }) => {
      const result = tokens.revoke(params.id, now(), (token) =>
        token.role === "admin" && tokens.countLive("admin") <= 1
          ? `token "${token.name}" is the last live admin token: revoking it would leave nobody able to manage tokens. Create another admin token first (homeostat token create --name NAME --role admin)`
          : undefined,
      );
      if (result === null) throw new HomeostatError("HS_NOT_FOUND", `no live token ${params.id}`);
      if ("refused" in result) {
        throw new HomeostatError("HS_CONFLICT", result.refused, { details: { id: params.id } });
      }
      return { token: result };
    },
  });

  route(app, {
    method: "GET",
    url: "/v1/audit",
    summary: "The audit trail of changes asked of the API, refused ones included",
    tag: "auth",
    access: "admin",
    query: z
      .object({
        limit: z.coerce.number().int().min(1).max(10_000).default(100),
        after: z.coerce.number().int().min(0).optional(),
      })
      .strict(),
    responses: {
      200: {
        description: "Audit rows, oldest first",
        schema: z.object({ audit: z.array(auditRecordSchema) }),
      },
    },
    handler: ({ query }) => ({
      audit: audit.list({ limit: query.limit, ...(query.after === undefined ? {} : { after: query.after }) }),
    }),
  });
  route(app, {
    method: "GET",
    url: "/v1/whoami",
    summary: "Who the request's token is: its name and role",
    tag: "auth",
    access: "viewer",
    responses: {
      200: {
        description: "the token's name and role",
        schema: z.object({ name: z.string(), role: z.enum(ROLES).nullable() }),
      },
    },
    handler: ({ request }) => {
      const principal = principalOf(request);
      return { name: principal.name, role: principal.role };
    },
  });
}
