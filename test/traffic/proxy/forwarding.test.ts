import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import { Readable } from "node:stream";
import { test } from "node:test";
import { HomeostatError } from "../../../src/errors.ts";
import { FaultRegistry } from "../../../src/traffic/faults.ts";
import { ServiceProxy } from "../../../src/traffic/proxy/serviceProxy.ts";
import { TrafficStats } from "../../../src/traffic/stats/index.ts";
import { endpointOf, rawExchange, send, startProxy, startUpstream, traffic } from "./kit.ts";

test("forwards method, path, query and body, and names the instance and attempt count", async (t) => {
  const upstream = await startUpstream(t, "api-0", async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ method: req.method, url: req.url, body }));
  });
  const { client } = await startProxy(t, { endpoints: [endpointOf(upstream)] });

  const reply = await send(client, { method: "PUT", path: "/items/7?color=red", body: "hello" });
  assert.equal(reply.status, 200);
  assert.deepEqual(JSON.parse(reply.body), { method: "PUT", url: "/items/7?color=red", body: "hello" });
  assert.equal(reply.headers["x-homeostat-instance"], "api-0");
  assert.equal(reply.headers["x-homeostat-attempts"], "1");
  assert.equal(reply.headers["content-type"], "application/json");
});

test("streams a large chunked body both ways without buffering it whole", async (t) => {
  const size = 32 * 1024 * 1024;
  let upstreamSawChunked = false;
  const upstream = await startUpstream(t, "api-0", async (req, res) => {
    upstreamSawChunked = req.headers["transfer-encoding"] === "chunked";
    // Echo as it arrives: the response streams while the request is still coming.
    const hash = createHash("sha256");
    res.writeHead(200, { "content-type": "application/octet-stream" });
    for await (const chunk of req) {
      hash.update(chunk as Buffer);
      if (!res.write(chunk)) await new Promise((resolve) => res.once("drain", resolve));
    }
    res.end();
  });
  const { client } = await startProxy(t, { endpoints: [endpointOf(upstream)] });

  const block = Buffer.alloc(64 * 1024, 7);
  async function* body() {
    for (let sent = 0; sent < size; sent += block.length) yield block;
  }
  const response = await client.request({ path: "/echo", method: "POST", body: Readable.from(body()) });
  assert.equal(response.statusCode, 200);
  assert.equal(response.headers["transfer-encoding"], "chunked");
  let received = 0;
  let intact = true;
  for await (const chunk of response.body) {
    received += (chunk as Buffer).length;
    if ((chunk as Buffer).some((byte) => byte !== 7)) intact = false;
  }
  assert.equal(received, size);
  assert.ok(intact, "every byte came back unchanged");
  assert.ok(upstreamSawChunked, "the upstream got a chunked request (unknown length is streamed)");
});

