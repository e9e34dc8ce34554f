/**
 * No stall on a hung instance (issue 10): one of three instances is SIGSTOPped under load. GETs
 * already sent to it are hedged to another instance, so none waits out the per-try timeout; a
 * POST is never hedged (the hung instance may still act on it when it wakes up).
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { request } from "undici";
import {
  allInstances,
  demoFleetYaml,
  freePort,
  freePortRange,
  readyStatus,
  sandboxesCleanedAfter,
} from "../helpers/e2e.ts";
import { failures, steadyLoad } from "../helpers/steadyLoad.ts";
import { waitFor } from "../helpers/waitFor.ts";

const newSandbox = sandboxesCleanedAfter();

/** The default per-try timeout (docs/data-plane.md): what a request to a hung instance waits without hedging. */
const PER_TRY_TIMEOUT_MS = 2_000;

test("one instance SIGSTOPped: GETs are hedged and none waits out the per-try timeout; POSTs are not hedged", async () => {
  const box = await newSandbox();
  const basePort = await freePortRange(6);
  const port = await freePort();
  // Liveness tolerates the stop: what is tested is the data plane's own answer to a hung
  // instance, not the controller replacing it.
  const yaml = demoFleetYaml({ services: [{ name: "api", replicas: 3, basePort, port }] }).replace(
    /liveness: \{[^\n]*\}/,
    "liveness: { http: { path: /healthz }, interval: 1s, timeout: 500ms, failureThreshold: 60 }",
  );
  assert.match(yaml, /failureThreshold: 60/);
  const file = box.file("fleet.yaml", yaml);
  box.up(file);
  const status = await readyStatus(box, 3);
  const hung = allInstances(status).find((i) => i.name === "api-1")!.pid!;

  const load = steadyLoad({ port, rate: 150, connections: 15 });
  type Answer = { status: number; hedged: boolean; instance: string | null; ms: number };
  const posts: Answer[] = [];
  const gets: Answer[] = [];
  /** [stopped, resumed] of each round, for the steady load's requests sent in between. */
  const stops: [number, number][] = [];
  let stopped = false;
  let burst: Promise<void>[] = [];
  const resume = () => {
    if (!stopped) return;
    stopped = false;
    try {
      process.kill(hung, "SIGCONT");
    } catch {
      // already gone
    }
  };
  const send = async (method: "GET" | "POST", into: Answer[]): Promise<void> => {
    const started = Date.now();
    const response = await request(`http://127.0.0.1:${port}/`, {
      method,
      ...(method === "POST" ? { body: "{}", headers: { "content-type": "application/json" } } : {}),
      headersTimeout: 10_000,
    });
    await response.body.text();
    into.push({
      status: response.statusCode,
      hedged: response.headers["x-homeostat-hedged"] !== undefined,
      instance: (response.headers["x-homeostat-instance"] as string | undefined) ?? null,
      ms: Date.now() - started,
    });
  };
  /** A POST that reached the stopped instance: it waited out the per-try timeout there. */
  const waitedForHung = (p: Answer) =>
    p.ms >= PER_TRY_TIMEOUT_MS - 100 && (p.status === 504 || p.instance === "api-1");
  try {
    // Warm up: the hedge delay is learnt from the service's own latency.
    await waitFor(() => load.outcomes.length >= 300, { timeoutMs: 20_000, what: "warm-up requests" });
    // Which requests of a burst the balancer sends to the stopped instance before its in-flight
    // count turns it away is chance (it may be GETs only): a round is repeated, up to 4 times,
    // until both a GET and a POST have met the stopped instance, so neither claim below is vacuous.
    for (let round = 0; round < 4; round++) {
      const stoppedAt = Date.now();
      process.kill(hung, "SIGSTOP");
      stopped = true;
      // A burst of GETs and POSTs at once, interleaved: with every instance's in-flight count
      // rising together, the balancer sends some of each to the stopped instance before it can
      // tell that it stalled.
      burst = Array.from({ length: 24 }, (_, i) => (i % 2 === 0 ? send("GET", gets) : send("POST", posts)));
      await waitFor(() => Date.now() - stoppedAt >= 4_000, {
        timeoutMs: 10_000,
        what: "4 s with api-1 stopped",
      });
      resume();
      stops.push([stoppedAt, Date.now()]);
      await Promise.all(burst);
      if (gets.some((g) => g.hedged) && posts.some(waitedForHung)) break;
      // Let api-1 drain what it was sent and take traffic again before the next round.
      await waitFor(() => load.between(Date.now() - 1_000, Date.now()).some((o) => o.instance === "api-1"), {
        timeoutMs: 30_000,
        what: "api-1 serving again",
      });
    }
  } finally {
    resume();
    await Promise.allSettled(burst);
    await load.stop();
  }

  const during = stops.flatMap(([from, to]) => load.between(from, to));
  assert.ok(
    during.length >= 300 * stops.length,
    `load ran while api-1 was stopped (${during.length} requests)`,
  );
  assert.deepEqual(failures(during), [], "no GET failed");
  const slowest = Math.max(...during.map((o) => o.endedAt - o.sentAt));
  assert.ok(
    slowest < PER_TRY_TIMEOUT_MS,
    `no GET waited out the ${PER_TRY_TIMEOUT_MS} ms per-try timeout (slowest ${slowest} ms)`,
  );
  assert.equal(gets.length, 12 * stops.length);
  assert.deepEqual(
    gets.filter((g) => g.status !== 200),
    [],
    "every GET of the burst was answered",
  );
  assert.ok(
    gets.some((g) => g.hedged),
    `some GETs of the burst were hedged: ${JSON.stringify(gets.map((g) => [g.status, g.instance, g.ms, g.hedged]))}`,
  );
  assert.ok(
    Math.max(...gets.map((g) => g.ms)) < PER_TRY_TIMEOUT_MS,
    "no GET of the burst waited out the per-try timeout",
  );

  assert.equal(posts.length, 12 * stops.length);
  assert.deepEqual(
    posts.filter((p) => p.hedged),
    [],
    "no POST was hedged",
  );
  // A POST that reached the stopped instance waited for it (per-try timeout, not retried: it was
  // sent), instead of being sent a second time elsewhere.
  assert.ok(
    posts.some(waitedForHung),
    `a POST to the stopped instance waited for it: ${JSON.stringify(posts.map((p) => [p.status, p.instance, p.ms]))}`,
  );
});
