/**
 * The log sink of the "haproxy-log" contender: a TCP listener on 127.0.0.1 that takes the lines
 * HAProxy's log ring forwards and counts them, nothing else. It stands where the data plane's log
 * receiver stands for the managed HAProxy (pinned to the same CPU as the proxy), so
 * "haproxy-log ÷ haproxy" is the cost of the per-request log line itself and
 * "homeostat-haproxy ÷ haproxy-log" what the data plane does on top (parsing each line into its
 * statistics, its feed and reports).
 *
 * Prints `{"port":N}` once listening; on SIGUSR2 prints `{"lines":N}`; exits on SIGTERM.
 *
 * Run: `node bench/proxy/logSink.ts`
 */

import { createServer, type Socket } from "node:net";

let lines = 0;
const connections = new Set<Socket>();
const server = createServer((socket) => {
  connections.add(socket);
  socket.on("data", (chunk: Buffer) => {
    for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) lines++;
  });
  socket.on("error", () => {});
  socket.on("close", () => connections.delete(socket));
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`);
});
process.on("SIGUSR2", () => process.stdout.write(`${JSON.stringify({ lines })}\n`));
process.on("SIGTERM", () => {
  for (const socket of connections) socket.destroy();
  server.close(() => process.exit(0));
});
