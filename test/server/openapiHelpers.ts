/**
 * Shared by the OpenAPI and fuzz tests: an ajv that checks an answer against the response schema
 * the served OpenAPI document declares for its route and status, and a raw HTTP client (node:http)
 * that can send what fetch refuses to (any Host, huge headers, broken bodies).
 */

import { request } from "node:http";
import { Ajv2020 } from "ajv/dist/2020.js";
import type { OpenApiDocument } from "../../src/server/openapi.ts";
import { demoFleetYaml, freePort, freePortRange, type Sandbox, withFastDeploys } from "../helpers/e2e.ts";

/**
 * A fleet file in `box`: `api` ×3 (zones a, b, c) behind a front port, releases v1 (running) and
 * v2, deploys fast enough for a test (two 1 s steps, 1 s soak, one request decides).
 */
export async function fleetWithTwoReleases(box: Sandbox): Promise<{ file: string; port: number }> {
  const basePort = await freePortRange(6);
  const port = await freePort();
  const yaml = withFastDeploys(
    demoFleetYaml({
      services: [{ name: "api", replicas: 3, basePort, port, releases: { v2: {} } }],
    }),
    { soak: "1s", minRequests: 1 },
  );
  return { file: box.file("fleet.yaml", yaml), port };
}

export interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

/**
 * One request exactly as given. `Content-Length` is set unless given. Resolves with the answer,
 * also when the server answered early and closed the socket while the body was still being sent.
 */
export function rawRequest(
  port: number,
  options: { method: string; path: string; headers?: Record<string, string>; body?: string | Buffer },
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const body = options.body ?? "";
    let settled = false;
    const req = request(
      {
        host: "127.0.0.1",
        port,
        method: options.method,
        path: options.path,
        headers: { "content-length": String(Buffer.byteLength(body)), ...options.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          settled = true;
          const text = Buffer.concat(chunks).toString("utf8");
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    req.on("error", (error: NodeJS.ErrnoException) => {
      // The server may answer (413, 431) and close while we still write: the answer counts.
      if (!settled && error.code !== "EPIPE" && error.code !== "ECONNRESET") reject(error);
      else if (!settled) setImmediate(() => settled || reject(error));
    });
    req.end(body);
  });
}

/** The JSON pointer (URI-fragment encoded) of `parts` in a document. */
export function pointerOf(parts: readonly string[]): string {
  return `/${parts.map((part) => encodeURIComponent(part.replaceAll("~", "~0").replaceAll("/", "~1"))).join("/")}`;
}

/** Where every schema of the document is: parameters, request bodies and answers. */
export function schemaPointers(document: OpenApiDocument): { where: string; pointer: string }[] {
  const out: { where: string; pointer: string }[] = [];
  for (const [path, item] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      const base = ["paths", path, method];
      (operation.parameters ?? []).forEach((p, i) => {
        out.push({
          where: `${method} ${path} ${p.in} ${p.name}`,
          pointer: pointerOf([...base, "parameters", String(i), "schema"]),
        });
      });
      for (const type of Object.keys(operation.requestBody?.content ?? {})) {
        out.push({
          where: `${method} ${path} body`,
          pointer: pointerOf([...base, "requestBody", "content", type, "schema"]),
        });
      }
      for (const [status, response] of Object.entries(operation.responses)) {
        for (const type of Object.keys(response.content ?? {})) {
          out.push({
            where: `${method} ${path} ${status}`,
            pointer: pointerOf([...base, "responses", status, "content", type, "schema"]),
          });
        }
      }
    }
  }
  return out;
}

/** `/v1/incidents/{id}` → a RegExp matching `/v1/incidents/12`. */
function pathPattern(path: string): RegExp {
  return new RegExp(`^${path.replace(/\{[^}]+\}/g, "[^/]+")}$`);
}

/** Checks answers against the response schemas of an OpenAPI document (ajv, JSON Schema 2020-12). */
export class ResponseChecker {
  readonly #ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  readonly #document: OpenApiDocument;

  constructor(document: OpenApiDocument) {
    this.#document = document;
    // The whole document under one id, so `#/components/schemas/X` refs resolve from any pointer.
    this.#ajv.addSchema(document as unknown as object, "openapi.json");
  }

  /** The documented path (`/v1/incidents/{id}`) a concrete path matches, or undefined. */
  pathOf(method: string, concrete: string): string | undefined {
    const path = concrete.split("?")[0] ?? concrete;
    const candidates = Object.keys(this.#document.paths).filter(
      (p) => pathPattern(p).test(path) && this.#document.paths[p]?.[method.toLowerCase()] !== undefined,
    );
    // A literal path beats a templated one (`/v1/faults` over `/v1/faults/{id}` never clash, but be exact).
    return candidates.find((p) => !p.includes("{")) ?? candidates[0];
  }

  /**
   * The problems with `answer` for `method path`: its status must be documented and its body
   * must match that status's schema. An empty list means it conforms.
   */
  check(method: string, path: string, answer: RawAnswer): string[] {
    const documented = this.pathOf(method, path);
    if (documented === undefined) return [`${method} ${path} is not in the document`];
    const operation = this.#document.paths[documented]![method.toLowerCase()]!;
    const response = operation.responses[String(answer.status)];
    if (response === undefined) return [`${method} ${path}: status ${answer.status} is not documented`];
    const [contentType, media] = Object.entries(response.content ?? {})[0] ?? [];
    if (contentType === undefined || media === undefined) return [];
    const got = String(answer.headers["content-type"] ?? "");
    if (!got.startsWith(contentType)) {
      return [`${method} ${path}: ${answer.status} came as ${got}, documented as ${contentType}`];
    }
    const pointer = pointerOf([
      "paths",
      documented,
      method.toLowerCase(),
      "responses",
      String(answer.status),
      "content",
      contentType,
      "schema",
    ]);
    const validate = this.#ajv.getSchema(`openapi.json#${pointer}`);
    if (validate === undefined) return [`${method} ${path}: no schema at ${pointer}`];
    const body = contentType.startsWith("application/json") ? answer.json : answer.text;
    if (validate(body)) return [];
    return (validate.errors ?? []).map(
      (e) =>
        `${method} ${path} ${answer.status}: ${e.instancePath || "(body)"} ${e.message} ${JSON.stringify(e.params)}`,
    );
  }
}
