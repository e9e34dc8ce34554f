/**
 * The OpenAPI 3.1 document of the API, served at `GET /openapi.json` (public). Built from the
 * routes declared with `route()` (./route.ts): their zod schemas (the same ones that parse the
 * input and describe the answers) become JSON Schema with `z.toJSONSchema`, so the document cannot
 * drift from what the API does. Each operation names the role it needs (`x-homeostat-role` and its
 * description), the Bearer security scheme, and its error answers, all in the one `Error` envelope
 * whose `code` enumerates the catalogue (src/errors.ts).
 */

import { readFileSync } from "node:fs";
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { ERROR_CODES, type ErrorCode, HomeostatError, httpStatusFor } from "../errors.ts";
import { MUTATING_METHODS } from "./requestGuards.ts";
import { bodySchemaOf, type RouteSpec, route, routesOf } from "./route.ts";

type JsonSchema = Record<string, unknown>;

/** An OpenAPI 3.1 document (only what this module writes is typed). */
export interface OpenApiDocument {
  openapi: "3.1.0";
  info: { title: string; version: string; description: string };
  jsonSchemaDialect: string;
  tags: { name: string; description?: string }[];
  security: Record<string, string[]>[];
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: {
    securitySchemes: Record<string, unknown>;
    schemas: Record<string, JsonSchema>;
  };
}

export interface OpenApiOperation {
  operationId: string;
  summary: string;
  description: string;
  tags: string[];
  security: Record<string, string[]>[];
  "x-homeostat-role": string;
  "x-homeostat-elevated-role"?: { role: string; when: string };
  parameters?: {
    name: string;
    in: "path" | "query";
    required: boolean;
    schema: JsonSchema;
    description?: string;
  }[];
  requestBody?: { required: boolean; content: Record<string, { schema: JsonSchema }> };
  responses: Record<string, { description: string; content?: Record<string, { schema: JsonSchema }> }>;
}

const ERROR_REF = { $ref: "#/components/schemas/Error" };

const TAG_DESCRIPTIONS: Record<string, string> = {
  fleet: "Status, events, incidents, the action journal, shutdown",
  traffic: "The data plane: traffic state, weights, injected faults, metrics",
  releases: "Releases, deploys and rollbacks",
  failover: "Zones: shared fate, headroom, failover and failback",
  auth: "Tokens and the audit log",
  meta: "This document",
};

function packageVersion(): string {
  try {
    const text = readFileSync(new URL("../../package.json", import.meta.url), "utf8");
    return (JSON.parse(text) as { version?: string }).version ?? "0.0.0";
  } catch {
    return "0.0.0";
  }
}

/** The `Error` envelope schema: `code` is one of the catalogued codes. */
export function errorSchema(): JsonSchema {
  const codes = Object.keys(ERROR_CODES) as ErrorCode[];
  return {
    type: "object",
    description: "Every refusal and failure: one envelope, a catalogued code, a message for a person.",
    required: ["error"],
    additionalProperties: false,
    properties: {
      error: {
        type: "object",
        required: ["code", "message"],
        additionalProperties: false,
        properties: {
          code: {
            type: "string",
            enum: codes,
            description: codes.map((code) => `${code}: ${ERROR_CODES[code].summary}`).join("\n"),
          },
          message: { type: "string" },
          details: { description: "machine-readable context (offending fields, limits, …)" },
        },
      },
    },
  };
}

/** The catalogued codes an API answer with `status` can carry. */
function codesWithStatus(status: number): ErrorCode[] {
  return (Object.keys(ERROR_CODES) as ErrorCode[]).filter(
    (code) => httpStatusFor(new HomeostatError(code, "")) === status,
  );
}

