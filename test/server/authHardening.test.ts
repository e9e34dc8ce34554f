/**
 * What a token holder must not be able to get around, on the real API (listening on loopback, real
 * store): a change whose caller hangs up before the answer is still audited, with its outcome; a
 * reason cannot forge lines of `homeostat audit` (no control characters kept); an event stream
 * opened with a token ends once that token is revoked.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { type AddressInfo, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { buildApi, type TrafficApi } from "../../src/server/api.ts";
import { issueToken } from "../../src/server/auth/tokens.ts";
import type { StatusDocument } from "../../src/server/statusView.ts";
import { StateStore } from "../../src/store/index.ts";
import { openSse } from "../helpers/sse.ts";
import { waitFor } from "../helpers/waitFor.ts";

/** A restart the test starts and finishes. */
function deferredRestart(): {
  started: Promise<void>;
  began(): void;
  finished: Promise<void>;
  finish(): void;
} {
  let began = () => {};
  let finish = () => {};
  const started = new Promise<void>((resolve) => {
    began = resolve;
  });
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  return { started, began, finished, finish };
}

describe("auth hardening", () => {
  let app: FastifyInstance;
  let port: number;
  let store: StateStore;
  let stateDir: string;
  let operator: string;
  let admin: string;
  /** A data-plane restart asked: `started` resolves when the handler runs, `finish` lets it answer. */
  let restart = deferredRestart();

  before(async () => {
    stateDir = mkdtempSync(join(tmpdir(), "homeostat-auth-hardening-"));
    store = StateStore.open(stateDir);
    const issue = (name: string, role: "operator" | "admin") =>
      issueToken(store.tokens, { name, role, createdBy: "test", at: Date.now() }).secret;
    operator = issue("t-operator", "operator");
    admin = issue("t-admin", "admin");
    const traffic = {
      settled: async () => true,
      restartDataPlane: async () => {
        restart.began();
        await restart.finished;
        return { from: 1, to: 2, workers: [], dataPlane: {} };
      },
    } as unknown as TrafficApi;
    app = buildApi({
      store,
      auth: { store },
      status: () => ({ fleet: "test" }) as unknown as StatusDocument,
      shutdown: async () => {},
      traffic,
    });
    await app.listen({ host: "127.0.0.1", port: 0 });
    port = (app.server.address() as AddressInfo).port;
  });
  after(async () => {
    await app.close();
    store.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  const connections = () =>
    new Promise<number>((resolve, reject) =>
      app.server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
    );

  test("a change whose caller hangs up before the answer is audited, with its outcome", async () => {
    const before = store.audit.list({ limit: 10_000 }).length;
    restart = deferredRestart();
    const body = JSON.stringify({ reason: "hang up before the answer" });
    const socket = connect(port, "127.0.0.1");
    socket.on("error", () => {});
    socket.write(
      `POST /v1/dataplane/restart HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${operator}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    await restart.started;
    socket.destroy();
    // The server has seen the caller go before the restart finishes.
    await waitFor(async () => (await connections()) === 0, { what: "the connection closed on the server" });
    restart.finish();
    const rows = await waitFor(
      () => {
        const all = store.audit.list({ limit: 10_000 });
        return all.length > before ? all.slice(before) : null;
      },
      { what: "the audit row of the change", timeoutMs: 3000 },
    );
    assert.equal(rows.length, 1);
    const [row] = rows;
    assert.equal(row!.route, "/v1/dataplane/restart");
    assert.equal(row!.tokenName, "t-operator");
    assert.equal(row!.status, 200, "the outcome of the change, though nobody read it");
    assert.equal(row!.reason, "hang up before the answer");
  });

  test("a reason's control characters are not kept: it cannot forge lines of the audit table", async () => {
    const forged = "drill\n42  2099-01-01 00:00:00  t-admin  admin  POST /v1/shutdown  202\u001b[2K\r\u009b";
    restart = deferredRestart();
    restart.finish();
    const response = await fetch(`http://127.0.0.1:${port}/v1/dataplane/restart`, {
      method: "POST",
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body: JSON.stringify({ reason: forged }),
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(response.status, 200);
    const row = await waitFor(
      () => store.audit.list({ limit: 1 }).find((r) => r.reason?.startsWith("drill")),
      { what: "the audit row" },
    );
    // biome-ignore lint/suspicious/noControlCharactersInRegex: looking for control characters.
    assert.doesNotMatch(row.reason!, /[\u0000-\u001f\u007f-\u009f]/, "no control character kept");
    assert.match(row.reason!, /^drill\\n42 .*POST \/v1\/shutdown {2}202\\u001b\[2K\\r\\u009b$/);
    const body = row.body as { reason: string };
    assert.equal(body.reason, row.reason, "the body's copy too");
  });

  test("an open event stream ends once its token is revoked", async () => {
    const viewer = issueToken(store.tokens, {
      name: "t-stream",
      role: "viewer",
      createdBy: "test",
      at: Date.now(),
    });
    const stream = await openSse(`http://127.0.0.1:${port}/v1/stream`, {
      authorization: `Bearer ${viewer.secret}`,
    });
    try {
      assert.equal(stream.status, 200);
      await stream.until((frames) => frames.some((f) => f.event === "status"), "the first status");
      const revoked = await fetch(`http://127.0.0.1:${port}/v1/tokens/${viewer.token.id}`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
        body: "{}",
        signal: AbortSignal.timeout(5000),
      });
      assert.equal(revoked.status, 200);
      await waitFor(() => stream.ended(), { what: "the stream ended", timeoutMs: 5000 });
      const last = stream.frames.at(-1)!;
      assert.equal(last.event, "error");
      assert.deepEqual((last.json as { error: { code: string } }).error.code, "HS_UNAUTHENTICATED");
      assert.match(
        (last.json as { error: { message: string } }).error.message,
        /token "t-stream" was revoked/,
      );
    } finally {
      stream.close();
    }
  });
});
