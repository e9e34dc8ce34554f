/**
 * No ambient authority: what a web page in a browser on the operator's machine can send to the
 * API (a text/plain or form body, a foreign Origin, a foreign Host after DNS rebinding) is refused
 * before any route runs, and the CLI's client still works. The real API, listening on loopback.
 */

import assert from "node:assert/strict";
import { request } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { apiClient } from "../../src/cli/apiClient.ts";
import { buildApi, type TrafficApi } from "../../src/server/api.ts";
import { issueToken } from "../../src/server/auth/tokens.ts";
import { hostsFor } from "../../src/server/requestGuards.ts";
import type { StatusDocument } from "../../src/server/statusView.ts";
import { StateStore } from "../../src/store/index.ts";

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: { error?: { code: string; message: string } } & Record<string, unknown>;
}

/** One request exactly as given (node:http: any Host, Origin and Content-Type a browser might send). */
function send(
  port: number,
  options: { method: string; path: string; headers?: Record<string, string>; body?: string },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        method: options.method,
        path: options.path,
        // A length, always: node:http sends DELETE and OPTIONS bodies unframed otherwise.
        headers: { "content-length": String(Buffer.byteLength(options.body ?? "")), ...options.headers },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          text += chunk;
        });
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text ? JSON.parse(text) : {} }),
        );
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}