/** The error statuses a route can answer, by who may call it and whether it changes anything. */
function errorStatuses(spec: RouteSpec): number[] {
  const statuses = new Set([400, 403, 404, 405, 414, 431, 500]);
  if (spec.access !== "public") statuses.add(401);
  if (MUTATING_METHODS.has(spec.method)) for (const s of [409, 413, 415]) statuses.add(s);
  if (spec.url.includes("/dataplane") || spec.method !== "GET") statuses.add(503);
  return [...statuses].sort((a, b) => a - b).filter((s) => codesWithStatus(s).length > 0);
}

/** Collects `$defs` from each converted schema into one component table, refs rewritten. */
class SchemaTable {
  readonly components: Record<string, JsonSchema> = {};

  convert(schema: z.ZodType, io: "input" | "output"): JsonSchema {
    const json = z.toJSONSchema(schema, {
      target: "draft-2020-12",
      io,
      unrepresentable: "any",
    }) as JsonSchema;
    const defs = (json.$defs ?? {}) as Record<string, JsonSchema>;
    delete json.$defs;
    delete json.$schema;
    for (const [id, def] of Object.entries(defs)) {
      const rewritten = rewriteRefs(def) as JsonSchema;
      const existing = this.components[id];
      if (existing !== undefined && JSON.stringify(existing) !== JSON.stringify(rewritten)) {
        // Two different schemas under one id (or one schema used both as input and output with
        // defaults): a programming error the document's test catches.
        throw new Error(`OpenAPI: two different schemas are named ${id}`);
      }
      this.components[id] = rewritten;
    }
    return rewriteRefs(json) as JsonSchema;
  }
}

function rewriteRefs(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(rewriteRefs);
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    out[key] =
      key === "$ref" && typeof inner === "string" && inner.startsWith("#/$defs/")
        ? `#/components/schemas/${inner.slice("#/$defs/".length)}`
        : rewriteRefs(inner);
  }
  return out;
}

/** `/v1/incidents/:id` → `/v1/incidents/{id}`; a trailing `*` → `{path}`. */
export function openApiPath(url: string): string {
  return url
    .split("/")
    .map((part) => (part.startsWith(":") ? `{${part.slice(1)}}` : part === "*" ? "{path}" : part))
    .join("/");
}

function operationId(spec: RouteSpec): string {
  const words = spec.url
    .split(/[/:*\-_.]+/)
    .filter((w) => w.length > 0)
    .map((w) => w[0]!.toUpperCase() + w.slice(1));
  return `${spec.method.toLowerCase()}${words.join("")}`;
}

function roleText(spec: RouteSpec): string {
  const base =
    spec.access === "public"
      ? "Public: no token needed."
      : `Needs a token with the \`${spec.access}\` role (or stronger).`;
  return spec.elevatesTo === undefined
    ? base
    : `${base} With ${spec.elevatesTo.when}: the \`${spec.elevatesTo.role}\` role.`;
}

function parametersOf(
  table: SchemaTable,
  schema: z.ZodType | undefined,
  where: "path" | "query",
): NonNullable<OpenApiOperation["parameters"]> {
  if (schema === undefined) return [];
  const json = table.convert(schema, "input");
  const properties = (json.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => {
    const { description, ...rest } = property;
    return {
      name,
      in: where,
      required: where === "path" || required.has(name),
      schema: rest,
      ...(typeof description === "string" ? { description } : {}),
    };
  });
}

