import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { test } from "node:test";
import {
  answerOk,
  answerStatus,
  deadPort,
  endpointOf,
  send,
  sendMany,
  startProxy,
  startUpstream,
  startUpstreams,
  traffic,
} from "./kit.ts";

/** Outlier detection off: these tests are about retries alone. */
const NO_EJECTION = { outlier: { consecutiveFailures: 1_000_000 } };

test("the retry budget caps retries against an upstream that always fails", async (t) => {
  const upstreams = await startUpstreams(t, "api", 3, answerStatus(503));
  const minPerSecond = 1;
  const windowMs = 10_000;
  const { client } = await startProxy(t, {
    traffic: traffic({
      ...NO_EJECTION,
      retries: {
        maxAttempts: 3,
        backoff: { initialMs: 1, maxMs: 2 },
        budget: { ratio: 0.2, windowMs, minPerSecond },
      },
    }),
    endpoints: upstreams.map((u) => endpointOf(u)),
  });

  const requests = 300;
  const replies = await sendMany(client, requests, 10);
  assert.ok(
    replies.every((r) => r.status === 503),
    "the upstream's 503 is passed through once retries are spent",
  );
  const hits = upstreams.reduce((sum, u) => sum + u.hits, 0);
  const floor = (minPerSecond * windowMs) / 1000;
  assert.ok(hits > requests, `some retries happened (${hits} upstream hits for ${requests} requests)`);
  assert.ok(
    hits <= 1.2 * requests + floor,
    `upstream hits ${hits} must stay within 1.2 × ${requests} + ${floor} (without a budget: up to ${3 * requests})`,
  );
  const retried = replies.filter((r) => r.headers["x-homeostat-attempts"] !== "1").length;
  assert.ok(retried > 0 && retried < requests);
});

test("a GET on 503 is retried on another instance", async (t) => {
  const bad = await startUpstream(t, "api-bad", answerStatus(503));
  const good = await startUpstream(t, "api-good");
  const { client } = await startProxy(t, {
    traffic: traffic(NO_EJECTION),
    endpoints: [endpointOf(bad), endpointOf(good)],
  });
  const replies = await sendMany(client, 40, 4);
  assert.ok(replies.every((r) => r.status === 200));
  assert.ok(replies.every((r) => r.headers["x-homeostat-instance"] === "api-good"));
  assert.ok(bad.hits > 0, "some first attempts went to the failing instance");
  assert.ok(replies.some((r) => r.headers["x-homeostat-attempts"] === "2"));
});

test("a GET on 500 is not retried: an application error is not transient", async (t) => {
  const broken = await startUpstream(t, "api-0", answerStatus(500));
  const good = await startUpstream(t, "api-1");
  const { client } = await startProxy(t, {
    traffic: traffic(NO_EJECTION),
    endpoints: [endpointOf(broken), endpointOf(good)],
  });
  const replies = await sendMany(client, 40, 4);
  const fromBroken = replies.filter((r) => r.headers["x-homeostat-instance"] === "api-0");
  assert.ok(fromBroken.length > 0);
  assert.ok(fromBroken.every((r) => r.status === 500 && r.headers["x-homeostat-attempts"] === "1"));
  assert.equal(broken.hits + good.hits, 40, "one upstream hit per request");
});

test("a POST on 503 is not retried (the upstream may have acted on it)", async (t) => {
  const bad = await startUpstream(t, "api-0", answerStatus(503));
  const { client } = await startProxy(t, { traffic: traffic(NO_EJECTION), endpoints: [endpointOf(bad)] });
  const reply = await send(client, { method: "POST", body: "order" });
  assert.equal(reply.status, 503);
  assert.equal(reply.headers["x-homeostat-attempts"], "1");
  assert.equal(bad.hits, 1);
});

test("a 503 the upstream shed itself is not retried", async (t) => {
  const shedding = await startUpstream(t, "api-0", (_req, res) => {
    res.statusCode = 503;
    res.setHeader("x-homeostat-shed", "over-limit");
    res.end();
  });
  const other = await startUpstream(t, "api-1", answerStatus(503));
  const { client } = await startProxy(t, {
    traffic: traffic(NO_EJECTION),
    endpoints: [endpointOf(shedding), endpointOf(other)],
  });
  const replies = await sendMany(client, 30, 3);
  const shed = replies.filter((r) => r.headers["x-homeostat-shed"] === "over-limit");
  assert.ok(shed.length > 0);
  assert.equal(shedding.hits, shed.length, "every request the upstream shed ended there, with its answer");
});