test("strips hop-by-hop headers both ways and sets the forwarding headers", async (t) => {
  let seen: Record<string, string | string[] | undefined> = {};
  const upstream = await startUpstream(t, "api-0", (req, res) => {
    seen = req.headers;
    res.setHeader("x-secret-hop", "drop me");
    res.setHeader("connection", "x-secret-hop");
    res.setHeader("proxy-authenticate", "Basic");
    res.setHeader("trailer", "x-checksum");
    res.setHeader("x-kept", "yes");
    res.end("ok");
  });
  const { client, port } = await startProxy(t, { endpoints: [endpointOf(upstream)] });

  // HTTP clients rewrite `connection` themselves: this request is written by hand.
  const raw = await rawExchange(
    port,
    "GET / HTTP/1.1\r\nHost: shop.test\r\nConnection: close, x-client-hop\r\nX-Client-Hop: drop me too\r\n" +
      "Keep-Alive: timeout=5\r\nProxy-Authorization: Basic abc\r\nTE: trailers\r\n" +
      "X-Forwarded-For: 203.0.113.9\r\nX-Kept: yes\r\n\r\n",
  );
  assert.match(raw, /^HTTP\/1\.1 200/);
  for (const name of ["x-client-hop", "proxy-authorization", "te", "keep-alive", "upgrade"]) {
    assert.equal(seen[name], undefined, `${name} must not reach the upstream`);
  }
  assert.notEqual(seen.connection, "close, x-client-hop");
  assert.equal(seen["x-kept"], "yes");
  assert.equal(seen["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
  assert.equal(seen["x-forwarded-proto"], "http");
  assert.equal(seen["x-forwarded-host"], "shop.test");
  assert.equal(seen.host, "shop.test", "the original Host is kept");
  assert.match(String(seen["x-request-id"]), /^[0-9a-f-]{36}$/);
  assert.match(
    raw,
    new RegExp(`x-request-id: ${seen["x-request-id"]}`, "i"),
    "the client learns the request id",
  );

  const reply = await send(client, { headers: { "x-kept": "yes" } });
  assert.equal(seen["x-forwarded-host"], `127.0.0.1:${port}`);

  assert.equal(reply.headers["x-secret-hop"], undefined);
  assert.equal(reply.headers["proxy-authenticate"], undefined);
  assert.equal(reply.headers.trailer, undefined);
  assert.equal(reply.headers["x-kept"], "yes");
});

test("keeps a client's x-request-id", async (t) => {
  let seen: unknown;
  const upstream = await startUpstream(t, "api-0", (req, res) => {
    seen = req.headers["x-request-id"];
    res.end();
  });
  const { client } = await startProxy(t, { endpoints: [endpointOf(upstream)] });
  const reply = await send(client, { headers: { "x-request-id": "abc-123" } });
  assert.equal(seen, "abc-123");
  assert.equal(reply.headers["x-request-id"], "abc-123");
});

test("forwards the criticality header and counts values it does not know", async (t) => {
  const seen: unknown[] = [];
  const upstream = await startUpstream(t, "api-0", (req, res) => {
    seen.push(req.headers["x-homeostat-criticality"]);
    res.end();
  });
  const { client, proxy } = await startProxy(t, { endpoints: [endpointOf(upstream)] });
  await send(client, { headers: { "x-homeostat-criticality": "CRITICAL" } });
  await send(client, { headers: { "x-homeostat-criticality": "urgent!!" } });
  assert.deepEqual(seen, ["CRITICAL", "urgent!!"]);
  assert.equal(proxy.state().unrecognisedCriticality, 1);
});

test("no endpoints: 503 no-upstream, reason no-endpoints", async (t) => {
  const { client, stats } = await startProxy(t);
  const reply = await send(client);
  assert.equal(reply.status, 503);
  assert.equal(reply.headers["x-homeostat-shed"], "no-upstream");
  assert.equal(reply.headers["retry-after"], "1");
  assert.deepEqual(JSON.parse(reply.body), { error: "no-upstream", reason: "no-endpoints" });
  assert.equal(stats.window({ service: "api", windowMs: 60_000 }).errors, 1);
});

test("HEAD and 204/304 answers carry no body and keep the connection usable", async (t) => {
  const upstream = await startUpstream(t, "api-0", (req, res) => {
    if (req.url === "/empty") {
      res.statusCode = 204;
      res.end();
      return;
    }
    res.setHeader("content-length", "5");
    res.end(req.method === "HEAD" ? undefined : "hello");
  });
  const { client } = await startProxy(t, { endpoints: [endpointOf(upstream)] });
  const head = await send(client, { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.headers["content-length"], "5");
  assert.equal(head.body, "");
  const empty = await send(client, { path: "/empty" });
  assert.equal(empty.status, 204);
  const again = await send(client);
  assert.equal(again.body, "hello");
});

test("an absolute-form target is forwarded as a path; anything else is refused", async (t) => {
  let url: string | undefined;
  const upstream = await startUpstream(t, "api-0", (req, res) => {
    url = req.url;
    res.end();
  });
  const { port } = await startProxy(t, { endpoints: [endpointOf(upstream)] });
  const ok = await rawExchange(
    port,
    "GET http://example.test/a?b=1 HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n",
  );
  assert.match(ok, /^HTTP\/1\.1 200/);
  assert.equal(url, "/a?b=1");
});

test("a taken port fails listen with HS_PORT_IN_USE naming the service and port", async (t) => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const port = (blocker.address() as { port: number }).port;
  const proxy = new ServiceProxy({
    service: "checkout",
    port,
    traffic: traffic(),
    stats: new TrafficStats(),
    faults: new FaultRegistry(),
  });
  t.after(() => proxy.close());
  await assert.rejects(proxy.listen(), (error: unknown) => {
    assert.ok(error instanceof HomeostatError);
    assert.equal(error.code, "HS_PORT_IN_USE");
    assert.match(error.message, /checkout/);
    assert.match(error.message, new RegExp(String(port)));
    return true;
  });
});

test("CONNECT is refused: this is not a forward proxy", async (t) => {
  const { port } = await startProxy(t);
  const reply = await rawExchange(
    port,
    "CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n",
  );
  assert.match(reply, /^HTTP\/1\.1 405/);
});

test("a client trickling a small body is answered 408 at the request deadline", async (t) => {
  const upstream = await startUpstream(t, "api-0");
  const { port, proxy } = await startProxy(t, {
    traffic: traffic({ requestTimeoutMs: 300 }),
    endpoints: [endpointOf(upstream)],
  });
  const started = performance.now();
  const reply = await rawExchange(port, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
  assert.match(reply, /^HTTP\/1\.1 408 /);
  assert.match(reply, /connection: close/i);
  assert.ok(performance.now() - started >= 290);
  assert.equal(upstream.hits, 0);
  assert.equal((proxy.state().admission as { inFlight: number }).inFlight, 0, "the permit was released");
});
