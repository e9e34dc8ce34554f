/**
 * Authentication, roles and audit on the real API (listening on loopback, real store): every route
 * the registry knows is tried without a token, with a malformed, an unknown and a revoked one, and
 * with a role too weak for it: each is refused before anything runs, and every change asked,
 * refused or not, is in the audit trail with who, what, why and the result.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { buildApi, type FailoverApi, type ReleasesApi, type TrafficApi } from "../../src/server/api.ts";
import { hashToken, issueToken, newTokenSecret } from "../../src/server/auth/tokens.ts";
import { type Role, roleAllows, routesOf } from "../../src/server/route.ts";
import type { StatusDocument } from "../../src/server/statusView.ts";
import { type AuditRecord, StateStore, type TokenRecord } from "../../src/store/index.ts";

const MUTATING = new Set(["POST", "PUT", "PATCH", "DELETE"]);

interface Answer {
  status: number;
  body: { error?: { code: string; message: string } } & Record<string, unknown>;
}

/** A stand-in that records every call and answers `{}` (a promise of true for `settled`). */
function recorder<T extends object>(calls: string[], prefix: string): T {
  return new Proxy({} as T, {
    get:
      (_target, name) =>
      (...args: unknown[]) => {
        calls.push(`${prefix}.${String(name)}(${JSON.stringify(args)})`);
        if (name === "settled") return Promise.resolve(true);
        if (name === "restartDataPlane") return Promise.resolve({ restarted: true });
        if (name === "removeFault") return true;
        if (name === "listFaults") return [];
        if (name === "addFault") return { id: "f1", fault: { kind: "blackhole" } };
        return {};
      },
  });
}

/** A URL for a route pattern: every `:param` given a value no handler would accept silently. */
function urlFor(pattern: string): string {
  return pattern
    .replace(/:(\w+)/g, (_m, name: string) => (name === "id" ? "1" : `x-${name}`))
    .replace("*", "x");
}

