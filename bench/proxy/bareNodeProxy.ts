/**
 * A reference, not a product: the least a Node reverse proxy can do per request (node:http server,
 * undici Pool, the response streamed through), with no admission, balancing, retries, timeouts or
 * statistics. Measured next to Homeostat's ServiceProxy to split its cost into "Node's HTTP stack
 * on one thread" and "Homeostat's own per-request work".
 *
 *   node bench/proxy/bareNodeProxy.ts --port PORT --upstream-port PORT
 *
 * No backpressure either: the bench's responses are a few hundred bytes.
 */

import { createServer, type IncomingHttpHeaders } from "node:http";
import { parseArgs } from "node:util";
import { type Dispatcher, Pool } from "undici";
import { reportLoopDelayOnSignal } from "./loopDelay.ts";

/** Headers about one connection: never forwarded (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer"]);

const { values } = parseArgs({
  options: { port: { type: "string" }, "upstream-port": { type: "string" } },
  strict: true,
});
const port = Number(values.port);
const upstreamPort = Number(values["upstream-port"]);
const pool = new Pool(`http://127.0.0.1:${upstreamPort}`, { connections: 1024, pipelining: 1 });

const server = createServer((req, res) => {
  const headers: string[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if (!HOP_BY_HOP.has(raw[i]!.toLowerCase())) headers.push(raw[i]!, raw[i + 1]!);
  }
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart() {},
    onResponseStart(_controller, status, upstream: IncomingHttpHeaders) {
      for (const name of HOP_BY_HOP) delete upstream[name];
      res.writeHead(status, upstream);
    },
    onResponseData(_controller, chunk) {
      res.write(chunk);
    },
    onResponseEnd() {
      res.end();
    },
    onResponseError() {
      if (res.headersSent) res.destroy();
      else res.writeHead(502).end();
    },
  };
  pool.dispatch({ path: req.url ?? "/", method: req.method as Dispatcher.HttpMethod, headers }, handler);
});
reportLoopDelayOnSignal();
server.listen({ host: "127.0.0.1", port }, () =>
  process.stdout.write(`${JSON.stringify({ listening: port })}\n`),
);
for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, () => process.exit(0));
