import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { describe, test } from "node:test";
import { processState } from "../../src/lib/procStat.ts";
import type { InstanceHealth, ProbeResult } from "../../src/observe/health.ts";
import { Prober } from "../../src/observe/prober.ts";
import type { ProbeTarget } from "../../src/observe/probeTarget.ts";
import type { ProbeSpec } from "../../src/spec/model.ts";
import { waitFor } from "../helpers/waitFor.ts";
import { startChildServer } from "./fixtures/childServer.ts";

interface Cleanup {
  after(fn: () => Promise<void> | void): void;
}

function httpProbe(path: string, overrides: Partial<ProbeSpec> = {}): ProbeSpec {
  return {
    check: { kind: "http", path, expectStatus: [200, 399] },
    intervalMs: 100,
    timeoutMs: 1000,
    failureThreshold: 3,
    successThreshold: 1,
    initialDelayMs: 0,
    ...overrides,
  };
}

function target(port: number): ProbeTarget {
  return { host: "127.0.0.1", port, cwd: process.cwd(), env: {} };
}

/** Records everything a Prober reports, and stops it when the test ends. */
function recordingProber(t: Cleanup): {
  prober: Prober;
  results: Array<{ instance: string; result: ProbeResult }>;
  /** `at`: when the change was reported (epoch ms). */
  changes: Array<{ instance: string; health: InstanceHealth; previous: InstanceHealth; at: number }>;
} {
  const results: Array<{ instance: string; result: ProbeResult }> = [];
  const changes: Array<{ instance: string; health: InstanceHealth; previous: InstanceHealth; at: number }> =
    [];
  const prober = new Prober({
    onChange: (instance, health, previous) => changes.push({ instance, health, previous, at: Date.now() }),
    onResult: (instance, result) => results.push({ instance, result }),
  });
  t.after(() => prober.stop());
  return { prober, results, changes };
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** An in-process HTTP server on an ephemeral loopback port, closed when the test ends. */
async function serve(t: Cleanup, handler: Handler): Promise<number> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  return address.port;
}