describe("authentication, roles and audit", () => {
  let app: FastifyInstance;
  let port: number;
  let store: StateStore;
  let stateDir: string;
  const calls: string[] = [];
  const secrets: Partial<Record<Role | "revoked", string>> = {};

  before(async () => {
    stateDir = mkdtempSync(join(tmpdir(), "homeostat-auth-"));
    store = StateStore.open(stateDir);
    for (const role of ["viewer", "operator", "admin"] as const) {
      secrets[role] = issueToken(store.tokens, {
        name: `t-${role}`,
        role,
        createdBy: "test",
        at: Date.now(),
      }).secret;
    }
    const revoked = issueToken(store.tokens, {
      name: "gone",
      role: "admin",
      createdBy: "test",
      at: Date.now(),
    });
    store.tokens.revoke(revoked.token.id, Date.now());
    secrets.revoked = revoked.secret;
    app = buildApi({
      store,
      auth: { store },
      status: () => ({ fleet: "test" }) as unknown as StatusDocument,
      shutdown: async () => {
        calls.push("shutdown");
      },
      traffic: recorder<TrafficApi>(calls, "traffic"),
      releases: recorder<ReleasesApi>(calls, "releases"),
      failover: recorder<FailoverApi>(calls, "failover"),
    });
    await app.listen({ host: "127.0.0.1", port: 0 });
    port = (app.server.address() as AddressInfo).port;
  });
  after(async () => {
    await app.close();
    store.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  async function send(
    method: string,
    path: string,
    options: { token?: string; header?: string; body?: unknown } = {},
  ): Promise<Answer> {
    const headers: Record<string, string> = {};
    if (options.header !== undefined) headers.authorization = options.header;
    else if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    const change = MUTATING.has(method);
    if (change) headers["content-type"] = "application/json";
    const response = await fetch(`http://127.0.0.1:${port}${path}`, {
      method,
      headers,
      ...(change ? { body: JSON.stringify(options.body ?? {}) } : {}),
      signal: AbortSignal.timeout(5000),
    });
    const text = await response.text();
    let body: Answer["body"] = {};
    try {
      body = text ? (JSON.parse(text) as Answer["body"]) : {};
    } catch {
      // not JSON (metrics): fine for a 200
    }
    return { status: response.status, body };
  }

  test("the registry declares every API route with a role, and the issue's role table holds", () => {
    const routes = routesOf(app);
    const access = (method: string, url: string) =>
      routes.find((r) => r.method === method && r.url === url)?.access;
    assert.equal(access("GET", "/healthz"), "public");
    assert.equal(access("GET", "/openapi.json"), "public");
    assert.equal(access("GET", "/v1/status"), "viewer");
    assert.equal(access("POST", "/v1/shutdown"), "admin");
    for (const [method, url] of [
      ["GET", "/v1/tokens"],
      ["POST", "/v1/tokens"],
      ["DELETE", "/v1/tokens/:id"],
      ["GET", "/v1/audit"],
    ] as const) {
      assert.equal(access(method, url), "admin", `${method} ${url}`);
    }
    for (const route of routes.filter((r) => MUTATING.has(r.method))) {
      assert.ok(
        route.access === "operator" || route.access === "admin",
        `${route.method} ${route.url}: ${route.access}`,
      );
    }
  });

  test("every non-public route refuses a missing, malformed, unknown or revoked token (401) before running", async () => {
    const routes = routesOf(app).filter((r) => r.access !== "public");
    assert.ok(
      routes.filter((r) => MUTATING.has(r.method)).length >= 12,
      "the mutating routes are all registered",
    );
    const attempts: [string, { token?: string; header?: string }][] = [
      ["no token", {}],
      ["an empty header", { header: "" }],
      ["not Bearer", { header: `Basic ${Buffer.from("admin:admin").toString("base64")}` }],
      ["not a token", { token: "letmein" }],
      ["unknown", { token: newTokenSecret() }],
      ["revoked", { token: secrets.revoked! }],
    ];
    for (const route of routes) {
      for (const [what, options] of attempts) {
        const answer = await send(route.method, urlFor(route.url), options);
        assert.equal(
          answer.status,
          401,
          `${route.method} ${route.url} with ${what}: ${JSON.stringify(answer.body)}`,
        );
        assert.equal(answer.body.error?.code, "HS_UNAUTHENTICATED");
      }
    }
    const revoked = await send("POST", "/v1/shutdown", { token: secrets.revoked! });
    assert.match(revoked.body.error!.message, /token "gone" was revoked/);
    const none = await send("GET", "/v1/status");
    assert.match(none.body.error!.message, /Authorization: Bearer/);
    assert.deepEqual(calls, [], "no handler ran");
  });

  test("every route refuses a role weaker than its own (403), a viewer every change, before running", async () => {
    const routes = routesOf(app).filter((r) => r.access !== "public");
    for (const route of routes) {
      for (const role of ["viewer", "operator"] as const) {
        if (roleAllows(role, route.access as Role)) continue;
        const answer = await send(route.method, urlFor(route.url), { token: secrets[role]! });
        assert.equal(answer.status, 403, `${route.method} ${route.url} as ${role}`);
        assert.equal(answer.body.error?.code, "HS_FORBIDDEN");
        assert.match(
          answer.body.error!.message,
          new RegExp(`needs the ${route.access} role; token "t-${role}" has ${role}`),
        );
      }
      if (MUTATING.has(route.method)) {
        const viewer = await send(route.method, urlFor(route.url), { token: secrets.viewer! });
        assert.equal(viewer.status, 403, `${route.method} ${route.url}: a viewer may change nothing`);
      }
    }
    assert.deepEqual(calls, [], "no handler ran");
  });

  test("public routes need no token; a viewer reads", async () => {
    assert.equal((await send("GET", "/healthz")).status, 200);
    assert.equal((await send("GET", "/openapi.json")).status, 200);
    const status = await send("GET", "/v1/status", { token: secrets.viewer! });
    assert.equal(status.status, 200);
    assert.equal(status.body.fleet, "test");
    // Not found is 404 to everyone (it reveals no route), and not a 401.
    assert.equal((await send("GET", "/v1/nothing-here")).status, 404);
  });

  test("a forced rollback and an override failover need admin; unforced, an operator may", async () => {
    calls.length = 0;
    const forced = await send("POST", "/v1/services/api/rollback", {
      token: secrets.operator!,
      body: { to: "v1", force: true, reason: "drill" },
    });
    assert.equal(forced.status, 403);
    assert.equal(forced.body.error?.code, "HS_FORBIDDEN");
    assert.match(forced.body.error!.message, /needs the admin role/);
    const override = await send("POST", "/v1/failover", {
      token: secrets.operator!,
      body: { domain: "zone-a", override: true, reason: "drill" },
    });
    assert.equal(override.status, 403);
    assert.deepEqual(calls, [], "refused before the release or failover manager was asked");

    assert.equal(
      (await send("POST", "/v1/services/api/rollback", { token: secrets.operator!, body: { to: "v1" } }))
        .status,
      202,
    );
    assert.equal(
      (await send("POST", "/v1/failover", { token: secrets.operator!, body: { domain: "zone-a" } })).status,
      202,
    );
    assert.equal(
      (
        await send("POST", "/v1/services/api/rollback", {
          token: secrets.admin!,
          body: { to: "v1", force: true, reason: "drill" },
        })
      ).status,
      202,
    );
    assert.equal(
      (
        await send("POST", "/v1/failover", {
          token: secrets.admin!,
          body: { domain: "zone-a", override: true, reason: "drill" },
        })
      ).status,
      202,
    );
    const asked: string[] = [...(calls as string[])];
    assert.ok(
      asked.some((c) => c.startsWith('releases.rollback(["api",{"to":"v1","force":true')),
      asked.join("\n"),
    );
    assert.ok(
      asked.some((c) => c.startsWith('failover.failover(["zone-a",{"reason":"drill","override":true}')),
    );
  });

  test("tokens: created once with their secret, listed without it, revoked; never the last admin", async () => {
    const created = await send("POST", "/v1/tokens", {
      token: secrets.admin!,
      body: { name: "ci-bot", role: "operator" },
    });
    assert.equal(created.status, 201);
    const secret = created.body.secret as string;
    const token = created.body.token as TokenRecord;
    assert.match(secret, /^hs_[A-Za-z0-9_-]{43}$/);
    assert.equal(token.createdBy, "t-admin");
    assert.equal(store.tokens.byHash(hashToken(secret))?.name, "ci-bot", "stored by its hash");
    // The new token works, for what its role allows.
    assert.equal((await send("DELETE", "/v1/faults", { token: secret })).status, 200);
    assert.equal((await send("GET", "/v1/tokens", { token: secret })).status, 403);

    const duplicate = await send("POST", "/v1/tokens", {
      token: secrets.admin!,
      body: { name: "ci-bot", role: "viewer" },
    });
    assert.equal(duplicate.status, 409);
    const badRole = await send("POST", "/v1/tokens", {
      token: secrets.admin!,
      body: { name: "x", role: "root" },
    });
    assert.equal(badRole.status, 400);

    const listed = await send("GET", "/v1/tokens", { token: secrets.admin! });
    assert.equal(listed.status, 200);
    const text = JSON.stringify(listed.body);
    for (const s of [secret, ...Object.values(secrets)]) {
      assert.ok(!text.includes(s!), "no secret listed");
      assert.ok(!text.includes(hashToken(s!)), "no hash listed");
    }
    assert.ok(!/"hash"/.test(text));
    assert.deepEqual(
      (listed.body.tokens as TokenRecord[]).map((t) => t.name),
      ["t-viewer", "t-operator", "t-admin", "ci-bot"],
    );

    const revoked = await send("DELETE", `/v1/tokens/${token.id}`, { token: secrets.admin! });
    assert.equal(revoked.status, 200);
    assert.equal((await send("DELETE", "/v1/faults", { token: secret })).status, 401, "revoked at once");
    assert.equal((await send("DELETE", `/v1/tokens/${token.id}`, { token: secrets.admin! })).status, 404);

    const admin = store.tokens.live("t-admin")!;
    const last = await send("DELETE", `/v1/tokens/${admin.id}`, { token: secrets.admin! });
    assert.equal(last.status, 409);
    assert.equal(last.body.error?.code, "HS_CONFLICT");
    assert.match(last.body.error!.message, /last live admin token/);
    assert.equal(store.tokens.live("t-admin")?.revokedAt, null, "still live");
  });

  test("every change asked is audited, refused ones included: who, role, route, arguments, reason, result", async () => {
    const before = store.audit.list({ limit: 10_000 }).length;
    const stray = newTokenSecret();
    await send("POST", "/v1/services/api/rollback", {
      token: secrets.operator!,
      body: { to: "v1", reason: `drill with ${stray} pasted in` },
    });
    await send("POST", "/v1/shutdown", { token: secrets.viewer! });
    await send("POST", "/v1/shutdown");
    await send("PUT", "/v1/services/api/weights", { token: secrets.operator!, body: { weights: "heavy" } });
    const created = await send("POST", "/v1/tokens", {
      token: secrets.admin!,
      body: { name: "audited", role: "viewer", reason: "new dashboard" },
    });
    const answer = await send("GET", `/v1/audit?limit=5`, { token: secrets.admin! });
    assert.equal(answer.status, 200);
    const rows = answer.body.audit as AuditRecord[];
    assert.equal(
      store.audit.list({ limit: 10_000 }).length,
      before + 5,
      "one row per change, no row for the GET",
    );
    assert.deepEqual(
      rows.map((r) => [r.method, r.route, r.tokenName, r.role, r.status, r.errorCode]),
      [
        ["POST", "/v1/services/:service/rollback", "t-operator", "operator", 202, null],
        ["POST", "/v1/shutdown", "t-viewer", "viewer", 403, "HS_FORBIDDEN"],
        ["POST", "/v1/shutdown", "anonymous", null, 401, "HS_UNAUTHENTICATED"],
        ["PUT", "/v1/services/:service/weights", "t-operator", "operator", 400, "HS_BAD_REQUEST"],
        ["POST", "/v1/tokens", "t-admin", "admin", 400, "HS_BAD_REQUEST"],
      ],
    );
    const [fault, , anonymous, weights, tokenRow] = rows;
    assert.equal(fault!.url, "/v1/services/api/rollback");
    assert.deepEqual(fault!.params, { service: "api" });
    assert.equal(fault!.reason, "drill with hs_[redacted] pasted in");
    assert.deepEqual(fault!.body, { to: "v1", reason: "drill with hs_[redacted] pasted in" });
    assert.ok(fault!.durationMs >= 0 && fault!.at > 0);
    assert.equal(anonymous!.body, null, "refused before the body was read");
    assert.deepEqual(weights!.params, { service: "api" });
    assert.deepEqual(weights!.body, { weights: "heavy" });
    assert.equal(tokenRow!.reason, "new dashboard");
    assert.equal(created.status, 400, "a reason is no field of a token (unknown fields are refused)");
    const everything = JSON.stringify(store.audit.list({ limit: 10_000 }));
    for (const s of [stray, ...Object.values(secrets)])
      assert.ok(!everything.includes(s!), "no secret in the audit trail");
  });

  test("a token's secret in the body of a token creation is never stored (redacted by key)", async () => {
    const answer = await send("POST", "/v1/tokens", {
      token: secrets.admin!,
      body: { name: "with-secret", role: "viewer", token: "hs_whatever", secret: "x" },
    });
    assert.equal(answer.status, 400);
    const row = store.audit.list({ limit: 1 })[0]!;
    assert.deepEqual(row.body, {
      name: "with-secret",
      role: "viewer",
      token: "[redacted]",
      secret: "[redacted]",
    });
  });
});

test("a route registered outside route() fails closed: a viewer to read, an admin to change", async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), "homeostat-auth-"));
  const store = StateStore.open(stateDir);
  const app = buildApi({
    store,
    auth: { store },
    status: () => ({}) as StatusDocument,
    shutdown: async () => {},
  });
  // As a plugin might: straight on Fastify, no declared role.
  app.get("/v1/undeclared", async () => ({ read: true }));
  app.post("/v1/undeclared", async () => ({ changed: true }));
  await app.listen({ host: "127.0.0.1", port: 0 });
  t.after(async () => {
    await app.close();
    store.close();
    rmSync(stateDir, { recursive: true, force: true });
  });
  const port = (app.server.address() as AddressInfo).port;
  const token = (role: Role) =>
    issueToken(store.tokens, { name: `u-${role}`, role, createdBy: "test", at: Date.now() }).secret;
  const call = async (method: string, secret?: string) =>
    (
      await fetch(`http://127.0.0.1:${port}/v1/undeclared`, {
        method,
        headers: {
          ...(method === "POST" ? { "content-type": "application/json" } : {}),
          ...(secret === undefined ? {} : { authorization: `Bearer ${secret}` }),
        },
        ...(method === "POST" ? { body: "{}" } : {}),
      })
    ).status;
  const [viewer, operator, admin] = [token("viewer"), token("operator"), token("admin")];
  assert.equal(await call("GET"), 401);
  assert.equal(await call("GET", viewer), 200);
  assert.equal(await call("POST"), 401);
  assert.equal(await call("POST", operator), 403);
  assert.equal(await call("POST", admin), 200);
});
