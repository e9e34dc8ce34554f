/**
 * Malformed requests against every route that changes something, on a real controller: bad JSON,
 * bodies that are not objects, wrong types, unknown fields, huge bodies, deep nesting, wrong
 * content types, huge URLs and headers, bad escapes, unknown ids, wrong methods, no token. Drawn
 * from a seeded generator (a failure names its seed and case, and replays). Every answer must be
 * a 4xx in the one envelope with a catalogued code and the status that code maps to, as the
 * OpenAPI document says; the controller must keep answering /healthz; and nothing may change:
 * the same events, journal, incidents, tokens, faults, weights, rollouts, zone shares and status.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { ERROR_CODES, type ErrorCode, HomeostatError, httpStatusFor } from "../../src/errors.ts";
import type { OpenApiDocument } from "../../src/server/openapi.ts";
import { readyStatus, sandboxesCleanedAfter } from "../helpers/e2e.ts";
import { seededRandom } from "../helpers/seededRandom.ts";
import { waitFor } from "../helpers/waitFor.ts";
import { fleetWithTwoReleases, type RawAnswer, ResponseChecker, rawRequest } from "./openapiHelpers.ts";

const newSandbox = sandboxesCleanedAfter();

const SEED = Number(process.env.FUZZ_SEED ?? 20261206);
/** Cases per mutating route. */
const CASES = Number(process.env.FUZZ_CASES ?? 40);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonSchema = {
  type?: string | string[];
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  $ref?: string;
} & Record<string, unknown>;

/** A well-formed body per route, to be broken one way at a time (never sent as is). */
const VALID_BODIES: Record<string, Record<string, Json>> = {
  "PUT /v1/services/{service}/weights": { weights: { v1: 1 } },
  "POST /v1/dataplane/restart": { reason: "fuzz" },
  "POST /v1/faults": { service: "api", fault: { kind: "latency", ms: 5 } },
  "DELETE /v1/faults/{id}": {},
  "DELETE /v1/faults": {},
  "POST /v1/services/{service}/deploy": { version: "v2" },
  "POST /v1/services/{service}/rollback": { to: "v1", reason: "fuzz" },
  "POST /v1/failover": { domain: "zone-a", reason: "fuzz" },
  "POST /v1/failback": { domain: "zone-a", reason: "fuzz" },
  "POST /v1/shutdown": {},
  "POST /v1/pause": { reason: "fuzz" },
  "POST /v1/resume": { reason: "fuzz" },
  "POST /v1/instances/{instance}/restart": { reason: "fuzz" },
  "POST /v1/stores/{store}/switchover": { reason: "fuzz" },
  "POST /v1/tokens": { name: "fuzz", role: "viewer" },
  "DELETE /v1/tokens/{id}": {},
  "POST /v1/apply": { text: "version: 1\nname: fuzz\n", file: "fleet.yaml", reason: "fuzz", dryRun: true },
};

/** Path parameters that name nothing (an unknown id) or that a route refuses before looking. */
const UNKNOWN_IDS = ["nope", "999999", "0", "-1", "1e9", "%20", "a%2Fb", "..", "x".repeat(150)];

interface Case {
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string | Buffer;
}

/** The JSON types a schema admits (`$ref`s are objects here: every named schema is one). */
function typesOf(schema: JsonSchema): Set<string> {
  const out = new Set<string>();
  if (schema.$ref !== undefined) out.add("object");
  if (typeof schema.type === "string") out.add(schema.type);
  if (Array.isArray(schema.type)) for (const t of schema.type) out.add(t);
  for (const inner of [...(schema.anyOf ?? []), ...(schema.oneOf ?? [])])
    for (const t of typesOf(inner)) out.add(t);
  if (out.has("integer")) out.add("number");
  if (out.has("number")) out.add("integer");
  return out;
}

