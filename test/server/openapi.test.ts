/**
 * The OpenAPI document served at /openapi.json: a valid OpenAPI 3.1 document, with every route
 * the API registers, the role each needs, and one Error envelope whose codes are the catalogue's.
 * The real API (buildApi, a real StateStore in a temp dir), listening on loopback.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv2020 } from "ajv/dist/2020.js";
import type { FastifyInstance } from "fastify";
import { ERROR_CODES } from "../../src/errors.ts";
import { buildApi } from "../../src/server/api.ts";
import { issueToken } from "../../src/server/auth/tokens.ts";
import { fastifyRoutesOf, type OpenApiDocument, openApiPath } from "../../src/server/openapi.ts";
import type { StatusDocument } from "../../src/server/statusView.ts";
import { StateStore } from "../../src/store/index.ts";
import { type RawAnswer, ResponseChecker, rawRequest, schemaPointers } from "./openapiHelpers.ts";

describe("GET /openapi.json", () => {
  let app: FastifyInstance;
  let port: number;
  let store: StateStore;
  let dir: string;
  let document: OpenApiDocument;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "homeostat-openapi-"));
    store = StateStore.open(dir);
    app = buildApi({
      store,
      status: () => ({}) as StatusDocument,
      shutdown: async () => {},
      auth: { store },
    });
    await app.listen({ host: "127.0.0.1", port: 0 });
    port = (app.server.address() as AddressInfo).port;
    // Public: no token. (The answer is parsed once; the tests below read it.)
    const answer = await rawRequest(port, {
      method: "GET",
      path: "/openapi.json",
      headers: { host: `127.0.0.1:${port}` },
    });
    assert.equal(answer.status, 200, answer.text);
    assert.match(String(answer.headers["content-type"]), /^application\/json/);
    document = answer.json as OpenApiDocument;
  });
  after(async () => {
    await app.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("is a valid OpenAPI 3.1 document (@seriousme/openapi-schema-validator)", async () => {
    const validator = new Validator();
    const result = await validator.validate(document as unknown as Record<string, unknown>);
    assert.deepEqual(result.errors, undefined, JSON.stringify(result.errors, null, 2));
    assert.equal(result.valid, true);
    assert.equal(validator.version, "3.1");
  });

  test("every schema in it compiles as JSON Schema 2020-12, refs resolved", () => {
    const ajv = new Ajv2020({ strict: false });
    ajv.addSchema(document as unknown as object, "openapi.json");
    let compiled = 0;
    for (const { where, pointer } of schemaPointers(document)) {
      // Compiled where it stands, so `#/components/schemas/…` refs resolve against the document.
      const validate = ajv.getSchema(`openapi.json#${pointer}`);
      assert.equal(typeof validate, "function", where);
      compiled++;
    }
    assert.ok(compiled > 60, `compiled ${compiled} schemas`);
  });

  test("every route Fastify registered is in it (none escaped route()), and nothing else is", () => {
    const registered = fastifyRoutesOf(app)
      .filter((r) => r.method !== "HEAD")
      .map((r) => `${r.method} ${openApiPath(r.url)}`);
    const documented = Object.entries(document.paths).flatMap(([path, item]) =>
      Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
    );
    assert.ok(registered.length >= 27, registered.join("\n"));
    assert.deepEqual([...new Set(registered)].sort(), [...new Set(documented)].sort());
  });

  test("each operation names its role (x-homeostat-role and in words), and the role table holds", () => {
    const role = (method: string, path: string) => document.paths[path]?.[method]?.["x-homeostat-role"];
    assert.equal(role("get", "/healthz"), "public");
    assert.equal(role("get", "/openapi.json"), "public");
    assert.equal(role("get", "/v1/status"), "viewer");
    assert.equal(role("get", "/metrics"), "viewer");
    assert.equal(role("put", "/v1/services/{service}/weights"), "operator");
    assert.equal(role("post", "/v1/faults"), "operator");
    assert.equal(role("delete", "/v1/faults/{id}"), "operator");
    assert.equal(role("post", "/v1/services/{service}/deploy"), "operator");
    assert.equal(role("post", "/v1/dataplane/restart"), "operator");
    assert.equal(role("post", "/v1/shutdown"), "admin");
    const rollback = document.paths["/v1/services/{service}/rollback"]?.post;
    assert.equal(rollback?.["x-homeostat-role"], "operator");
    assert.deepEqual(rollback?.["x-homeostat-elevated-role"], { role: "admin", when: "`force: true`" });
    assert.deepEqual(document.paths["/v1/failover"]?.post?.["x-homeostat-elevated-role"], {
      role: "admin",
      when: "`override: true`",
    });
    for (const [path, item] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        const access = operation["x-homeostat-role"];
        assert.ok(["public", "viewer", "operator", "admin"].includes(access), `${method} ${path}`);
        if (method === "get" && access !== "public") assert.notEqual(access, "operator", `${method} ${path}`);
        if (method !== "get") assert.notEqual(access, "viewer", `${method} ${path} changes something`);
        if (access === "public") {
          assert.deepEqual(operation.security, [], `${method} ${path}`);
          assert.match(operation.description, /Public: no token needed/);
        } else {
          assert.deepEqual(operation.security, [{ bearer: [] }], `${method} ${path}`);
          assert.match(operation.description, new RegExp(`\`${access}\` role`), `${method} ${path}`);
          assert.ok(operation.responses["401"], `${method} ${path} documents 401`);
        }
      }
    }
    assert.deepEqual(document.components.securitySchemes.bearer, {
      type: "http",
      scheme: "bearer",
      description: "An API token (`hs_…`): `homeostat token create`, or the admin token `up` wrote",
    });
  });

  test("every operation has params, query and body as declared, and answers with schemas", () => {
    const events = document.paths["/v1/events"]?.get;
    assert.deepEqual(
      events?.parameters?.map((p) => [p.name, p.in, p.required]),
      [
        ["after", "query", false],
        ["limit", "query", false],
        ["service", "query", false],
      ],
    );
    const incident = document.paths["/v1/incidents/{id}"]?.get;
    assert.deepEqual(
      incident?.parameters?.map((p) => [p.name, p.in, p.required]),
      [["id", "path", true]],
    );
    const fault = document.paths["/v1/faults"]?.post?.requestBody;
    assert.equal(fault?.required, true);
    const faultSchema = fault?.content["application/json"]?.schema as { additionalProperties?: unknown };
    assert.equal(faultSchema.additionalProperties, false, "unknown fields are refused, and documented so");
    for (const [path, item] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        const success = Object.entries(operation.responses).filter(([status]) => Number(status) < 400);
        assert.ok(success.length > 0, `${method} ${path} documents its answer`);
        for (const [status, response] of success) {
          assert.ok(response.content, `${method} ${path} ${status} has a schema`);
        }
        if (method !== "get") {
          assert.ok(operation.requestBody, `${method} ${path} documents its JSON body`);
          for (const status of ["413", "415"])
            assert.ok(operation.responses[status], `${method} ${path} ${status}`);
        }
      }
    }
  });

  test("errors: one Error envelope, its code enumerating the catalogue, referenced by every 4xx/5xx", () => {
    const error = document.components.schemas.Error as {
      required: string[];
      properties: { error: { required: string[]; properties: { code: { enum: string[] } } } };
    };
    assert.deepEqual(error.required, ["error"]);
    assert.deepEqual(error.properties.error.required, ["code", "message"]);
    assert.deepEqual(error.properties.error.properties.code.enum, Object.keys(ERROR_CODES));
    for (const code of [
      "HS_MALFORMED_JSON",
      "HS_BODY_TOO_LARGE",
      "HS_URI_TOO_LONG",
      "HS_HEADERS_TOO_LARGE",
    ]) {
      assert.ok(error.properties.error.properties.code.enum.includes(code), code);
    }
    for (const [path, item] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        const failures = Object.entries(operation.responses).filter(([status]) => Number(status) >= 400);
        assert.ok(failures.length >= 5, `${method} ${path}`);
        for (const [status, response] of failures) {
          assert.deepEqual(
            response.content?.["application/json"]?.schema,
            { $ref: "#/components/schemas/Error" },
            `${method} ${path} ${status}`,
          );
          assert.match(response.description, /^HS_[A-Z_]+(, HS_[A-Z_]+)*$/, `${method} ${path} ${status}`);
        }
      }
    }
  });

  test("the response checker the live tests use does catch answers that break the document", () => {
    const checker = new ResponseChecker(document);
    const answer = (status: number, json: unknown): RawAnswer => ({
      status,
      headers: { "content-type": "application/json; charset=utf-8" },
      text: JSON.stringify(json),
      json,
    });
    assert.deepEqual(checker.check("GET", "/v1/faults", answer(200, { faults: [] })), []);
    assert.notDeepEqual(checker.check("GET", "/v1/faults", answer(200, { faults: [{ id: 1 }] })), []);
    assert.notDeepEqual(
      checker.check("GET", "/v1/status", answer(200, { fleet: "test" })),
      [],
      "required fields",
    );
    assert.notDeepEqual(checker.check("GET", "/v1/faults", answer(299, {})), [], "an undocumented status");
    assert.deepEqual(
      checker.check(
        "GET",
        "/v1/incidents/7",
        answer(404, { error: { code: "HS_NOT_FOUND", message: "no incident 7" } }),
      ),
      [],
    );
    assert.notDeepEqual(
      checker.check("GET", "/v1/incidents/7", answer(404, { error: { code: "NOT_A_CODE", message: "x" } })),
      [],
      "an uncatalogued code",
    );
    assert.notDeepEqual(
      checker.check("GET", "/v1/incidents/7", answer(404, { message: "x" })),
      [],
      "another shape",
    );
  });

  test("a token is not needed for it, and a foreign Host is still refused", async () => {
    const foreign = await rawRequest(port, {
      method: "GET",
      path: "/openapi.json",
      headers: { host: "evil.example" },
    });
    assert.equal(foreign.status, 403);
    assert.equal((foreign.json as { error: { code: string } }).error.code, "HS_HOST_REFUSED");
  });

  test("the token-protected routes still refuse without a token (the document is the only public addition)", async () => {
    const { secret } = issueToken(store.tokens, {
      name: "viewer",
      role: "viewer",
      createdBy: "test",
      at: Date.now(),
    });
    const anonymous = await rawRequest(port, {
      method: "GET",
      path: "/v1/events",
      headers: { host: `127.0.0.1:${port}` },
    });
    assert.equal(anonymous.status, 401);
    const viewer = await rawRequest(port, {
      method: "GET",
      path: "/v1/events",
      headers: { host: `127.0.0.1:${port}`, authorization: `Bearer ${secret}` },
    });
    assert.equal(viewer.status, 200);
  });
});
