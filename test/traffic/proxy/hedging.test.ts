/**
 * Hedging through the real proxy: real upstream servers on 127.0.0.1, one of them hung (it
 * accepts and reads the request, and never answers). Bounds are derived from the settings: the
 * per-try timeout is long, the hedge delay short, so an answer well inside the per-try timeout can
 * only have come from a hedge.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import type { TrafficSpec } from "../../../src/spec/model.ts";
import { waitFor } from "../../helpers/waitFor.ts";
import { type Cleanup, endpointOf, type Reply, send, startProxy, startUpstream, traffic } from "./kit.ts";

const PER_TRY_TIMEOUT_MS = 3_000;
const HEDGE_DELAY_MS = 30;

/** Settings of these tests: a long per-try timeout, a short fixed hedge delay, no ejection, no stall detection. */
function hedgingTraffic(overrides: Parameters<typeof traffic>[0] = {}): TrafficSpec {
  return traffic({
    outlier: { consecutiveFailures: 1_000_000 },
    stallDetection: { enabled: false },
    drainTimeoutMs: 200,
    ...overrides,
    retries: { perTryTimeoutMs: PER_TRY_TIMEOUT_MS, ...overrides.retries },
    hedging: { delayMs: HEDGE_DELAY_MS, ...overrides.hedging },
  });
}

interface Timed extends Reply {
  ms: number;
}

/**
 * A hung instance and a healthy one behind a proxy with `settings`; `count` requests sent at once
 * (two-choices alternates them between the two instances, so about half start at the hung one).
 */
async function hungScenario(
  t: Cleanup,
  settings: TrafficSpec,
  options: { count?: number; method?: string } = {},
) {
  let closedAtHung = 0;
  const hung = await startUpstream(t, "api-hung", (req) => {
    req.resume();
    req.socket.once("close", () => closedAtHung++);
  });
  const good = await startUpstream(t, "api-good");
  const running = await startProxy(t, { traffic: settings, endpoints: [endpointOf(hung), endpointOf(good)] });
  const method = options.method ?? "GET";
  const timed = async (): Promise<Timed> => {
    const started = performance.now();
    const reply = await send(running.client, { method, ...(method === "POST" ? { body: "order" } : {}) });
    return { ...reply, ms: performance.now() - started };
  };
  const replies = await Promise.all(Array.from({ length: options.count ?? 8 }, timed));
  return { ...running, hung, good, replies, closedAtHung: () => closedAtHung };
}

function hedgingState(state: Record<string, unknown>) {
  return state.hedging as {
    sent: number;
    won: number;
    refusedByBudget: number;
    cancelled: number;
    delayMs: number;
  };
}

test("a GET stuck at a hung instance is hedged to another and answered well before the per-try timeout", async (t) => {
  const { replies, hung, proxy } = await hungScenario(t, hedgingTraffic());
  assert.ok(hung.hits > 0, "some requests started at the hung instance");
  assert.ok(
    replies.every((r) => r.status === 200 && r.headers["x-homeostat-instance"] === "api-good"),
    "every request answered by the healthy instance",
  );
  const hedged = replies.filter((r) => r.headers["x-homeostat-hedged"] === "1");
  // An attempt still connecting when its hedge went out may be cancelled before the hung server
  // saw it: it was hedged all the same.
  assert.ok(hedged.length >= hung.hits, `${hedged.length} hedged, ${hung.hits} reached the hung instance`);
  assert.ok(hedged.length < replies.length, "the requests that started at the healthy one were not hedged");
  assert.ok(hedged.every((r) => r.headers["x-homeostat-attempts"] === "2"));
  const slowest = Math.max(...replies.map((r) => r.ms));
  assert.ok(
    slowest < PER_TRY_TIMEOUT_MS / 2,
    `slowest answer ${Math.round(slowest)}ms, hedge delay ${HEDGE_DELAY_MS}ms, per-try timeout ${PER_TRY_TIMEOUT_MS}ms`,
  );
  const state = hedgingState(proxy.state());
  assert.equal(state.sent, hedged.length);
  // A first answer of the healthy instance slower than the hedge delay (a cold start) is hedged
  // too, to the hung one, and wins: most hedges win, not necessarily all.
  assert.ok(state.won >= 1 && state.won <= state.sent, `${state.won} of ${state.sent} hedges won`);
  assert.equal(state.delayMs, HEDGE_DELAY_MS);
});

test("hedging disabled: a GET at the hung instance waits out the per-try timeout, then is retried (the old behaviour)", async (t) => {
  const perTryTimeoutMs = 400;
  const { replies, hung, proxy } = await hungScenario(
    t,
    hedgingTraffic({ hedging: { enabled: false }, retries: { perTryTimeoutMs } }),
  );
  assert.ok(hung.hits > 0);
  const retried = replies.filter((r) => r.headers["x-homeostat-attempts"] === "2");
  assert.equal(retried.length, hung.hits);
  assert.ok(retried.every((r) => r.status === 200 && r.ms >= perTryTimeoutMs));
  assert.ok(replies.every((r) => r.headers["x-homeostat-hedged"] === undefined));
  assert.equal(hedgingState(proxy.state()).sent, 0);
});

