import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { createServer as createTcpServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { isProcessAlive, processState } from "../../src/lib/procStat.ts";
import { type ProbeTarget, runProbe } from "../../src/observe/probeRunner.ts";
import type { ProbeCheck } from "../../src/spec/model.ts";
import { waitFor } from "../helpers/waitFor.ts";
import { startChildServer } from "./fixtures/childServer.ts";

/** Timer latency and process spawning on a loaded 2-core machine: generous on purpose. */
const SLACK_MS = 1500;

function http(path: string, port?: number): ProbeCheck {
  return port === undefined
    ? { kind: "http", path, expectStatus: [200, 399] }
    : { kind: "http", path, port, expectStatus: [200, 399] };
}

function targetOn(port: number, cwd = process.cwd()): ProbeTarget {
  return { host: "127.0.0.1", port, cwd, env: {} };
}

async function listen(server: Server | ReturnType<typeof createTcpServer>): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  return address.port;
}

/** A port nothing listens on: bind an ephemeral one, then release it. */
async function freePort(): Promise<number> {
  const server = createTcpServer();
  const port = await listen(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("runProbe: http", () => {
  const server = createServer((req, res) => {
    if (req.url === "/ok") res.end("fine");
    else if (req.url === "/unavailable") {
      res.writeHead(503);
      res.end("no");
    } else if (req.url === "/slow") {
      // Never answers: the probe must give up on its own.
    } else if (req.url === "/stalled-body") {
      res.writeHead(200, { "content-length": "100" });
      res.write("partial");
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  let port = 0;
  before(async () => {
    port = await listen(server);
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test("a 200 passes", async () => {
    const outcome = await runProbe(http("/ok"), targetOn(port), 2000);
    assert.equal(outcome.ok, true);
    assert.equal(outcome.detail, undefined);
    assert.ok(outcome.durationMs >= 0 && outcome.durationMs < 2000 + SLACK_MS);
  });

  test("a 503 fails with the status as detail", async () => {
    const outcome = await runProbe(http("/unavailable"), targetOn(port), 2000);
    assert.equal(outcome.ok, false);
    assert.equal(outcome.detail, "status 503");
  });

  test("expectStatus is an inclusive range", async () => {
    const only503: ProbeCheck = { kind: "http", path: "/unavailable", expectStatus: [503, 503] };
    assert.equal((await runProbe(only503, targetOn(port), 2000)).ok, true);
    const only200: ProbeCheck = { kind: "http", path: "/ok", expectStatus: [200, 200] };
    assert.equal((await runProbe(only200, targetOn(port), 2000)).ok, true);
    const notFound = await runProbe(http("/missing"), targetOn(port), 2000);
    assert.deepEqual([notFound.ok, notFound.detail], [false, "status 404"]);
  });

  test("the check's own port overrides the target's", async () => {
    const outcome = await runProbe(http("/ok", port), targetOn(await freePort()), 2000);
    assert.equal(outcome.ok, true);
  });

  test("a server slower than the timeout fails with a timeout, on time", async () => {
    const started = performance.now();
    const outcome = await runProbe(http("/slow"), targetOn(port), 300);
    const elapsed = performance.now() - started;
    assert.equal(outcome.ok, false);
    assert.equal(outcome.detail, "timeout after 300ms");
    assert.ok(elapsed >= 290, `resolved too early: ${elapsed}ms`);
    assert.ok(elapsed < 300 + SLACK_MS, `resolved too late: ${elapsed}ms`);
  });

  test("a body that never completes does not hold the probe once the status is known", async () => {
    const outcome = await runProbe(http("/stalled-body"), targetOn(port), 5000);
    assert.equal(outcome.ok, true);
    assert.ok(outcome.durationMs < 5000, `waited for the body: ${outcome.durationMs}ms`);
  });

  test("a refused connection fails with the error code", async () => {
    const outcome = await runProbe(http("/ok"), targetOn(await freePort()), 2000);
    assert.equal(outcome.ok, false);
    assert.equal(outcome.detail, "connect ECONNREFUSED");
  });

  test("an invalid port fails instead of throwing", async () => {
    const outcome = await runProbe(http("/ok", 70_000), targetOn(port), 2000);
    assert.equal(outcome.ok, false);
    assert.match(outcome.detail ?? "", /port/i);
  });

  test("a SIGSTOPped server (accepts in the kernel, never answers) times out", async (t) => {
    const server = await startChildServer(t);
    const before = await runProbe(http("/healthz"), targetOn(server.port), 2000);
    assert.equal(before.ok, true, `server not healthy before the stop: ${before.detail}`);

    // The fixture's cleanup continues and kills it, even if an assertion below fails.
    process.kill(server.pid, "SIGSTOP");
    await waitFor(() => processState(server.pid) === "T", { what: "the server to be stopped" });

    const started = performance.now();
    const outcome = await runProbe(http("/healthz"), targetOn(server.port), 400);
    const elapsed = performance.now() - started;
    assert.equal(outcome.ok, false);
    assert.equal(outcome.detail, "timeout after 400ms");
    assert.ok(elapsed < 400 + SLACK_MS, `resolved too late: ${elapsed}ms`);

    // And the TCP probe cannot see it: the kernel still completes the handshake.
    const tcp = await runProbe({ kind: "tcp" }, targetOn(server.port), 2000);
    assert.equal(tcp.ok, true);
  });
});

describe("runProbe: tcp", () => {
  const server = createTcpServer((socket) => socket.destroy());
  let port = 0;
  before(async () => {
    port = await listen(server);
  });
  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test("an accepted connection passes", async () => {
    const outcome = await runProbe({ kind: "tcp" }, targetOn(port), 2000);
    assert.equal(outcome.ok, true);
    assert.equal(outcome.detail, undefined);
  });

  test("the check's own port overrides the target's", async () => {
    const outcome = await runProbe({ kind: "tcp", port }, targetOn(await freePort()), 2000);
    assert.equal(outcome.ok, true);
  });

  test("a refused connection fails with the error code", async () => {
    const outcome = await runProbe({ kind: "tcp" }, targetOn(await freePort()), 2000);
    assert.equal(outcome.ok, false);
    assert.equal(outcome.detail, "connect ECONNREFUSED");
  });
});

describe("runProbe: exec", () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "homeostat-exec-probe-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("exit 0 passes", async () => {
    const outcome = await runProbe({ kind: "exec", command: "true", args: [] }, targetOn(1, dir), 5000);
    assert.equal(outcome.ok, true);
    assert.equal(outcome.detail, undefined);
  });

  test("exit 1 fails with the exit code", async () => {
    const check: ProbeCheck = { kind: "exec", command: "sh", args: ["-c", "exit 1"] };
    const outcome = await runProbe(check, targetOn(1, dir), 5000);
    assert.equal(outcome.ok, false);
    assert.equal(outcome.detail, "exit 1");
  });

  test("runs in the target's cwd with the target's env overlaid", async () => {
    const check: ProbeCheck = {
      kind: "exec",
      command: "sh",
      args: ["-c", `[ "$(pwd)" = "${dir}" ] && [ "$PROBE_MARKER" = yes ] && [ -n "$PATH" ]`],
    };
    const withEnv = await runProbe(check, { ...targetOn(1, dir), env: { PROBE_MARKER: "yes" } }, 5000);
    assert.equal(withEnv.ok, true, withEnv.detail);
    const withoutEnv = await runProbe(check, targetOn(1, dir), 5000);
    assert.equal(withoutEnv.ok, false);
  });

  test("a missing command fails instead of throwing", async () => {
    const check: ProbeCheck = { kind: "exec", command: "homeostat-no-such-command", args: [] };
    const outcome = await runProbe(check, targetOn(1, dir), 5000);
    assert.equal(outcome.ok, false);
    assert.match(outcome.detail ?? "", /ENOENT/);
  });

  test("a command that outlives the timeout is killed, with its children, and the probe resolves on time", async () => {
    const pidFile = join(dir, "pids");
    // The shell starts a grandchild and waits: both must die, not just the direct child.
    const check: ProbeCheck = {
      kind: "exec",
      command: "sh",
      args: ["-c", `sleep 60 & echo "$$ $!" > ${pidFile}; wait`],
    };
    const started = performance.now();
    const outcome = await runProbe(check, targetOn(1, dir), 500);
    const elapsed = performance.now() - started;
    assert.equal(outcome.ok, false);
    assert.equal(outcome.detail, "timeout after 500ms");
    assert.ok(elapsed < 500 + SLACK_MS, `resolved too late: ${elapsed}ms`);

    const pids = readFileSync(pidFile, "utf8").trim().split(" ").map(Number);
    assert.equal(pids.length, 2);
    for (const pid of pids) {
      await waitFor(() => !isProcessAlive(pid, null), { what: `process ${pid} to be killed` });
    }
  });
});
