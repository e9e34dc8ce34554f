/**
 * Ambiguous request framing is refused with 400 and a closed connection, whether Node's parser
 * catches it (clientError) or our own checks do. Raw sockets: HTTP clients refuse to send these.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { endpointOf, rawExchange, startProxy, startUpstream } from "./kit.ts";

const CASES: { name: string; head: string; body: string; reason: RegExp; bodyError?: boolean }[] = [
  {
    name: "content-length and transfer-encoding together",
    head: "Content-Length: 5\r\nTransfer-Encoding: chunked",
    body: "0\r\n\r\n",
    reason: /transfer-encoding|content-length/,
  },
  {
    name: "transfer-encoding before content-length",
    head: "Transfer-Encoding: chunked\r\nContent-Length: 5",
    body: "0\r\n\r\n",
    reason: /content-length|transfer-encoding/,
  },
  { name: "a signed content-length", head: "Content-Length: +5", body: "hello", reason: /content-length/ },
  {
    name: "a hexadecimal content-length",
    head: "Content-Length: 0x5",
    body: "hello",
    reason: /content-length/,
  },
  { name: "a content-length list", head: "Content-Length: 5, 5", body: "hello", reason: /content-length/ },
  {
    name: "two different content-lengths",
    head: "Content-Length: 5\r\nContent-Length: 6",
    body: "hello!",
    reason: /content-length/,
  },
  { name: "an empty content-length", head: "Content-Length: ", body: "hello", reason: /content-length/ },
  {
    name: "transfer-encoding gzip, chunked",
    head: "Transfer-Encoding: gzip, chunked",
    body: "0\r\n\r\n",
    reason: /transfer-encoding other than chunked/,
  },
  {
    name: "transfer-encoding chunked, gzip",
    head: "Transfer-Encoding: chunked, gzip",
    body: "0\r\n\r\n",
    reason: /transfer-encoding/,
  },
  {
    name: "transfer-encoding identity",
    head: "Transfer-Encoding: identity",
    body: "",
    reason: /transfer-encoding/,
  },
  {
    name: "transfer-encoding twice",
    head: "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
    body: "0\r\n\r\n",
    reason: /transfer-encoding/,
  },
  { name: "two host headers", head: "Host: other.test", body: "", reason: /several host headers/ },
  // The head is fine, so the request may already be on its way upstream when the body turns bad.
  {
    name: "a bad chunk size",
    head: "Transfer-Encoding: chunked",
    body: "zz\r\nhello\r\n0\r\n\r\n",
    reason: /chunk/,
    bodyError: true,
  },
];

for (const c of CASES) {
  test(`400 and close for ${c.name}`, async (t) => {
    const upstream = await startUpstream(t, "api-0");
    const { port } = await startProxy(t, { endpoints: [endpointOf(upstream)] });
    const reply = await rawExchange(
      port,
      `POST /x HTTP/1.1\r\nHost: shop.test\r\n${c.head}\r\n\r\n${c.body}`,
    );
    assert.match(reply, /^HTTP\/1\.1 400 /);
    assert.match(reply, /connection: close/i);
    const body = JSON.parse(reply.slice(reply.indexOf("\r\n\r\n") + 4)) as { error: string; reason: string };
    assert.equal(body.error, "bad-request");
    assert.match(body.reason, c.reason);
    if (!c.bodyError) assert.equal(upstream.hits, 0, "the request never reaches an upstream");
  });
}

test("transfer-encoding in an HTTP/1.0 request is refused (RFC 9112 §6.1)", async (t) => {
  const upstream = await startUpstream(t, "api-0");
  const { port } = await startProxy(t, { endpoints: [endpointOf(upstream)] });
  const reply = await rawExchange(
    port,
    "POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
  );
  assert.match(reply, /^HTTP\/1\.1 400 /);
  assert.match(reply, /HTTP\/1\.0/);
  assert.equal(upstream.hits, 0);
});

test("plain framing is accepted: a decimal length, chunked in any case", async (t) => {
  const upstream = await startUpstream(t, "api-0");
  const { port } = await startProxy(t, { endpoints: [endpointOf(upstream)] });
  const withLength = await rawExchange(
    port,
    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 005\r\nConnection: close\r\n\r\nhello",
  );
  assert.match(withLength, /^HTTP\/1\.1 200 /);
  assert.match(withLength, /"bytes":5/);
  const chunked = await rawExchange(
    port,
    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
  );
  assert.match(chunked, /^HTTP\/1\.1 200 /);
  assert.match(chunked, /"bytes":5/);
});

test("other malformed requests get a 400 with a reason, not a silent close", async (t) => {
  const { port } = await startProxy(t);
  const reply = await rawExchange(port, "GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n");
  assert.match(reply, /^HTTP\/1\.1 400 /);
  assert.match(reply, /"reason":"invalid header"/);
});