test("a POST is retried after a connect error: the upstream never saw it", async (t) => {
  const good = await startUpstream(t, "api-good");
  const dead = { name: "api-dead", port: await deadPort() };
  const { client, stats } = await startProxy(t, {
    traffic: traffic(NO_EJECTION),
    endpoints: [endpointOf(dead), endpointOf(good)],
  });
  const replies = await sendMany(client, 30, 3, { method: "POST", body: "order" });
  assert.ok(replies.every((r) => r.status === 200));
  assert.ok(replies.every((r) => r.headers["x-homeostat-instance"] === "api-good"));
  assert.ok(
    replies.some((r) => r.headers["x-homeostat-attempts"] === "2"),
    "some went to the dead port first",
  );
  assert.equal(good.hits, 30, "each request reached the live upstream exactly once");
  const deadAttempts = stats.window({ service: "api", instance: "api-dead", windowMs: 60_000 });
  assert.ok(deadAttempts.requests > 0 && deadAttempts.errors === deadAttempts.requests);
});

test("a POST with a streamed (chunked) body is never retried, even on a connect error", async (t) => {
  const dead = { name: "api-dead", port: await deadPort() };
  const { client } = await startProxy(t, { traffic: traffic(NO_EJECTION), endpoints: [endpointOf(dead)] });
  async function* body() {
    yield Buffer.from("part one");
  }
  const response = await client.request({ path: "/", method: "POST", body: Readable.from(body()) });
  const text = await response.body.text();
  assert.equal(response.statusCode, 502);
  assert.deepEqual(JSON.parse(text), {
    error: "upstream-failed",
    attempts: [{ instance: "api-dead", outcome: "connect-error" }],
  });
});

test("a per-try timeout moves the request to another instance", async (t) => {
  const hung = await startUpstream(t, "api-hung", () => {
    // Never answers.
  });
  const good = await startUpstream(t, "api-good", answerOk);
  const perTryTimeoutMs = 300;
  const { client } = await startProxy(t, {
    // No hedge (hedging.test.ts): the attempt at the hung instance waits out its per-try timeout.
    traffic: traffic({ ...NO_EJECTION, retries: { perTryTimeoutMs }, hedging: { enabled: false } }),
    endpoints: [endpointOf(hung), endpointOf(good)],
  });
  const started = performance.now();
  const replies = await sendMany(client, 12, 4);
  assert.ok(replies.every((r) => r.status === 200 && r.headers["x-homeostat-instance"] === "api-good"));
  const retried = replies.filter((r) => r.headers["x-homeostat-attempts"] === "2");
  assert.ok(
    retried.length > 0 && hung.hits === retried.length,
    "every request that hit the hung one was retried",
  );
  assert.ok(performance.now() - started >= perTryTimeoutMs);
});

test("every attempt failing without an answer: 502 naming the attempts, 504 when the last timed out", async (t) => {
  const dead = [
    { name: "api-0", port: await deadPort() },
    { name: "api-1", port: await deadPort() },
  ];
  const down = await startProxy(t, {
    traffic: traffic(NO_EJECTION),
    endpoints: dead.map((d) => endpointOf(d)),
  });
  const reply = await send(down.client);
  assert.equal(reply.status, 502);
  const body = JSON.parse(reply.body) as { attempts: { instance: string; outcome: string }[] };
  assert.equal(body.attempts.length, 3, "maxAttempts 3");
  assert.ok(body.attempts.every((a) => a.outcome === "connect-error"));
  assert.deepEqual(new Set(body.attempts.slice(0, 2).map((a) => a.instance)), new Set(["api-0", "api-1"]));

  const hung = await startUpstream(t, "api-hung", () => {});
  const slow = await startProxy(t, {
    traffic: traffic({ ...NO_EJECTION, retries: { perTryTimeoutMs: 200, maxAttempts: 2 } }),
    endpoints: [endpointOf(hung)],
  });
  const timedOut = await send(slow.client);
  assert.equal(timedOut.status, 504);
  assert.deepEqual(JSON.parse(timedOut.body), {
    error: "upstream-timeout",
    attempts: [
      { instance: "api-hung", outcome: "timeout" },
      { instance: "api-hung", outcome: "timeout" },
    ],
  });
});

test("the whole-request deadline bounds all attempts together", async (t) => {
  const hung = await startUpstream(t, "api-hung", () => {});
  const { client } = await startProxy(t, {
    traffic: traffic({ ...NO_EJECTION, requestTimeoutMs: 400, retries: { perTryTimeoutMs: 5_000 } }),
    endpoints: [endpointOf(hung)],
  });
  const started = performance.now();
  const reply = await send(client);
  const elapsed = performance.now() - started;
  assert.equal(reply.status, 504);
  assert.ok(elapsed >= 400 && elapsed < 4_000, `answered after ${Math.round(elapsed)} ms`);
});
