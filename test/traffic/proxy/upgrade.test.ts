/**
 * WebSocket through the proxy: a real handshake (RFC 6455 accept key, computed by hand) against
 * an upstream that echoes every byte after it, over raw sockets on both sides.
 */

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { test } from "node:test";
import { waitFor } from "../../helpers/waitFor.ts";
import { type Cleanup, deadPort, endpointOf, rawExchange, startProxy, startUpstream } from "./kit.ts";

const WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

function acceptKey(key: string): string {
  return createHash("sha1")
    .update(key + WEBSOCKET_GUID)
    .digest("base64");
}

/** An upstream that completes the WebSocket handshake and echoes raw bytes afterwards. */
async function startEchoUpstream(t: Cleanup) {
  const seen: { headers?: IncomingMessage["headers"] } = {};
  const sockets = new Set<Duplex>();
  const upstream = await startUpstream(t, "ws-0");
  upstream.server.on("upgrade", (req: IncomingMessage, socket: Duplex) => {
    seen.headers = req.headers;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.write(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${acceptKey(String(req.headers["sec-websocket-key"]))}\r\n\r\n`,
    );
    socket.on("data", (chunk: Buffer) => socket.write(chunk));
    socket.on("end", () => socket.end());
  });
  t.after(() => {
    for (const socket of sockets) socket.destroy();
  });
  return { upstream, seen, sockets };
}

/** A masked client text frame (RFC 6455 §5.2), payload under 126 bytes. */
function textFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = randomBytes(4);
  const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}

/** Open a socket and read until `\r\n\r\n`: the response head; anything after is kept in `rest`. */
function handshake(port: number, request: string): Promise<{ socket: Socket; head: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(request));
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf("\r\n\r\n");
      if (end === -1) return;
      socket.off("data", onData);
      resolve({
        socket,
        head: buffered.subarray(0, end).toString("latin1"),
        rest: buffered.subarray(end + 4),
      });
    };
    socket.on("data", onData);
    socket.once("error", reject);
  });
}

test("a WebSocket upgrade is tunnelled: handshake, then frames echoed both ways", async (t) => {
  const { upstream, seen, sockets } = await startEchoUpstream(t);
  const { port, proxy } = await startProxy(t, { endpoints: [endpointOf(upstream)] });
  const key = randomBytes(16).toString("base64");
  const { socket, head, rest } = await handshake(
    port,
    `GET /chat HTTP/1.1\r\nHost: shop.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  t.after(() => socket.destroy());
  assert.match(head, /^HTTP\/1\.1 101 /);
  assert.match(head, new RegExp(`Sec-WebSocket-Accept: ${acceptKey(key).replace(/[+/=]/g, "\\$&")}`));
  assert.equal(rest.length, 0);
  assert.equal(seen.headers?.upgrade, "websocket");
  assert.equal(seen.headers?.connection, "upgrade");
  assert.equal(seen.headers?.["x-forwarded-for"], "127.0.0.1");
  assert.equal(seen.headers?.["x-forwarded-host"], "shop.test");

  const frame = textFrame("hello through the proxy");
  let echoed = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => {
    echoed = Buffer.concat([echoed, chunk]);
  });
  socket.write(frame);
  await waitFor(() => echoed.length >= frame.length, { what: "the echo" });
  assert.deepEqual(echoed, frame);

  // Closing the client closes the upstream side too, and the tunnel is no longer counted.
  assert.equal(proxy.inFlight("ws-0"), 1);
  socket.destroy();
  await waitFor(() => sockets.size === 0 && proxy.inFlight("ws-0") === 0, { what: "upstream side closed" });
});

test("an upgrade with no endpoint gets 503; with a dead one, 502", async (t) => {
  const request =
    "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  const empty = await startProxy(t);
  assert.match(await rawExchange(empty.port, request), /^HTTP\/1\.1 503 [\s\S]*"reason":"no-endpoints"/);

  const dead = await startProxy(t, { endpoints: [endpointOf({ name: "ws-dead", port: await deadPort() })] });
  assert.match(await rawExchange(dead.port, request), /^HTTP\/1\.1 502 [\s\S]*"upstream-failed"/);
});