describe("no ambient authority", () => {
  let app: FastifyInstance;
  let port: number;
  let store: StateStore;
  let stateDir: string;
  let adminToken: string;
  const calls: string[] = [];

  before(async () => {
    const { mkdtempSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    stateDir = mkdtempSync(join(tmpdir(), "homeostat-api-"));
    store = StateStore.open(stateDir);
    const traffic = {
      state: () => ({}),
      listFaults: () => [],
      clearFaults: () => {
        calls.push("clearFaults");
        return 0;
      },
      restartDataPlane: async (reason: string) => {
        calls.push(`restartDataPlane(${reason})`);
        return { restarted: true };
      },
      settled: async () => true,
    } as unknown as TrafficApi;
    // The API needs a token (test/server/auth.test.ts covers that): an admin's, made in the store.
    adminToken = issueToken(store.tokens, {
      name: "test-admin",
      role: "admin",
      createdBy: "test",
      at: Date.now(),
    }).secret;
    app = buildApi({
      store,
      auth: { store },
      status: () => ({ fleet: "test" }) as unknown as StatusDocument,
      shutdown: async () => {
        calls.push("shutdown");
      },
      traffic,
    });
    await app.listen({ host: "127.0.0.1", port: 0 });
    port = (app.server.address() as AddressInfo).port;
  });
  after(async () => {
    await app.close();
    store.close();
    const { rmSync } = await import("node:fs");
    rmSync(stateDir, { recursive: true, force: true });
  });

  /** Lets a shutdown the API might have scheduled (setImmediate) run before counting. */
  const settle = () => new Promise((resolve) => setTimeout(resolve, 50));
  const own = () => `127.0.0.1:${port}`;

  test("the issue's request: text/plain, foreign Origin and Host → refused, nothing stopped", async () => {
    const answer = await send(port, {
      method: "POST",
      path: "/v1/shutdown",
      headers: { "content-type": "text/plain", origin: "http://evil.example", host: `evil.example:${port}` },
      body: "{}",
    });
    assert.equal(answer.status, 403);
    assert.equal(answer.body.error?.code, "HS_HOST_REFUSED");
    await settle();
    assert.deepEqual(calls, []);
  });

  test("a text/plain, form or multipart body, or none, is refused for every change (415 HS_NOT_JSON)", async () => {
    const bodies: [string | undefined, string][] = [
      ["text/plain", "{}"],
      ["text/plain;charset=UTF-8", '{"ok":true}'],
      ["application/x-www-form-urlencoded", "a=1"],
      ["multipart/form-data; boundary=x", "--x--\r\n"],
      [undefined, ""],
    ];
    for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
      for (const [contentType, body] of bodies) {
        const answer = await send(port, {
          method,
          path: method === "DELETE" ? "/v1/faults" : "/v1/shutdown",
          headers: { host: own(), ...(contentType === undefined ? {} : { "content-type": contentType }) },
          body,
        });
        assert.equal(answer.status, 415, `${method} ${contentType}`);
        assert.equal(answer.body.error?.code, "HS_NOT_JSON");
        assert.match(answer.body.error!.message, /Content-Type: application\/json/);
      }
    }
    await settle();
    assert.deepEqual(calls, [], "no shutdown, no fault cleared");
  });

  test("a JSON change from a foreign Origin is refused (403 HS_ORIGIN_REFUSED)", async () => {
    for (const origin of [
      "http://evil.example",
      "null",
      `http://evil.example:${port}`,
      `https://127.0.0.1:${port}`,
    ]) {
      const answer = await send(port, {
        method: "POST",
        path: "/v1/shutdown",
        headers: { host: own(), origin, "content-type": "application/json" },
        body: "{}",
      });
      assert.equal(answer.status, 403, origin);
      assert.equal(answer.body.error?.code, "HS_ORIGIN_REFUSED");
      assert.match(answer.body.error!.message, /CSRF/);
    }
    await settle();
    assert.deepEqual(calls, []);
  });

  test("a foreign Host (DNS rebinding) is refused on reads and changes (403 HS_HOST_REFUSED)", async () => {
    for (const host of [
      `evil.example:${port}`,
      "evil.example",
      `127.0.0.1:${port + 1}`,
      `127.0.0.1.evil.example:${port}`,
    ]) {
      const read = await send(port, { method: "GET", path: "/v1/status", headers: { host } });
      assert.equal(read.status, 403, host);
      assert.equal(read.body.error?.code, "HS_HOST_REFUSED");
      assert.equal(read.body.fleet, undefined, "no status leaks");
      assert.match(read.body.error!.message, /DNS rebinding/);
      const change = await send(port, {
        method: "POST",
        path: "/v1/shutdown",
        headers: { host, "content-type": "application/json" },
        body: "{}",
      });
      assert.equal(change.status, 403, host);
      assert.equal(change.body.error?.code, "HS_HOST_REFUSED");
    }
    await settle();
    assert.deepEqual(calls, []);
  });

  test("the loopback names of the bound port are the API's own: reads and own-origin changes pass", async () => {
    for (const host of hostsFor("127.0.0.1", port)) {
      const read = await send(port, {
        method: "GET",
        path: "/v1/status",
        headers: { host, authorization: `Bearer ${adminToken}` },
      });
      assert.equal(read.status, 200, host);
      assert.equal(read.body.fleet, "test");
    }
    const change = await send(port, {
      method: "DELETE",
      path: "/v1/faults",
      headers: {
        host: `localhost:${port}`,
        origin: `http://localhost:${port}`,
        "content-type": "application/json",
        authorization: `Bearer ${adminToken}`,
      },
      body: "{}",
    });
    assert.equal(change.status, 200);
    assert.deepEqual(calls.splice(0), ["clearFaults"]);
  });

  test("no CORS: no Access-Control header, and a preflight gets none", async () => {
    const read = await send(port, {
      method: "GET",
      path: "/v1/status",
      headers: { host: own(), origin: "http://evil.example" },
    });
    const preflight = await send(port, {
      method: "OPTIONS",
      path: "/v1/shutdown",
      headers: {
        host: own(),
        origin: "http://evil.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
      },
    });
    assert.notEqual(preflight.status, 204);
    for (const answer of [read, preflight]) {
      const cors = Object.keys(answer.headers).filter((h) => h.startsWith("access-control-"));
      assert.deepEqual(cors, []);
    }
  });

  test("the CLI's client still works: JSON on every change, body-less ones and DELETE included", async () => {
    const client = apiClient(port, { token: adminToken });
    assert.deepEqual(await client.get("/v1/status"), { fleet: "test" });
    assert.deepEqual(await client.delete("/v1/faults"), { removed: 0, applied: true });
    assert.deepEqual(await client.post("/v1/dataplane/restart"), { restarted: true });
    const stopped = await client.post<{ ok: boolean }>("/v1/shutdown");
    assert.equal(stopped.ok, true);
    await settle();
    assert.deepEqual(calls.splice(0), ["clearFaults", "restartDataPlane()", "shutdown"]);
  });
});
