/**
 * The proxy bench's native open-loop generator (bench/proxy/openloop.c), against a real local
 * server: every due request is sent and counted, HTTP framings are read right, a stall is charged
 * from the due time (no coordinated omission), and a request with no answer ends as a timeout.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ProcessLedger } from "../../bench/foundation/processes.ts";
import { startLoadgen } from "../../bench/proxy/loadgenProcess.ts";
import { buildNativeLoadgen, startNativeLoadgen } from "../../bench/proxy/nativeLoadgen.ts";
import type { OpenLoopOptions, OpenLoopResult } from "../../bench/proxy/openLoop.ts";

describe("native open-loop generator (openloop.c)", () => {
  let scratch: string;
  let binary: string;
  let server: Server;
  let port: number;
  const ledger = new ProcessLedger();
  const hanging = new Set<() => void>();

  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), "homeostat-openloop-test-"));
    binary = buildNativeLoadgen(scratch);
    server = createServer((req, res) => {
      const url = req.url ?? "/";
      if (url === "/") res.writeHead(200, { "content-type": "text/plain" }).end("hello");
      else if (url === "/chunked") {
        res.writeHead(200);
        res.write("part one, ");
        res.end("part two");
      } else if (url === "/close") res.writeHead(200, { connection: "close" }).end("bye");
      else if (url === "/error") res.writeHead(503).end("no");
      else if (url === "/slow") setTimeout(() => res.writeHead(200).end("late"), 100);
      else if (url === "/hang") hanging.add(() => res.destroy());
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen({ host: "127.0.0.1", port: 0 }, resolve));
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    for (const close of hanging) close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    ledger.sweep();
    rmSync(scratch, { recursive: true, force: true });
  });

  function optionsFor(path: string, overrides: Partial<OpenLoopOptions>): OpenLoopOptions {
    return {
      origin: `http://127.0.0.1:${port}`,
      path,
      ratePerSecond: 200,
      warmupMs: 100,
      durationMs: 500,
      connections: 32,
      timeoutMs: 5_000,
      records: false,
      keepHeaders: [],
      ...overrides,
    };
  }

  function run(path: string, overrides: Partial<OpenLoopOptions> = {}): Promise<OpenLoopResult> {
    return startNativeLoadgen(binary, optionsFor(path, overrides), scratch, ledger).result;
  }

  it("sends every due request and counts each answer, warm-up apart", async () => {
    const result = await run("/");
    assert.equal(result.due, 100); // 500 ms at 200 req/s
    assert.equal(result.warmup.due, 20);
    assert.equal(result.warmup.ok, 20);
    assert.equal(result.ok, 100);
    assert.deepEqual(result.statusCounts, { 200: 100 });
    assert.equal(result.errors, 0);
    assert.ok(result.latency !== null && result.latency.p50 < 50, `p50 ${result.latency?.p50} ms`);
  });

  it("reads chunked answers and answers that close the connection", async () => {
    const chunked = await run("/chunked");
    assert.equal(chunked.ok, 100);
    const closing = await run("/close");
    assert.equal(closing.ok, 100);
    assert.equal(closing.errors, 0);
  });

  it("counts another status apart from 2xx", async () => {
    const result = await run("/error");
    assert.equal(result.ok, 0);
    assert.equal(result.non2xx, 100);
    assert.deepEqual(result.statusCounts, { 503: 100 });
  });

  it("charges waiting for a connection from the due time, not from the send", async () => {
    // One connection, 100 ms answers, 20 requests due per second: each waits for the one before.
    const result = await run("/slow", { ratePerSecond: 20, warmupMs: 0, durationMs: 500, connections: 1 });
    assert.equal(result.ok, 10);
    const { latency, service, lateness } = result;
    assert.ok(latency && service && lateness);
    assert.ok(service.p50 >= 95, `service p50 ${service.p50} ms`);
    // Request k is sent about k × 50 ms late: the last one waited ~450 ms before it was sent.
    assert.ok(lateness.max >= 300, `lateness max ${lateness.max} ms`);
    assert.ok(latency.max >= lateness.max + 95, `latency max ${latency.max} ms`);
  });

  it("ends a request with no answer as a timeout", async () => {
    const result = await run("/hang", { ratePerSecond: 20, warmupMs: 0, durationMs: 250, timeoutMs: 300 });
    assert.equal(result.ok, 0);
    assert.equal(result.errors, 5);
    assert.deepEqual(result.errorCounts, { timeout: 5 });
  });

  it("reports like the Node generator the failover bench uses, which also keeps per-request records", async () => {
    const options = optionsFor("/", { records: true, keepHeaders: ["content-type"] });
    const run = startLoadgen(options, scratch, ledger);
    assert.ok((await run.started) > 0);
    const node = await run.result;
    const native = await startNativeLoadgen(binary, optionsFor("/", {}), scratch, ledger).result;
    for (const result of [node, native]) {
      assert.equal(result.due, 100);
      assert.equal(result.ok, 100);
      assert.equal(result.warmup.ok, 20);
    }
    assert.equal(node.records?.status.length, 100);
    assert.deepEqual(new Set(node.records?.headers["content-type"]), new Set(["text/plain"]));
  });
});
