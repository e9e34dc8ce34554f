/**
 * One way to declare an API route: its method and URL, who may call it, the zod schemas of its
 * params, query, body and answers, and its handler. Declaring it here registers it with Fastify
 * and in a per-app registry, so the OpenAPI document (`/openapi.json`), the role each route needs
 * (checked by the auth guard) and the input parsing come from the same source, and cannot drift.
 */

import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { HomeostatError } from "../errors.ts";

/** Who may call a route: `viewer` reads, `operator` acts, `admin` manages tokens and forces. */
export type Role = "viewer" | "operator" | "admin";

/** `public`: no token (liveness, the OpenAPI document, the dashboard's files). */
export type RouteAccess = Role | "public";

const ROLE_RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

/** True when `held` may do what `needed` may. */
export function roleAllows(held: Role, needed: Role): boolean {
  return ROLE_RANK[held] >= ROLE_RANK[needed];
}

/** Who a request was authenticated as (set by the auth guard before any handler runs). */
export interface Principal {
  /** The token's id, or null for a request that needed none. */
  tokenId: number | null;
  /** The token's name ("admin", "ci-bot", …), or "anonymous". */
  name: string;
  role: Role | null;
}

const PRINCIPAL = Symbol("homeostat.principal");

/** Records who the request is from (the auth guard calls this). */
export function setPrincipal(request: FastifyRequest, principal: Principal): void {
  (request as unknown as Record<symbol, Principal>)[PRINCIPAL] = principal;
}

/** Who the request is from; "anonymous" when no guard authenticated it. */
export function principalOf(request: FastifyRequest): Principal {
  return (
    (request as unknown as Record<symbol, Principal | undefined>)[PRINCIPAL] ?? {
      tokenId: null,
      name: "anonymous",
      role: null,
    }
  );
}

/**
 * Throws HS_FORBIDDEN unless the request's principal holds `needed`. Routes whose role depends on
 * the body (a forced rollback needs `admin`) call it through {@link RouteSpec.elevate}.
 */
export function assertRole(request: FastifyRequest, needed: Role, what: string): void {
  const principal = principalOf(request);
  if (principal.role !== null && roleAllows(principal.role, needed)) return;
  throw new HomeostatError(
    "HS_FORBIDDEN",
    `${what} needs the ${needed} role; token "${principal.name}" has ${principal.role ?? "none"}`,
    { details: { needed, held: principal.role, token: principal.name } },
  );
}

export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/** What a handler receives: the parsed params, query and body, and the raw request and reply. */
export interface RouteInput<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  request: FastifyRequest;
  reply: FastifyReply;
}

export interface RouteSpec<P = unknown, Q = unknown, B = unknown> {
  method: HttpMethod;
  /** Fastify syntax: `/v1/services/:service/deploy`. */
  url: string;
  /** One line for the OpenAPI document and `--help`-like listings. */
  summary: string;
  /** The role the route needs before its body is read (`public`: none). */
  access: RouteAccess;
  /**
   * A stronger role the parsed input calls for (a forced rollback, an override failover need
   * `admin`), with what it is called in the refusal; undefined when `access` is enough.
   */
  elevate?: (input: { params: P; query: Q; body: B }) => { role: Role; what: string } | undefined;
  /** What {@link elevate} does, for the OpenAPI document: the role, and when (`"force: true"`). */
  elevatesTo?: { role: Role; when: string };
  /** Longer text for the OpenAPI document (the summary is one line). */
  description?: string;
  params?: z.ZodType<P>;
  query?: z.ZodType<Q>;
  body?: z.ZodType<B>;
  /** Answers by status (2xx/3xx), each with its schema; errors use the one envelope, added for you. */
  responses: Record<number, { description: string; schema?: z.ZodType; contentType?: string }>;
  /** OpenAPI tag (a group: "fleet", "releases", "failover", "traffic", "auth", …). */
  tag: string;
  handler(input: RouteInput<P, Q, B>): unknown;
}

/** Route configuration as Fastify keeps it (`request.routeOptions.config`). */
export interface RouteConfig {
  access: RouteAccess;
}

const REGISTRY = new WeakMap<FastifyInstance, RouteSpec<unknown, unknown, unknown>[]>();

/** The routes declared on `app` with {@link route}, in declaration order. */
export function routesOf(app: FastifyInstance): readonly RouteSpec<unknown, unknown, unknown>[] {
  return REGISTRY.get(app) ?? [];
}

/** The access a request's route declared; `public` for the not-found handler (it says 404 to all). */
export function accessOf(request: FastifyRequest): RouteAccess {
  const config = request.routeOptions.config as Partial<RouteConfig> | undefined;
  return config?.access ?? "public";
}

/**
 * Parses `value` with `schema`; a failure is HS_BAD_REQUEST naming `where` (params, query, body)
 * and each offending field.
 */
export function parseInput<T>(schema: z.ZodType<T> | undefined, value: unknown, where: string): T {
  if (schema === undefined) return value as T;
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const message = parsed.error.issues
    .map((issue) => `${where}${issue.path.length > 0 ? `.${issue.path.join(".")}` : ""}: ${issue.message}`)
    .join("; ");
  throw new HomeostatError("HS_BAD_REQUEST", message, {
    details: { in: where, issues: parsed.error.issues.map((i) => ({ path: i.path, message: i.message })) },
  });
}

const NO_BODY = z.object({}).strict();
const CHANGES: ReadonlySet<HttpMethod> = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/**
 * The body schema a route parses with: its own, or for a change that declares none `{}` and
 * nothing else (an unknown field is refused, never silently ignored); none for a read.
 */
export function bodySchemaOf(spec: RouteSpec): z.ZodType | undefined {
  return spec.body ?? (CHANGES.has(spec.method) ? NO_BODY : undefined);
}

/** Declares a route on `app` (see {@link RouteSpec}). */
export function route<P, Q, B>(app: FastifyInstance, spec: RouteSpec<P, Q, B>): void {
  const list = REGISTRY.get(app) ?? [];
  list.push(spec as RouteSpec<unknown, unknown, unknown>);
  REGISTRY.set(app, list);
  const config: RouteConfig = { access: spec.access };
  const bodySchema = bodySchemaOf(spec as RouteSpec);
  app.route({
    method: spec.method,
    url: spec.url,
    config,
    handler: async (request, reply) => {
      const params = parseInput(spec.params, request.params ?? {}, "params");
      const query = parseInput(spec.query, request.query ?? {}, "query");
      // No body at all (a read) is `{}`; a JSON `null` is a body, and not an object: refused.
      const body = parseInput(
        bodySchema as z.ZodType<B> | undefined,
        request.body === undefined ? {} : request.body,
        "body",
      );
      const needed = spec.elevate?.({ params, query, body });
      if (needed !== undefined) assertRole(request, needed.role, needed.what);
      return await spec.handler({ params, query, body, request, reply });
    },
  });
}
