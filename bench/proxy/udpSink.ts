/**
 * The log sink of the "haproxy-log" contender: a UDP socket on 127.0.0.1 that reads every datagram
 * HAProxy sends and counts them, nothing else. It stands where the data plane's log receiver stands
 * for the managed HAProxy (pinned to the same CPU as the proxy), so "haproxy-log ÷ haproxy" is the
 * cost of the per-request log line itself and "homeostat-haproxy ÷ haproxy-log" what the data plane
 * does on top (parsing each line into its statistics, its feed and reports).
 *
 * Prints `{"port":N}` once bound; on SIGUSR2 prints `{"datagrams":N}`; exits on SIGTERM.
 *
 * Run: `node bench/proxy/udpSink.ts`
 */

import { createSocket } from "node:dgram";

let datagrams = 0;
// The receive buffer the engine's log receiver asks for (src/dataplane/haproxy/logReceiver.ts).
const socket = createSocket({ type: "udp4", recvBufferSize: 4 * 1024 * 1024 });
socket.on("message", () => {
  datagrams++;
});
socket.bind(0, "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ port: socket.address().port })}\n`);
});
process.on("SIGUSR2", () => process.stdout.write(`${JSON.stringify({ datagrams })}\n`));
process.on("SIGTERM", () => socket.close(() => process.exit(0)));
