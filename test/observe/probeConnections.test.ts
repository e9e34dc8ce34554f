/**
 * Kept-alive probe connections (issue 15): reuse must change what a probe costs, never what it
 * sees. A hung server still fails on the probe's timeout, a server that closes or resets its
 * connections is still probed correctly, odd but valid answers are read to their end or not kept,
 * and a restarted instance on the same port is probed on new connections.
 */

import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createTcpServer, type Socket } from "node:net";
import { describe, test } from "node:test";
import { processState } from "../../src/lib/procStat.ts";
import { httpProbe } from "../../src/observe/httpProbe.ts";
import { ProbeConnections } from "../../src/observe/probeConnections.ts";
import { runProbe } from "../../src/observe/probeRunner.ts";
import { Prober } from "../../src/observe/prober.ts";
import type { ProbeTarget } from "../../src/observe/probeTarget.ts";
import type { ProbeCheck, ProbeSpec } from "../../src/spec/model.ts";
import { waitFor } from "../helpers/waitFor.ts";
import { type ChildServer, killChildServer, startChildServer } from "./fixtures/childServer.ts";

/** Timer latency on a loaded 2-core machine: generous on purpose. */
const SLACK_MS = 1500;

interface Cleanup {
  after(fn: () => Promise<void> | void): void;
}

type HttpCheck = Extract<ProbeCheck, { kind: "http" }>;

function check(path: string): HttpCheck {
  return { kind: "http", path, expectStatus: [200, 399] };
}

function targetOn(port: number): ProbeTarget {
  return { host: "127.0.0.1", port, cwd: process.cwd(), env: {} };
}

/** Connections kept for one test, closed when it ends. */
function pool(t: Cleanup): ProbeConnections {
  const connections = new ProbeConnections();
  t.after(() => connections.close());
  return connections;
}