/** Asserting an absence needs a window: wait it out, then check nothing happened. */
function quietWindow(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe("Prober", () => {
  test("detects a SIGSTOPped server as unhealthy by liveness within the documented bound", async (t) => {
    const server = await startChildServer(t);
    const { prober, changes, results } = recordingProber(t);
    // interval = timeout: the spaced-out and the back-to-back cases of the bound coincide, and
    // a prober that waits an interval after a run *ended* (not started) takes a full second
    // longer than the bound — twice the slack below.
    const liveness = httpProbe("/healthz", { intervalMs: 500, timeoutMs: 500, failureThreshold: 3 });
    const probes = {
      startup: httpProbe("/healthz", { intervalMs: 100, timeoutMs: 500, failureThreshold: 50 }),
      readiness: httpProbe("/ready", { intervalMs: 200, timeoutMs: 300, failureThreshold: 2 }),
      liveness,
    };
    prober.watch("app-0", target(server.port), probes, Date.now());
    assert.equal(prober.health("app-0")?.state, "starting");

    await waitFor(() => prober.health("app-0")?.state === "ready", { what: "ready", timeoutMs: 15_000 });
    assert.deepEqual(changes[0]?.previous.state, "starting");
    assert.deepEqual(changes[0]?.health.state, "ready");
    // Let liveness pass at least once, so the bound is measured from a good liveness probe.
    await waitFor(() => results.some((r) => r.result.kind === "liveness" && r.result.ok), {
      what: "a passing liveness probe",
    });

    process.kill(server.pid, "SIGSTOP");
    await waitFor(() => processState(server.pid) === "T", { what: "the server to be stopped" });
    const stoppedAt = Date.now();

    // The documented bound (src/observe/prober.ts), from the last good liveness probe's start:
    // the first failing probe starts an interval later, each next one max(interval, timeout)
    // after the previous one started, and the last fails a timeout after it started.
    const { intervalMs, timeoutMs, failureThreshold } = liveness;
    const bound = intervalMs + (failureThreshold - 1) * Math.max(intervalMs, timeoutMs) + timeoutMs;
    // Timer and event-loop latency over the four timers on the path, on a loaded 2-core machine:
    // one probe interval in all (a quarter of the bound), not a multiple of the bound.
    const slack = intervalMs;
    const health = await waitFor(
      () => {
        const h = prober.health("app-0");
        return h?.state === "unhealthy" ? h : undefined;
      },
      { what: "unhealthy", timeoutMs: 3 * bound },
    );
    const change = changes.at(-1)!;
    assert.equal(change.health, health);
    assert.equal(health.reason, "liveness: 3 consecutive failures (timeout after 500ms)");
    assert.ok(
      health.lastGoodAt !== null && health.lastGoodAt <= stoppedAt,
      "the last good probe came after the stop",
    );
    const lastGoodAt = health.lastGoodAt;

    // Exactly the threshold's failures since the last good probe, each one a timeout.
    const failures = results.map((r) => r.result).filter((r) => r.kind === "liveness" && r.at > lastGoodAt);
    assert.equal(failures.length, failureThreshold, JSON.stringify(failures));
    for (const failure of failures) {
      assert.equal(failure.ok, false);
      assert.ok(
        failure.durationMs >= timeoutMs - 5,
        `a failure took ${failure.durationMs}ms, under the timeout`,
      );
    }
    assert.equal(health.since, failures.at(-1)!.at);

    // Detected within the bound (plus one interval of latency), and not sooner than the probe
    // settings allow (failures an interval apart, each waiting out its timeout).
    const detectionMs = change.at - lastGoodAt;
    t.diagnostic(`unhealthy ${detectionMs}ms after the last good probe (bound ${bound}ms)`);
    assert.ok(
      detectionMs <= bound + slack,
      `unhealthy ${detectionMs}ms after the last good probe; bound ${bound}ms + ${slack}ms slack ` +
        `(failing probes started ${failures.map((f) => f.at - lastGoodAt).join(", ")}ms after it)`,
    );
    assert.ok(detectionMs >= bound - 20, `unhealthy after only ${detectionMs}ms; bound ${bound}ms`);
    assert.ok(
      change.at - stoppedAt <= bound + slack,
      `unhealthy ${change.at - stoppedAt}ms after the stop; bound ${bound}ms + ${slack}ms slack`,
    );

    // Terminal: nothing is probed any more (two intervals with nothing new).
    const resultCount = results.length;
    await quietWindow(2 * intervalMs);
    assert.equal(results.length, resultCount, "probes kept running after unhealthy");
  });

  test("honours initialDelayMs and holds readiness and liveness until startup passes", async (t) => {
    let startupRequests = 0;
    const port = await serve(t, (req, res) => {
      if (req.url === "/startup") startupRequests++;
      // Startup fails twice before passing.
      res.writeHead(req.url === "/startup" && startupRequests <= 2 ? 503 : 200);
      res.end();
    });
    const { prober, results } = recordingProber(t);
    const startedAt = Date.now();
    prober.watch(
      "app-0",
      target(port),
      {
        startup: httpProbe("/startup", { intervalMs: 50, failureThreshold: 10, initialDelayMs: 300 }),
        readiness: httpProbe("/ready", { intervalMs: 50 }),
        liveness: httpProbe("/live", { intervalMs: 50 }),
      },
      startedAt,
    );
    await waitFor(() => results.filter((r) => r.result.kind === "liveness").length >= 3, {
      what: "three liveness results",
    });
    assert.equal(prober.health("app-0")?.state, "ready");

    const kinds = results.map((r) => `${r.result.kind}:${r.result.ok}`);
    assert.deepEqual(kinds.slice(0, 3), ["startup:false", "startup:false", "startup:true"]);
    assert.ok(!kinds.slice(3).some((k) => k.startsWith("startup")), "startup kept running after passing");
    assert.ok(results[0]!.result.at >= startedAt + 300, "ran before initialDelayMs");
    assert.equal(startupRequests, 3);
  });

  test("runs each probe interval after the previous run started, never overlapping", async (t) => {
    let inFlight = 0;
    let maxInFlight = 0;
    const port = await serve(t, (req, res) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const delay = req.url === "/slower-than-interval" ? 250 : 200;
      setTimeout(() => {
        inFlight--;
        res.end();
      }, delay);
    });
    const { prober, results } = recordingProber(t);
    const livenessOf = (instance: string) =>
      results.filter((r) => r.instance === instance).map((r) => r.result);

    // Interval 400ms, runs take ~200ms: starts ~400ms apart (from start), not ~600 (from end).
    prober.watch("paced", target(port), { liveness: httpProbe("/paced", { intervalMs: 400 }) }, Date.now());
    // Interval 100ms, runs take ~250ms: back to back, never two at once.
    prober.watch(
      "overrun",
      target(port),
      { liveness: httpProbe("/slower-than-interval", { intervalMs: 100 }) },
      Date.now(),
    );
    await waitFor(() => livenessOf("paced").length >= 6 && livenessOf("overrun").length >= 6, {
      what: "six results each",
      timeoutMs: 20_000,
    });
    prober.stop();

    const paced = livenessOf("paced");
    const gaps = paced.slice(1).map((r, i) => r.at - paced[i]!.at);
    const median = gaps.toSorted((a, b) => a - b)[Math.floor(gaps.length / 2)]!;
    assert.ok(median >= 390 && median < 520, `median start-to-start gap ${median}ms (gaps ${gaps})`);

    const overrun = livenessOf("overrun");
    for (let i = 1; i < overrun.length; i++) {
      const previousEnd = overrun[i - 1]!.at + overrun[i - 1]!.durationMs;
      assert.ok(overrun[i]!.at >= Math.floor(previousEnd) - 1, `run ${i} started before run ${i - 1} ended`);
    }
    // Only one request per chain at a time: at most one per instance, so two overall.
    assert.ok(maxInFlight <= 2, `${maxInFlight} requests in flight at once`);
  });

  test("unwatch cancels the timers and drops the result of a run in flight", async (t) => {
    let unwatchedRequests = 0;
    const { prober, results, changes } = recordingProber(t);
    const port = await serve(t, (req, res) => {
      if (req.url === "/unwatch-me") {
        unwatchedRequests++;
        // The run is in flight: unwatch before answering, then answer with a failure that would
        // (with failureThreshold 1) make the instance unhealthy if it were applied.
        prober.unwatch("doomed");
        res.writeHead(503);
      }
      res.end();
    });
    const failFast = { failureThreshold: 1, intervalMs: 50 };
    prober.watch("doomed", target(port), { liveness: httpProbe("/unwatch-me", failFast) }, Date.now());
    prober.watch("witness", target(port), { liveness: httpProbe("/ok", { intervalMs: 50 }) }, Date.now());

    await waitFor(() => unwatchedRequests === 1, { what: "the in-flight request" });
    assert.equal(prober.health("doomed"), undefined);
    // The witness, probing the same server afterwards, proves time has passed for the dropped result.
    const witnessResults = () => results.filter((r) => r.instance === "witness").length;
    const witnessSeen = witnessResults();
    await waitFor(() => witnessResults() >= witnessSeen + 5, {
      what: "more witness results",
    });
    await quietWindow(300);
    assert.deepEqual(
      results.filter((r) => r.instance === "doomed"),
      [],
    );
    assert.deepEqual(changes, []);
    assert.equal(unwatchedRequests, 1, "probing continued after unwatch");
  });

  test("stop() unwatches everything and no probe runs afterwards", async (t) => {
    let requests = 0;
    const port = await serve(t, (_req, res) => {
      requests++;
      res.end();
    });
    const { prober, results } = recordingProber(t);
    prober.watch("a-0", target(port), { liveness: httpProbe("/a", { intervalMs: 30 }) }, Date.now());
    prober.watch("b-0", target(port), { readiness: httpProbe("/b", { intervalMs: 30 }) }, Date.now());
    await waitFor(() => results.length >= 4, { what: "some results" });

    prober.stop();
    assert.equal(prober.health("a-0"), undefined);
    assert.equal(prober.health("b-0"), undefined);
    const seen = { requests, results: results.length };
    await quietWindow(500);
    // At most the runs already in flight reached the server; none was reported.
    assert.ok(requests <= seen.requests + 2, `${requests - seen.requests} requests after stop`);
    assert.equal(results.length, seen.results);
  });

  test("an instance with no probes is ready at once, with no change reported", (t) => {
    const { prober, changes } = recordingProber(t);
    prober.watch("plain-0", target(1), {}, 1234);
    assert.deepEqual(prober.health("plain-0"), {
      state: "ready",
      lastGoodAt: 1234,
      since: 1234,
      reason: "running (no probes)",
    });
    assert.deepEqual(changes, []);
    assert.equal(prober.health("unknown"), undefined);
  });

  test("watching an instance again replaces its previous watch", async (t) => {
    const hits = { old: 0, new: 0 };
    const port = await serve(t, (req, res) => {
      if (req.url === "/old") hits.old++;
      if (req.url === "/new") hits.new++;
      res.end();
    });
    const { prober } = recordingProber(t);
    prober.watch("app-0", target(port), { liveness: httpProbe("/old", { intervalMs: 30 }) }, Date.now());
    await waitFor(() => hits.old >= 2, { what: "the old watch to run" });
    prober.watch("app-0", target(port), { liveness: httpProbe("/new", { intervalMs: 30 }) }, Date.now());
    const oldHits = hits.old;
    await waitFor(() => hits.new >= 5, { what: "the new watch to run" });
    assert.ok(hits.old <= oldHits + 1, "the old chain kept running");
  });

  test("counts every probe it runs, by kind and outcome (the controller's homeostat_controller_probes_total)", async (t) => {
    let failReadiness = true;
    const port = await serve(t, (req, res) => {
      res.statusCode = req.url === "/ready" && failReadiness ? 503 : 200;
      res.end();
    });
    const { prober, results } = recordingProber(t);
    prober.watch(
      "app-0",
      target(port),
      {
        startup: httpProbe("/healthz", { intervalMs: 20 }),
        readiness: httpProbe("/ready", { intervalMs: 20, failureThreshold: 100 }),
        liveness: httpProbe("/healthz", { intervalMs: 20 }),
      },
      Date.now(),
    );
    await waitFor(() => results.filter((r) => r.result.kind === "readiness").length >= 2, {
      what: "failing readiness probes",
    });
    failReadiness = false;
    await waitFor(() => results.filter((r) => r.result.kind === "readiness" && r.result.ok).length >= 2, {
      what: "passing readiness probes",
    });
    prober.stop();
    const counts = prober.counts();
    const tally = (kind: string, ok: boolean) =>
      results.filter((r) => r.result.kind === kind && r.result.ok === ok).length;
    // Every reported result was counted; a run in flight at stop() may be counted and not reported.
    for (const kind of ["startup", "readiness", "liveness"] as const) {
      assert.ok(counts[kind].ok >= tally(kind, true) && counts[kind].ok <= tally(kind, true) + 1, kind);
      assert.ok(counts[kind].failed >= tally(kind, false) && counts[kind].failed <= tally(kind, false) + 1);
    }
    assert.equal(counts.startup.ok, 1);
    assert.ok(counts.readiness.failed >= 2 && counts.readiness.ok >= 2 && counts.liveness.ok >= 1);
    counts.liveness.ok = -1;
    assert.notEqual(prober.counts().liveness.ok, -1, "counts() is a copy");
  });
});
