/**
 * The dashboard's API client (ui/src/api.ts) in Node against a local server: the Server-Sent
 * Events reader (frames split across chunks, heartbeats, resume with Last-Event-ID), the API's
 * error envelope, and the data-plane counters read from Prometheus text.
 */

import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { Api, ApiError, parseCounters, readStream, type StreamMessage } from "../../ui/src/api.ts";

describe("dashboard API client", () => {
  let server: Server;
  let base: string;
  const seen: IncomingHttpHeaders[] = [];

  before(async () => {
    server = createServer((req, res) => {
      seen.push(req.headers);
      if (req.url === "/v1/stream") {
        res.writeHead(200, { "content-type": "text/event-stream" });
        const after = req.headers["last-event-id"];
        if (after === undefined) {
          // A frame split mid-line across writes, a heartbeat comment, a multi-line data field.
          res.write("retry: 2000\n\nid: e1\nevent: ev");
          res.write('ent\ndata: {"seq":1}\n\n: heartbeat\n\n');
          res.write('event: status\ndata: {"a":\ndata: 1}\r\n\r\n');
          res.end('id: e2\nevent: event\ndata: {"seq":2}\n\n');
        } else {
          res.end(`id: e3\nevent: event\ndata: {"after":"${after}"}\n\n`);
        }
        return;
      }
      if (req.url === "/v1/status") {
        res.writeHead(401, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { code: "HS_UNAUTHENTICATED", message: "token revoked" } }));
        return;
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    await new Promise((r) => server.close(r));
  });

  test("reads frames whatever the chunking, skips heartbeats, and resumes after the last id", async () => {
    const api = new Api("hs_test", base);
    const messages: StreamMessage[] = [];
    let opened = 0;
    const stop = new AbortController();
    const lastId = await readStream(
      api,
      null,
      () => opened++,
      (m) => messages.push(m),
      stop.signal,
    );
    assert.equal(opened, 1);
    assert.deepEqual(messages, [
      { id: "e1", event: "event", data: '{"seq":1}' },
      { id: null, event: "status", data: '{"a":\n1}' },
      { id: "e2", event: "event", data: '{"seq":2}' },
    ]);
    assert.equal(lastId, "e2");
    assert.equal(seen.at(-1)?.authorization, "Bearer hs_test", "the token goes in a header");
    assert.equal(seen.at(-1)?.["last-event-id"], undefined);

    const resumed: StreamMessage[] = [];
    await readStream(
      api,
      lastId,
      () => undefined,
      (m) => resumed.push(m),
      stop.signal,
    );
    assert.equal(seen.at(-1)?.["last-event-id"], "e2");
    assert.deepEqual(resumed, [{ id: "e3", event: "event", data: '{"after":"e2"}' }]);
  });

  test("a refusal is an ApiError with the API's code and message", async () => {
    const api = new Api("hs_test", base);
    const error = await api.get("/v1/status").catch((e: unknown) => e);
    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 401);
    assert.equal(error.code, "HS_UNAUTHENTICATED");
    assert.equal(error.message, "token revoked");
    const stream = await readStream(
      new Api("hs_test", `${base}/nowhere`),
      null,
      () => assert.fail("not opened"),
      () => undefined,
      new AbortController().signal,
    ).catch((e: unknown) => e);
    assert.ok(stream instanceof ApiError && stream.status === 404);
  });

  test("data-plane counters: requests, errors (not 4xx, not shed) and shed, per service", () => {
    const text = [
      "# HELP homeostat_proxy_requests_total Client requests",
      'homeostat_proxy_requests_total{service="api",criticality="default",result="ok"} 90',
      'homeostat_proxy_requests_total{service="api",criticality="default",result="upstream-5xx"} 6',
      'homeostat_proxy_requests_total{service="api",criticality="default",result="client-error"} 3',
      'homeostat_proxy_requests_total{service="api",criticality="sheddable",result="shed"} 1',
      'homeostat_proxy_shed_total{service="api",criticality="sheddable",reason="over-limit"} 1',
      'homeostat_proxy_requests_total{service="web",criticality="critical",result="timeout"} 2',
    ].join("\n");
    assert.deepEqual(Object.fromEntries(parseCounters(text)), {
      api: { requests: 100, errors: 6, shed: 1 },
      web: { requests: 2, errors: 2, shed: 0 },
    });
  });
});