/** An in-process HTTP server that counts connections and the ones still open. */
async function countingServer(
  t: Cleanup,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  keepAliveTimeoutMs?: number,
): Promise<{ port: number; connections: () => number; open: () => number }> {
  let connections = 0;
  let open = 0;
  const server = createServer(handler);
  if (keepAliveTimeoutMs !== undefined) server.keepAliveTimeout = keepAliveTimeoutMs;
  server.on("connection", (socket: Socket) => {
    connections++;
    open++;
    socket.on("close", () => open--);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  return { port: address.port, connections: () => connections, open: () => open };
}

/**
 * A raw TCP server: `answer(requestNumberOnThisConnection, socket)` writes whatever bytes it
 * likes for each request head it receives.
 */
async function rawServer(
  t: Cleanup,
  answer: (nth: number, socket: Socket) => void,
): Promise<{ port: number; connections: () => number }> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let buffered = "";
    let nth = 0;
    socket.on("data", (chunk) => {
      buffered += chunk.toString("latin1");
      let end = buffered.indexOf("\r\n\r\n");
      while (end >= 0) {
        buffered = buffered.slice(end + 4);
        nth++;
        answer(nth, socket);
        end = buffered.indexOf("\r\n\r\n");
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  return { port: address.port, connections: () => connections };
}

async function stats(
  server: ChildServer,
): Promise<{ pid: number; probeConnections: number; probeRequests: number }> {
  const response = await fetch(`http://127.0.0.1:${server.port}/stats`);
  return (await response.json()) as { pid: number; probeConnections: number; probeRequests: number };
}

describe("kept-alive HTTP probes", () => {
  test("probes of one instance run reuse one connection; without a connection set, each probe has its own", async (t) => {
    const server = await countingServer(t, (_req, res) => res.end("ok"));
    const connections = pool(t);
    for (let k = 0; k < 5; k++) {
      const outcome = await httpProbe(check("/"), targetOn(server.port), 2000, connections);
      assert.equal(outcome.ok, true, outcome.detail);
    }
    assert.equal(server.connections(), 1);
    assert.equal(connections.idleCount(), 1);
    for (let k = 0; k < 3; k++)
      assert.equal((await httpProbe(check("/"), targetOn(server.port), 2000)).ok, true);
    assert.equal(server.connections(), 4);
    // The unpooled ones are closed by the probe itself.
    await waitFor(() => server.open() === 1, { what: "the unpooled connections to close" });
    connections.close();
    await waitFor(() => server.open() === 0, { what: "close() to close the kept connection" });
  });

  test("a hung server (SIGSTOP) fails a probe on a kept connection within its timeout, and that connection is not reused", async (t) => {
    const server = await startChildServer(t);
    const connections = pool(t);
    for (let k = 0; k < 2; k++) {
      const outcome = await httpProbe(check("/healthz"), targetOn(server.port), 2000, connections);
      assert.equal(outcome.ok, true, outcome.detail);
    }
    assert.equal(connections.idleCount(), 1, "a connection is kept before the hang");

    process.kill(server.pid, "SIGSTOP");
    await waitFor(() => processState(server.pid) === "T", { what: "the server to be stopped" });
    const started = performance.now();
    const outcome = await httpProbe(check("/healthz"), targetOn(server.port), 400, connections);
    const elapsed = performance.now() - started;
    assert.deepEqual([outcome.ok, outcome.detail], [false, "timeout after 400ms"]);
    assert.ok(elapsed >= 390 && elapsed < 400 + SLACK_MS, `resolved after ${elapsed}ms`);
    assert.equal(connections.idleCount(), 0, "the connection of a timed-out probe is destroyed");

    // Thawed, it answers again, on a new connection (the request the stopped process never read
    // was on the destroyed one).
    process.kill(server.pid, "SIGCONT");
    const before = await stats(server);
    const again = await httpProbe(check("/healthz"), targetOn(server.port), 2000, connections);
    assert.equal(again.ok, true, again.detail);
    const after = await stats(server);
    assert.equal(after.probeConnections, before.probeConnections + 1);
  });

  test("a server that answers `Connection: close` is probed on a new connection every time", async (t) => {
    const server = await countingServer(t, (_req, res) => {
      res.setHeader("connection", "close");
      res.end("ok");
    });
    const connections = pool(t);
    for (let k = 0; k < 3; k++) {
      assert.equal((await httpProbe(check("/"), targetOn(server.port), 2000, connections)).ok, true);
    }
    assert.equal(server.connections(), 3);
    assert.equal(connections.idleCount(), 0);
  });

  test("a kept connection the server closed while idle (its keep-alive timeout) is not used: the next probe passes on a new one", async (t) => {
    const server = await countingServer(t, (_req, res) => res.end("ok"), 100);
    const connections = pool(t);
    assert.equal((await httpProbe(check("/"), targetOn(server.port), 2000, connections)).ok, true);
    await waitFor(() => connections.idleCount() === 0, {
      what: "the server's close to reach the kept connection",
    });
    const outcome = await httpProbe(check("/"), targetOn(server.port), 2000, connections);
    assert.equal(outcome.ok, true, outcome.detail);
    assert.equal(server.connections(), 2);
  });

  test("a kept connection the server drops as the probe is sent is retried once on a new connection, within the timeout", async (t) => {
    // The first request on each connection is answered and kept alive; a second one on the same
    // connection is met with a reset: the race of a server closing an idle connection.
    const server = await rawServer(t, (nth, socket) => {
      if (nth === 1) socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
      else socket.resetAndDestroy();
    });
    const connections = pool(t);
    assert.equal((await httpProbe(check("/"), targetOn(server.port), 2000, connections)).ok, true);
    assert.equal(connections.idleCount(), 1);
    const outcome = await httpProbe(check("/"), targetOn(server.port), 2000, connections);
    assert.equal(outcome.ok, true, outcome.detail);
    assert.equal(server.connections(), 2);
  });

  test("a new connection closed without an answer fails as before (socket hang up), not retried", async (t) => {
    const server = await rawServer(t, (_nth, socket) => socket.end());
    const connections = pool(t);
    const outcome = await httpProbe(check("/"), targetOn(server.port), 2000, connections);
    assert.deepEqual([outcome.ok, outcome.detail], [false, "socket hang up"]);
    assert.equal(server.connections(), 1);
  });

  test("a restarted instance on the same port is probed on new connections (Prober: a new watch; a kept set: the dead connection is dropped)", async (t) => {
    const first = await startChildServer(t);
    const port = first.port;
    const connections = pool(t);
    assert.equal((await httpProbe(check("/healthz"), targetOn(port), 2000, connections)).ok, true);
    assert.equal(connections.idleCount(), 1);

    // The instance dies and a new process takes the same port.
    await killChildServer(first);
    const second = await startChildServer(t, port);
    const outcome = await httpProbe(check("/healthz"), targetOn(port), 2000, connections);
    assert.equal(outcome.ok, true, outcome.detail);
    const seen = await stats(second);
    assert.deepEqual([seen.pid, seen.probeConnections, seen.probeRequests], [second.pid, 1, 1]);

    // Through the Prober: the controller watches a restarted instance anew, and a new watch never
    // inherits a connection, even while the old process still answers on the port.
    const results: string[] = [];
    const prober = new Prober({ onChange: () => {}, onResult: (instance) => results.push(instance) });
    t.after(() => prober.stop());
    const spec: ProbeSpec = {
      check: check("/healthz"),
      intervalMs: 50,
      timeoutMs: 1000,
      failureThreshold: 3,
      successThreshold: 1,
      initialDelayMs: 0,
    };
    prober.watch("api-0", targetOn(port), { readiness: spec }, Date.now());
    await waitFor(() => results.length >= 3, { what: "three readiness probes" });
    const during = await stats(second);
    assert.equal(during.probeConnections, 2, "the watch's probes share one connection");
    prober.watch("api-0", targetOn(port), { readiness: spec }, Date.now());
    const mark = results.length;
    await waitFor(() => results.length >= mark + 3, { what: "three more readiness probes" });
    const after = await stats(second);
    assert.equal(after.probeConnections, 3, "the new watch opened its own connection");
  });

  test("answers framed by chunks, split across reads, or with a body to skip are read to their end and the connection kept", async (t) => {
    const server = await rawServer(t, (nth, socket) => {
      if (nth === 1) {
        socket.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
        setTimeout(() => socket.write("3;ext=1\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n"), 20);
      } else if (nth === 2) {
        socket.write("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 2");
        setTimeout(() => socket.write("04 No Content\r\n\r\n"), 20);
      } else if (nth === 3) {
        // A head split where the next read lands on the same bytes of the shared read buffer: the
        // part kept must be a copy (a view would read "Unavailable…" over its own start).
        socket.write("HTTP/1.1 503 Serv");
        setTimeout(() => socket.write("ice Unavailable\r\nContent-Length: 10\r\n\r\nnot"), 20);
        setTimeout(() => socket.write(" ready"), 20);
        setTimeout(() => socket.write("!"), 40);
      } else {
        socket.write("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
      }
    });
    const connections = pool(t);
    const outcomes = [];
    for (let k = 0; k < 4; k++) {
      outcomes.push(await httpProbe(check("/"), targetOn(server.port), 2000, connections));
      // The verdict comes with the head; the rest of the answer is read before the connection is kept.
      await waitFor(() => connections.idleCount() === 1, { what: `answer ${k + 1} read to its end` });
    }
    assert.deepEqual(
      outcomes.map((o) => [o.ok, o.detail]),
      [
        [true, undefined],
        [true, undefined],
        [false, "status 503"],
        [true, undefined],
      ],
    );
    assert.equal(server.connections(), 1);
  });

  test("answers that cannot be delimited, run too long or break the framing are not kept; the probe's verdict is unchanged", async (t) => {
    const bigBody = "x".repeat(70 * 1024);
    const server = await rawServer(t, (nth, socket) => {
      switch (nth) {
        case 1:
          // HTTP/1.0 style: the body ends when the server closes.
          socket.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nok");
          setTimeout(() => socket.end(), 20);
          return;
        default:
          return;
      }
    });
    const connections = pool(t);
    assert.equal((await httpProbe(check("/"), targetOn(server.port), 2000, connections)).ok, true);
    assert.equal(connections.idleCount(), 0);

    const big = await rawServer(t, (_nth, socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${bigBody.length}\r\n\r\n${bigBody}`);
    });
    assert.equal((await httpProbe(check("/"), targetOn(big.port), 2000, connections)).ok, true);
    await waitFor(() => connections.idleCount() === 0, {
      what: "the long answer's connection to be dropped",
    });
    assert.equal((await httpProbe(check("/"), targetOn(big.port), 2000, connections)).ok, true);
    assert.equal(big.connections(), 2);

    const extra = await rawServer(t, (_nth, socket) => {
      socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokGARBAGE");
    });
    assert.equal((await httpProbe(check("/"), targetOn(extra.port), 2000, connections)).ok, true);
    assert.equal((await httpProbe(check("/"), targetOn(extra.port), 2000, connections)).ok, true);
    assert.equal(extra.connections(), 2, "bytes beyond the answer: the connection is not reused");

    const stalled = await rawServer(t, (_nth, socket) => {
      socket.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
    });
    const started = performance.now();
    const outcome = await httpProbe(check("/"), targetOn(stalled.port), 300, connections);
    assert.equal(outcome.ok, true);
    assert.ok(performance.now() - started < 300, "the verdict does not wait for the body");
    assert.equal((await httpProbe(check("/"), targetOn(stalled.port), 300, connections)).ok, true);
    assert.equal(stalled.connections(), 2, "a body that never ends: its connection is not reused");
  });

  test("malformed answers fail the probe as node:http did", async (t) => {
    const server = await rawServer(t, (nth, socket) => {
      socket.end(nth === 1 ? "SSH-2.0-OpenSSH_9.6\r\n\r\n" : "");
    });
    const outcome = await httpProbe(check("/"), targetOn(server.port), 2000, pool(t));
    assert.deepEqual([outcome.ok, outcome.detail], [false, "Parse Error: Expected HTTP/"]);
    const refused = await runProbe(check("/ä path"), targetOn(server.port), 2000, pool(t));
    assert.deepEqual([refused.ok, refused.detail], [false, "Request path contains unescaped characters"]);
  });

  test("close() destroys idle connections at once and a lent one when its probe ends", async (t) => {
    let release: (() => void) | null = null;
    const server = await countingServer(t, (req, res) => {
      if (req.url === "/wait") release = () => res.end("ok");
      else res.end("ok");
    });
    const connections = new ProbeConnections();
    assert.equal((await httpProbe(check("/"), targetOn(server.port), 2000, connections)).ok, true);
    const waiting = httpProbe(check("/wait"), targetOn(server.port), 2000, connections);
    await waitFor(() => release !== null, { what: "the second probe to reach the server" });
    connections.close();
    assert.equal(connections.idleCount(), 0);
    (release as unknown as () => void)();
    assert.equal((await waiting).ok, true);
    await waitFor(() => server.open() === 0, { what: "every connection to close" });
  });

  test("an answer that arrived while this process was stalled past the timeout passes the probe", async (t) => {
    const server = await startChildServer(t);
    const pool = new ProbeConnections();
    t.after(() => pool.close());
    const check: ProbeCheck = { kind: "http", path: "/ready", expectStatus: [200, 399] };
    const where: ProbeTarget = { host: "127.0.0.1", port: server.port, cwd: process.cwd(), env: {} };
    // A first probe leaves a kept connection, so the next one sends its request at once.
    assert.equal((await runProbe(check, where, 1_000, pool)).ok, true);
    const pending = runProbe(check, where, 100, pool);
    // Stalled (as a busy machine stalls it) for three timeouts: the answer comes meanwhile.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
    const outcome = await pending;
    assert.equal(outcome.ok, true, `the answer was there: ${outcome.detail ?? ""}`);
  });
});
