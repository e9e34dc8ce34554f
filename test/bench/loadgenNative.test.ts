/**
 * The benches' native open-loop generator (bench/common/loadgen/openloop.c), against a real local
 * server: every due request is sent and counted, HTTP framings are read right, a wait for a
 * connection is charged as lateness from the due time (and the run marked invalid), a request
 * with no answer ends as a timeout, header classes go out in their pattern, response headers are
 * captured, and a stopped run ends with the requests due so far.
 */

import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  buildLoadgen,
  type LoadgenOptions,
  type LoadgenResult,
  startLoadgen,
} from "../../bench/common/loadgen/native.ts";
import { ProcessLedger } from "../../bench/foundation/processes.ts";
import { type LocalHttpServer, listenLocal } from "../helpers/localHttpServer.ts";

describe("native open-loop generator (openloop.c)", () => {
  let scratch: string;
  let binary: string;
  let server: LocalHttpServer;
  let port: number;
  const ledger = new ProcessLedger();
  const hanging = new Set<() => void>();

  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), "homeostat-loadgen-test-"));
    binary = buildLoadgen(scratch);
    server = await listenLocal((req, res) => {
      const url = req.url ?? "/";
      if (url === "/") res.writeHead(200, { "content-type": "text/plain" }).end("hello");
      else if (url === "/chunked") {
        res.writeHead(200);
        res.write("part one, ");
        res.end("part two");
      } else if (url === "/close") res.writeHead(200, { connection: "close" }).end("bye");
      else if (url === "/error") res.writeHead(503, { "x-homeostat-shed": "queue-full" }).end("no");
      else if (url === "/slow") setTimeout(() => res.writeHead(200).end("late"), 100);
      else if (url === "/hang") hanging.add(() => res.destroy());
      else if (url === "/echo") {
        const criticality = String(req.headers["x-homeostat-criticality"] ?? "none");
        res.writeHead(200, { "x-instance": `app-${criticality}`, "x-homeostat-attempts": "2" }).end();
      } else res.writeHead(404).end();
    });
    port = server.port;
  });

  after(async () => {
    for (const close of hanging) close();
    await server.close();
    ledger.sweep();
    rmSync(scratch, { recursive: true, force: true });
  });

  function optionsFor(path: string, overrides: Partial<LoadgenOptions>): LoadgenOptions {
    return {
      port,
      path,
      ratePerSecond: 200,
      warmupMs: 100,
      durationMs: 500,
      connections: 32,
      timeoutMs: 5_000,
      // A shared test machine: this test is about the generator's records, not its precision.
      bounds: { maxLatenessP99Ms: 50 },
      ...overrides,
    };
  }

  function run(path: string, overrides: Partial<LoadgenOptions> = {}): Promise<LoadgenResult> {
    return startLoadgen(binary, optionsFor(path, overrides), scratch, ledger).result;
  }

  it("sends every due request and counts each answer, warm-up apart", async () => {
    const result = await run("/", { records: true });
    assert.equal(result.due, 100); // 500 ms at 200 req/s
    assert.equal(result.warmup.due, 20);
    assert.equal(result.warmup.ok, 20);
    assert.equal(result.ok, 100);
    assert.equal(result.written, 100);
    assert.deepEqual(result.statusCounts, { 200: 100 });
    assert.equal(result.errors, 0);
    assert.equal(result.offeredRate, 200);
    assert.ok(result.achievedFraction > 0.9, `achieved ${result.achievedRate} req/s`);
    assert.ok(result.latency !== null && result.latency.p50 < 50, `p50 ${result.latency?.p50} ms`);
    assert.equal(result.valid, true, result.invalidReason ?? "");
    assert.equal(result.records?.status.length, 100);
    assert.ok(result.records!.dueMs.every((due, k) => result.records!.sentMs[k]! >= due));
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

  it("charges the wait for a capped connection as lateness from the due time, and marks the run invalid", async () => {
    // One connection, 100 ms answers, 20 requests due per second: each waits for the one before.
    const result = await run("/slow", { ratePerSecond: 20, warmupMs: 0, durationMs: 500, connections: 1 });
    assert.equal(result.ok, 10);
    const { latency, service, lateness } = result;
    assert.ok(latency && service && lateness);
    assert.ok(service.p50 >= 95, `service p50 ${service.p50} ms`);
    // Request k is written about k × 50 ms late: the last one waited ~450 ms for the connection.
    assert.ok(lateness.max >= 300, `lateness max ${lateness.max} ms`);
    assert.ok(lateness.p99 >= 300, `lateness p99 ${lateness.p99} ms`);
    assert.ok(latency.max >= lateness.max + 95, `latency max ${latency.max} ms`);
    // 10 requests written over ~1 s instead of 0.5 s.
    assert.ok(result.achievedRate < 15, `achieved ${result.achievedRate} req/s`);
    assert.equal(result.valid, false);
    assert.match(result.invalidReason!, /lateness p99/);
  });

  it("ends a request with no answer as a timeout", async () => {
    const result = await run("/hang", { ratePerSecond: 20, warmupMs: 0, durationMs: 250, timeoutMs: 300 });
    assert.equal(result.ok, 0);
    assert.equal(result.errors, 5);
    assert.deepEqual(result.errorCounts, { timeout: 5 });
    assert.equal(result.written, 5);
  });

  it("sends header classes in their pattern and captures response headers", async () => {
    const result = await run("/echo", {
      headerClasses: [
        { "x-homeostat-criticality": "critical" },
        { "x-homeostat-criticality": "sheddable", "x-extra": "1" },
      ],
      pattern: [0, 1, 1],
      captureHeaders: ["x-instance", "x-homeostat-attempts", "x-homeostat-shed"],
      records: true,
    });
    const records = result.records!;
    assert.equal(result.ok, 100);
    for (let k = 0; k < records.dueMs.length; k++) {
      const i = k + 20; // the warm-up's 20 come first in the pattern
      const expected = [0, 1, 1][i % 3]!;
      assert.equal(records.headerClass[k], expected);
      assert.equal(records.headers["x-instance"]![k], expected === 0 ? "app-critical" : "app-sheddable");
      assert.equal(records.headers["x-homeostat-attempts"]![k], "2");
      assert.equal(records.headers["x-homeostat-shed"]![k], null);
    }
  });

  it("stops on request: the requests due so far, answered, and no more", async () => {
    const options = optionsFor("/", { warmupMs: 0, durationMs: 60_000, startAtEpochMs: Date.now() + 100 });
    const load = startLoadgen(binary, options, scratch, ledger);
    const t0 = await load.started;
    assert.ok(Math.abs(t0 - options.startAtEpochMs!) < 1, `t0 ${t0} vs ${options.startAtEpochMs}`);
    await new Promise((resolve) => setTimeout(resolve, options.startAtEpochMs! + 500 - Date.now()));
    load.stop();
    const result = await load.result;
    assert.ok(result.due >= 80 && result.due <= 140, `due ${result.due}`);
    assert.equal(result.ok, result.due);
    assert.deepEqual(
      readdirSync(scratch).filter((f) => f.endsWith(".bin")),
      [],
      "the result file is removed",
    );
  });
});