test("the losing attempt is cancelled: the hung instance sees its connection closed, nothing stays in flight, no failure is counted", async (t) => {
  const { hung, proxy, stats, closedAtHung } = await hungScenario(t, hedgingTraffic());
  assert.ok(hung.hits > 0);
  await waitFor(() => closedAtHung() === hung.hits, { what: "every connection to the hung instance closed" });
  await waitFor(() => proxy.inFlight("api-hung") === 0, {
    what: "no attempt in flight at the hung instance",
  });
  const state = hedgingState(proxy.state());
  assert.ok(state.sent >= hung.hits);
  assert.equal(state.cancelled, state.sent, "every original attempt lost to its hedge");
  // A cancelled loser is not an attempt of the instance's: canary analysis and outlier detection
  // never see it as a failure.
  const window = stats.window({ service: "api", instance: "api-hung", windowMs: 60_000 });
  assert.equal(window.requests, 0);
  const endpoints = proxy.state().endpoints as { instance: string; consecutiveFailures: number }[];
  assert.equal(endpoints.find((e) => e.instance === "api-hung")?.consecutiveFailures, 0);
});

test("a POST is never hedged: at the hung instance it waits out the per-try timeout", async (t) => {
  const perTryTimeoutMs = 400;
  const { replies, hung, proxy } = await hungScenario(t, hedgingTraffic({ retries: { perTryTimeoutMs } }), {
    method: "POST",
  });
  assert.ok(hung.hits > 0);
  const stuck = replies.filter((r) => r.status === 504);
  assert.equal(stuck.length, hung.hits, "not retried either: the upstream may have acted on it");
  assert.ok(stuck.every((r) => r.ms >= perTryTimeoutMs));
  assert.ok(replies.every((r) => r.headers["x-homeostat-hedged"] === undefined));
  assert.equal(hedgingState(proxy.state()).sent, 0);
});

test("no retry budget, no hedge", async (t) => {
  const perTryTimeoutMs = 400;
  const { replies, hung, proxy } = await hungScenario(
    t,
    hedgingTraffic({ retries: { perTryTimeoutMs, budget: { ratio: 0, minPerSecond: 0 } } }),
  );
  assert.ok(hung.hits > 0);
  assert.ok(replies.every((r) => r.headers["x-homeostat-hedged"] === undefined));
  const stuck = replies.filter((r) => r.status === 504);
  assert.equal(stuck.length, hung.hits, "no hedge, and no retry after the timeout either");
  assert.ok(stuck.every((r) => r.ms >= perTryTimeoutMs));
  const state = hedgingState(proxy.state());
  assert.equal(state.sent, 0);
  assert.ok(state.refusedByBudget >= hung.hits, `${state.refusedByBudget} hedges refused`);
});

test("hedges are counted in the metrics, sent and won", async (t) => {
  const { replies, stats, proxy } = await hungScenario(t, hedgingTraffic());
  const hedged = replies.filter((r) => r.headers["x-homeostat-hedged"] === "1").length;
  assert.ok(hedged > 0);
  const text = await stats.metricsText();
  assert.match(text, new RegExp(`homeostat_proxy_hedges_total\\{service="api"\\} ${hedged}\\n`));
  const won = (proxy.state().hedging as { won: number }).won;
  assert.ok(won > 0);
  assert.match(text, new RegExp(`homeostat_proxy_hedges_won_total\\{service="api"\\} ${won}\\n`));
});

test("the first answer wins when the original attempt answers before its hedge", async (t) => {
  // Both instances answer, each after a delay longer than the hedge delay: every request is
  // hedged, the original attempt answers first, and the hedge is cancelled.
  let closedAtSecond = 0;
  const slowMs = 200;
  const first = await startUpstream(t, "api-0", async (req, res) => {
    req.resume();
    await new Promise((resolve) => setTimeout(resolve, slowMs));
    res.end("first");
  });
  const second = await startUpstream(t, "api-1", (req) => {
    req.resume();
    req.socket.once("close", () => closedAtSecond++);
  });
  const { client, proxy } = await startProxy(t, {
    traffic: hedgingTraffic(),
    endpoints: [endpointOf(first)],
  });
  // Only api-0 is a member when the request starts; api-1 joins before the hedge delay passes.
  const pending = send(client);
  await waitFor(() => first.hits === 1, { what: "the request at api-0" });
  proxy.setEndpoints([endpointOf(first), endpointOf(second)]);
  const reply = await pending;
  assert.equal(reply.status, 200);
  assert.equal(reply.body, "first");
  assert.equal(reply.headers["x-homeostat-hedged"], "1");
  assert.equal(second.hits, 1, "the hedge went to the other instance");
  await waitFor(() => closedAtSecond === 1, { what: "the hedge's connection closed" });
  const state = hedgingState(proxy.state());
  assert.equal(state.sent, 1);
  assert.equal(state.won, 0);
  assert.equal(state.cancelled, 1);
});