function makeGenerator(random: () => number) {
  const int = (n: number) => Math.floor(random() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const word = () =>
    Array.from({ length: 1 + int(12) }, () => pick([..."abcdefghijklmnopqrstuvwxyz_$-09ÄΩ😀"])).join("");
  const valueOfType = (type: string): Json => {
    switch (type) {
      case "string":
        return pick(["", word(), "v999", "\u0000", "a".repeat(300)]);
      case "number":
      case "integer":
        return pick([0, -1, 1.5, 1e308, -0, 42]);
      case "boolean":
        return pick([true, false]);
      case "null":
        return null;
      case "array":
        return pick([[], [1, "x"], [{}]]);
      default:
        return pick([{}, { [word()]: word() }, { kind: "nope" }]);
    }
  };
  /** A value whose JSON type the schema does not admit. */
  const wrongValue = (schema: JsonSchema): Json => {
    const allowed = typesOf(schema);
    const others = ["string", "number", "boolean", "null", "array", "object"].filter((t) => !allowed.has(t));
    return valueOfType(pick(others.length > 0 ? others : ["array"]));
  };
  const deep = (depth: number, array: boolean) =>
    array ? "[".repeat(depth) + "]".repeat(depth) : `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;

  return {
    int,
    pick,
    word,
    /** One malformed request to `method path` (`path` documented, `{param}`s filled with `fill`). */
    make(
      method: string,
      documented: string,
      fill: (documented: string) => string,
      valid: Record<string, Json>,
      bodySchema: JsonSchema | undefined,
      baseHeaders: Record<string, string>,
    ): Case {
      const json: Record<string, string> = { ...baseHeaders, "content-type": "application/json" };
      const path = fill(documented);
      const properties = Object.entries((bodySchema?.properties ?? {}) as Record<string, JsonSchema>);
      const kinds = [
        "bad-json",
        "not-an-object",
        "unknown-field",
        "wrong-type",
        "proto",
        "huge-body",
        "deep-nesting",
        "content-type",
        "no-body",
        "huge-url",
        "overflowing-url",
        "huge-headers",
        "bad-escape",
        "wrong-method",
        "no-token",
        "bad-token",
        ...(documented.includes("{") ? ["unknown-id"] : []),
      ];
      const kind = pick(kinds);
      const send = (body: string | Buffer, headers = json, at = path): Case => ({
        kind,
        method,
        path: at,
        headers,
        body,
      });
      switch (kind) {
        case "bad-json":
          return send(
            pick([
              "{",
              '{"a":}',
              "{'a': 1}",
              '{"a": NaN}',
              '{"a": undefined}',
              '{"a": 1,}',
              `${JSON.stringify(valid)} trailing`,
              JSON.stringify(valid).slice(0, -1),
              "/* c */ {}",
              "\u00ff\u00fe{",
              Buffer.from([0xff, 0xfe, 0x00, 0x7b]).toString("latin1"),
            ]),
          );
        case "not-an-object":
          return send(JSON.stringify(pick<Json>([null, 0, 42, "{}", true, [], [valid], ""])));
        case "unknown-field": {
          let name = word();
          while (name in valid) name = `${name}x`;
          return send(
            JSON.stringify({ ...valid, [name]: valueOfType(pick(["string", "number", "object"])) }),
          );
        }
        case "wrong-type": {
          if (properties.length === 0) return send(JSON.stringify({ [word()]: 1 }));
          const [name, schema] = pick(properties);
          return send(JSON.stringify({ ...valid, [name]: wrongValue(schema) }));
        }
        case "proto":
          return send(
            pick([
              `{"__proto__": {"admin": true}, ${JSON.stringify(valid).slice(1)}`,
              `{"constructor": {"prototype": {"x": 1}}, ${JSON.stringify(valid).slice(1)}`,
            ]).replace(", }", "}"),
          );
        case "huge-body":
          return send(JSON.stringify({ ...valid, padding: "x".repeat(1024 * 1024 + int(4096)) }));
        case "deep-nesting":
          return send(deep(1_000 + int(20_000), random() < 0.5));
        case "content-type":
          return send(JSON.stringify(valid), {
            ...baseHeaders,
            "content-type": pick([
              "text/plain",
              "text/plain;charset=UTF-8",
              "application/x-www-form-urlencoded",
              "multipart/form-data; boundary=x",
              "application/jsonx",
              "application/json-patch+json",
              "application/xml",
              "",
            ]),
          });
        case "no-body":
          return send("");
        case "huge-url":
          return send(JSON.stringify(valid), json, `${path}?q=${"a".repeat(8_200 + int(4_000))}`);
        case "overflowing-url":
          // Over Node's 16 KiB request-head limit: refused by the HTTP parser, before Fastify.
          return send(JSON.stringify(valid), json, `${path}?q=${"a".repeat(17_000 + int(8_000))}`);
        case "huge-headers":
          return send(JSON.stringify(valid), { ...json, "x-junk": "h".repeat(17_000 + int(8_000)) });
        case "bad-escape":
          return send(JSON.stringify(valid), json, `${path}${pick(["/%zz", "%", "/%E0%A4%A"])}`);
        case "wrong-method":
          return {
            ...send(JSON.stringify(valid)),
            method: pick(["PATCH", "PUT", "POST", "DELETE"].filter((m) => m !== method)),
          };
        case "no-token": {
          const { authorization: _, ...rest } = json;
          return send(JSON.stringify(valid), rest);
        }
        case "bad-token":
          return send(JSON.stringify(valid), {
            ...json,
            authorization: pick([
              "Bearer hs_short",
              `Bearer hs_${"A".repeat(43)}`,
              "Basic abc",
              "Bearer",
              "hs_x",
            ]),
          });
        default: {
          // unknown-id: a params value that names nothing, with a well-formed body.
          const unknown = documented.replace(/\{[^}]+\}/g, () => pick(UNKNOWN_IDS));
          return send(JSON.stringify(valid), json, unknown);
        }
      }
    },
  };
}

/** What must not change: the store's records and the fleet as the API reports them. */
async function snapshot(get: (path: string) => Promise<unknown>): Promise<Record<string, unknown>> {
  const status = (await get("/v1/status")) as {
    services: {
      name: string;
      release: string;
      runningReleases: string[];
      replicas: number;
      ready: number;
      state: string;
      instances: {
        name: string;
        pid: number | null;
        release: string | null;
        state: string;
        startedAt: number | null;
      }[];
    }[];
    openIncidents: number;
  };
  const events = (await get("/v1/events?limit=10000")) as { events: { seq: number }[] };
  const traffic = (await get("/v1/traffic")) as { services: Record<string, { weights: unknown }> };
  const releases = (await get("/v1/services/api/releases")) as { active: string; rollouts: unknown[] };
  const failover = (await get("/v1/failover")) as {
    zones: { zone: string; share: number; shift: unknown }[];
  };
  // Which tokens exist and whether revoked (not when last used: using one is not a change).
  const tokens = (await get("/v1/tokens?revoked=true")) as {
    tokens: { id: number; name: string; role: string; revokedAt: number | null }[];
  };
  return {
    events: events.events.length,
    lastEvent: events.events.at(-1)?.seq ?? 0,
    journal: ((await get("/v1/journal?limit=10000")) as { journal: unknown[] }).journal,
    incidents: ((await get("/v1/incidents?limit=10000")) as { incidents: unknown[] }).incidents,
    faults: ((await get("/v1/faults")) as { faults: unknown[] }).faults,
    tokens: tokens.tokens.map((t) => ({ id: t.id, name: t.name, role: t.role, revokedAt: t.revokedAt })),
    // Spec revisions: a refused apply records none.
    revisions: (await get("/v1/revisions")) as unknown,
    weights: Object.fromEntries(Object.entries(traffic.services).map(([name, s]) => [name, s.weights])),
    active: releases.active,
    rollouts: releases.rollouts,
    zones: failover.zones.map((z) => ({ zone: z.zone, share: z.share, shift: z.shift })),
    openIncidents: status.openIncidents,
    services: status.services.map((s) => ({
      name: s.name,
      release: s.release,
      runningReleases: s.runningReleases,
      replicas: s.replicas,
      ready: s.ready,
      state: s.state,
      instances: s.instances.map((i) => ({
        name: i.name,
        pid: i.pid,
        release: i.release,
        state: i.state,
        startedAt: i.startedAt,
      })),
    })),
  };
}

test(`malformed requests to every mutating route: 4xx in the envelope, controller up, nothing changed (seed ${SEED})`, async () => {
  const box = await newSandbox();
  const { file } = await fleetWithTwoReleases(box);
  box.up(file);
  await readyStatus(box, 3, () => true, 60_000);
  const host = `127.0.0.1:${box.apiPort}`;
  const auth = { host, authorization: `Bearer ${box.token()}` };
  const get = async (path: string): Promise<unknown> => {
    const answer = await rawRequest(box.apiPort, { method: "GET", path, headers: auth });
    assert.equal(answer.status, 200, `GET ${path}: ${answer.text.slice(0, 300)}`);
    return answer.json;
  };
  const document = (await get("/openapi.json")) as OpenApiDocument;
  const checker = new ResponseChecker(document);

  const mutating = Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => method !== "get")
      .map(([method, operation]) => ({
        method: method.toUpperCase(),
        path,
        body: operation.requestBody?.content["application/json"]?.schema as JsonSchema | undefined,
      })),
  );
  // The generator knows a well-formed body for each: a new mutating route must be added here.
  assert.deepEqual(
    mutating.map((r) => `${r.method} ${r.path}`).filter((key) => VALID_BODIES[key] === undefined),
    [],
  );

  // A quiet fleet first: no incident still open (a start that met a busy port closes later), no
  // action pending, so that whatever changes below was caused by a request.
  await waitFor(
    async () => {
      const status = (await get("/v1/status")) as { openIncidents: number };
      const pending = (await get("/v1/journal?pending=true")) as { journal: unknown[] };
      return status.openIncidents === 0 && pending.journal.length === 0;
    },
    { timeoutMs: 60_000, what: "no open incident and no pending action" },
  );
  const before = await snapshot(get);
  const random = seededRandom(SEED);
  const generator = makeGenerator(random);
  const fill = (documented: string) =>
    documented.replace(/\{([^}]+)\}/g, (_, name: string) =>
      name === "service" ? "api" : generator.pick(UNKNOWN_IDS),
    );
  const kinds = new Map<string, number>();
  const codes = new Map<string, number>();
  for (const route of mutating) {
    for (let i = 0; i < CASES; i++) {
      const c = generator.make(
        route.method,
        route.path,
        fill,
        VALID_BODIES[`${route.method} ${route.path}`]!,
        route.body,
        auth,
      );
      const where = `seed ${SEED}, ${route.method} ${route.path} case ${i} (${c.kind}): ${c.method} ${c.path.slice(0, 80)} ${String(c.body).slice(0, 80)}`;
      let answer: RawAnswer;
      try {
        answer = await rawRequest(box.apiPort, c);
      } catch (error) {
        assert.fail(`${where}: no answer (${(error as Error).message})`);
      }
      kinds.set(c.kind, (kinds.get(c.kind) ?? 0) + 1);
      assert.ok(
        answer.status >= 400 && answer.status < 500,
        `${where}: ${answer.status} ${answer.text.slice(0, 300)}`,
      );
      const envelope = answer.json as { error?: { code?: string; message?: string } } | undefined;
      assert.ok(envelope?.error !== undefined, `${where}: not the envelope: ${answer.text.slice(0, 300)}`);
      assert.deepEqual(
        Object.keys(answer.json as object),
        ["error"],
        `${where}: only { error } in the envelope`,
      );
      const code = envelope.error.code as ErrorCode;
      assert.ok(Object.hasOwn(ERROR_CODES, code), `${where}: uncatalogued code ${code}`);
      assert.equal(
        httpStatusFor(new HomeostatError(code, "")),
        answer.status,
        `${where}: ${code} with ${answer.status}`,
      );
      assert.equal(typeof envelope.error.message, "string");
      assert.ok(envelope.error.message!.length > 0, `${where}: a message`);
      if (code === "HS_BAD_REQUEST" && ["not-an-object", "unknown-field", "wrong-type"].includes(c.kind)) {
        // A body's problem is named as the body's, field by field (not `query:` as it once was);
        // the path's params are parsed first, so an unknown-id params problem may come first.
        assert.match(
          envelope.error.message!,
          /^(params|body)(\.| ?:)/,
          `${where}: ${envelope.error.message}`,
        );
      }
      codes.set(code, (codes.get(code) ?? 0) + 1);
      // Where the route is the documented one, the answer is documented too.
      if (checker.pathOf(c.method, c.path) === route.path && c.method === route.method) {
        assert.deepEqual(checker.check(c.method, c.path, answer), [], where);
      }
      // Up after every case, not only at the end.
      const health = await rawRequest(box.apiPort, { method: "GET", path: "/healthz", headers: { host } });
      assert.equal(health.status, 200, `${where}: /healthz after it`);
    }
  }

  // Nothing changed: the same records, fleet, traffic and zones.
  assert.deepEqual(await snapshot(get), before);
  // The generator did reach every kind of malformation and the codes it should.
  for (const kind of [
    "bad-json",
    "huge-body",
    "huge-url",
    "overflowing-url",
    "huge-headers",
    "content-type",
    "unknown-field",
    "wrong-type",
  ]) {
    assert.ok((kinds.get(kind) ?? 0) > 0, `kind ${kind} drawn`);
  }
  for (const code of [
    "HS_MALFORMED_JSON",
    "HS_BAD_REQUEST",
    "HS_BODY_TOO_LARGE",
    "HS_URI_TOO_LONG",
    "HS_HEADERS_TOO_LARGE",
    "HS_NOT_JSON",
    "HS_UNAUTHENTICATED",
    "HS_METHOD_NOT_ALLOWED",
  ]) {
    assert.ok(
      (codes.get(code) ?? 0) > 0,
      `${code} answered (codes: ${JSON.stringify(Object.fromEntries(codes))})`,
    );
  }
});
