/**
 * Upgrade (WebSocket and friends): the request head is rewritten and sent on a fresh TCP
 * connection, then bytes flow both ways untouched until either side closes. The upstream's
 * status line is read on the way past, so a refused or failed upgrade still counts as an attempt.
 */

import type { IncomingMessage } from "node:http";
import { connect, type Socket } from "node:net";
import type { Endpoint } from "../contracts.ts";
import type { AttemptFailure } from "./retryPolicy.ts";

/** Open a TCP connection to the endpoint, or say why not (connect error, or no answer in time). */
export function connectUpstream(endpoint: Endpoint, timeoutMs: number): Promise<Socket | AttemptFailure> {
  return new Promise((resolve) => {
    const socket = connect({ host: endpoint.address, port: endpoint.port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ outcome: "timeout" });
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.off("error", onError);
      resolve(socket);
    });
    const onError = (): void => {
      clearTimeout(timer);
      resolve({ outcome: "connect-error" });
    };
    socket.once("error", onError);
  });
}

/** The request head for the upstream, from the already rewritten header list. */
export function requestHead(req: IncomingMessage, headers: readonly string[]): string {
  let head = `${req.method} ${req.url} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return `${head}\r\n`;
}

/** The status code at the start of an HTTP/1.x response, or null when it is not one. */
export function statusOfResponse(firstBytes: Buffer): number | null {
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(firstBytes.subarray(0, 16).toString("latin1"));
  return match ? Number(match[1]) : null;
}

/**
 * Send the head (and any bytes the client already sent after it) and splice the two sockets.
 * `onStatus` gets the upstream's status (null if unreadable) once; the promise resolves when both
 * sides are closed. An error, end or close on either side closes the other.
 */
export function spliceTunnel(
  client: Socket,
  upstream: Socket,
  head: string,
  early: Buffer,
  onStatus: (status: number | null) => void,
): { closed: Promise<void>; destroy: () => void } {
  const destroy = (): void => {
    client.destroy();
    upstream.destroy();
  };
  const closed = new Promise<void>((resolve) => {
    let open = 2;
    const onClose = (): void => {
      destroy();
      if (--open === 0) resolve();
    };
    client.once("close", onClose);
    upstream.once("close", onClose);
  });
  client.on("error", destroy);
  upstream.on("error", destroy);
  upstream.once("data", (chunk: Buffer) => onStatus(statusOfResponse(chunk)));
  // Either side finishing ends the tunnel: what was already sent is flushed, then both close.
  // (Sockets from Node's server allow half-open connections; a tunnel has no use for one.)
  const finish = (): void => {
    client.destroySoon();
    upstream.destroySoon();
  };
  upstream.once("end", finish);
  client.once("end", finish);
  upstream.setNoDelay(true);
  upstream.write(head);
  if (early.length > 0) upstream.write(early);
  upstream.pipe(client, { end: false });
  client.pipe(upstream, { end: false });
  return { closed, destroy };
}