/** Builds the document from the routes declared on `app` so far. */
export function buildOpenApi(app: FastifyInstance): OpenApiDocument {
  const table = new SchemaTable();
  const paths: OpenApiDocument["paths"] = {};
  const tags = new Set<string>();
  for (const spec of routesOf(app)) {
    tags.add(spec.tag);
    const parameters = [
      ...parametersOf(table, spec.params, "path"),
      ...parametersOf(table, spec.query, "query"),
    ];
    if (spec.url.endsWith("*") && !parameters.some((p) => p.name === "path")) {
      parameters.push({ name: "path", in: "path", required: true, schema: { type: "string" } });
    }
    const responses: OpenApiOperation["responses"] = {};
    for (const [status, answer] of Object.entries(spec.responses)) {
      const contentType = answer.contentType ?? "application/json";
      responses[status] = {
        description: answer.description,
        ...(answer.schema === undefined && answer.contentType === undefined
          ? {}
          : {
              content: {
                // A file (the dashboard's page and assets) has a media type and no JSON schema.
                [contentType]: {
                  schema: answer.schema === undefined ? {} : table.convert(answer.schema, "output"),
                },
              },
            }),
      };
    }
    for (const status of errorStatuses(spec)) {
      responses[String(status)] = {
        description: codesWithStatus(status).join(", "),
        content: { "application/json": { schema: ERROR_REF } },
      };
    }
    const body = bodySchemaOf(spec);
    const operation: OpenApiOperation = {
      operationId: operationId(spec),
      summary: spec.summary,
      description: [spec.description, roleText(spec)].filter((s) => s !== undefined).join("\n\n"),
      tags: [spec.tag],
      security: spec.access === "public" ? [] : [{ bearer: [] }],
      "x-homeostat-role": spec.access,
      ...(spec.elevatesTo === undefined ? {} : { "x-homeostat-elevated-role": spec.elevatesTo }),
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(body === undefined
        ? {}
        : {
            requestBody: {
              required: true,
              content: { "application/json": { schema: table.convert(body, "input") } },
            },
          }),
      responses,
    };
    const path = openApiPath(spec.url);
    paths[path] ??= {};
    paths[path][spec.method.toLowerCase()] = operation;
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Homeostat controller API",
      version: packageVersion(),
      description:
        "The controller's local API. Send `Authorization: Bearer <token>`; changes need a JSON body " +
        "(`Content-Type: application/json`, `{}` when there is nothing to say). Every error answers " +
        "with the `Error` envelope and a catalogued code. See docs/api.md.",
    },
    jsonSchemaDialect: "https://spec.openapis.org/oas/3.1/dialect/base",
    tags: [...tags].map((name) => ({
      name,
      ...(TAG_DESCRIPTIONS[name] === undefined ? {} : { description: TAG_DESCRIPTIONS[name] }),
    })),
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: {
        bearer: {
          type: "http",
          scheme: "bearer",
          description: "An API token (`hs_…`): `homeostat token create`, or the admin token `up` wrote",
        },
      },
      schemas: { Error: errorSchema(), ...table.components },
    },
  };
}

const FASTIFY_ROUTES = new WeakMap<FastifyInstance, { method: string; url: string }[]>();

/**
 * Records every route Fastify registers on `app` from now on, however it was declared (call it
 * first in buildApi), so a test can check that none escaped `route()` and the document.
 */
export function trackFastifyRoutes(app: FastifyInstance): void {
  const list: { method: string; url: string }[] = [];
  FASTIFY_ROUTES.set(app, list);
  app.addHook("onRoute", (options) => {
    const methods = Array.isArray(options.method) ? options.method : [options.method];
    for (const method of methods) list.push({ method: String(method), url: options.url ?? options.path });
  });
}

/** The routes Fastify registered on `app` since {@link trackFastifyRoutes} (HEAD ones included). */
export function fastifyRoutesOf(app: FastifyInstance): readonly { method: string; url: string }[] {
  return FASTIFY_ROUTES.get(app) ?? [];
}

/**
 * Declares `GET /openapi.json` on `app`. The document is built on first request, when every
 * route (those declared after this call included) is in the registry.
 */
export function openApiRoutes(app: FastifyInstance): void {
  let document: OpenApiDocument | undefined;
  route(app, {
    method: "GET",
    url: "/openapi.json",
    summary: "This API's OpenAPI 3.1 document",
    tag: "meta",
    access: "public",
    responses: {
      200: {
        description: "the OpenAPI document",
        schema: z.looseObject({ openapi: z.literal("3.1.0"), paths: z.record(z.string(), z.unknown()) }),
      },
    },
    handler: () => {
      document ??= buildOpenApi(app);
      return document;
    },
  });
}
