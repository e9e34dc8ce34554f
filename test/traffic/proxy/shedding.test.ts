import assert from "node:assert/strict";
import { test } from "node:test";
import { Pool } from "undici";
import { waitFor } from "../../helpers/waitFor.ts";
import { endpointOf, gate, type Reply, send, startProxy, startUpstream, traffic } from "./kit.ts";

interface AdmissionView {
  inFlight: number;
  queued: { critical: number; default: number };
}

test("shedding by criticality: sheddable first, then default; critical still gets in", async (t) => {
  const release = gate();
  t.after(release.open);
  const upstream = await startUpstream(t, "api-0", async (req, res) => {
    for await (const _ of req);
    await release.wait;
    res.end(JSON.stringify({ criticality: req.headers["x-homeostat-criticality"] ?? "default" }));
  });
  const { client, proxy, stats } = await startProxy(t, {
    traffic: traffic({
      limits: { maxConcurrentPerInstance: 2, adaptive: false, queueSize: 2, queueTimeoutMs: 30_000 },
    }),
    endpoints: [endpointOf(upstream)],
  });
  const admission = () => proxy.state().admission as AdmissionView;
  const as = (criticality: string) => send(client, { headers: { "x-homeostat-criticality": criticality } });

  // The limit (2) is taken by two slow requests.
  const running = [as("default"), as("default")];
  await waitFor(() => upstream.hits === 2, { what: "two requests at the upstream" });

  const sheddable = await as("sheddable");
  assert.equal(sheddable.status, 503);
  assert.equal(sheddable.headers["x-homeostat-shed"], "over-limit");
  assert.ok(Number(sheddable.headers["retry-after"]) >= 1);
  assert.deepEqual(JSON.parse(sheddable.body), {
    error: "shed",
    reason: "over-limit",
    criticality: "sheddable",
  });

  const queuedDefault = as("default");
  await waitFor(() => admission().queued.default === 1, { what: "default queued" });
  const firstCritical = as("critical");
  await waitFor(() => admission().queued.critical === 1, { what: "critical queued" });

  // The queue (2) is full: another default is shed at once…
  const lateDefault = await as("default");
  assert.equal(lateDefault.status, 503);
  assert.equal(lateDefault.headers["x-homeostat-shed"], "queue-full");

  // …but a critical one takes the place of the newest queued default.
  const secondCritical = as("critical");
  const evicted = await queuedDefault;
  assert.equal(evicted.status, 503);
  assert.equal(evicted.headers["x-homeostat-shed"], "queue-full");
  assert.equal(admission().queued.critical, 2);

  release.open();
  const done: Reply[] = await Promise.all([...running, firstCritical, secondCritical]);
  assert.deepEqual(
    done.map((r) => r.status),
    [200, 200, 200, 200],
  );
  assert.equal(upstream.hits, 4, "shed requests never reached the upstream");
  const window = stats.window({ service: "api", windowMs: 60_000 });
  assert.equal(window.requests, 7);
  assert.equal(window.errors, 3, "three shed");
});

test("a queued request that waits past queueTimeoutMs is shed with queue-timeout", async (t) => {
  const release = gate();
  t.after(release.open);
  const upstream = await startUpstream(t, "api-0", async (_req, res) => {
    await release.wait;
    res.end();
  });
  const { client } = await startProxy(t, {
    traffic: traffic({
      limits: { maxConcurrentPerInstance: 1, adaptive: false, queueSize: 5, queueTimeoutMs: 200 },
    }),
    endpoints: [endpointOf(upstream)],
  });
  const holding = send(client);
  await waitFor(() => upstream.hits === 1, { what: "one request at the upstream" });
  const started = performance.now();
  const waited = await send(client);
  assert.equal(waited.status, 503);
  assert.equal(waited.headers["x-homeostat-shed"], "queue-timeout");
  assert.ok(performance.now() - started >= 190);
  release.open();
  assert.equal((await holding).status, 200);
});

test("a burst queues beyond queueSize when the limit serves it within the queue timeout", async (t) => {
  let hold: Promise<void> | null = null;
  const upstream = await startUpstream(t, "api-0", async (req, res) => {
    for await (const _ of req);
    await (hold ?? new Promise((resolve) => setTimeout(resolve, 5)));
    res.end("ok");
  });
  const { proxy, port } = await startProxy(t, {
    traffic: traffic({
      limits: { maxConcurrentPerInstance: 10, adaptive: false, queueSize: 5, queueTimeoutMs: 30_000 },
    }),
    endpoints: [endpointOf(upstream)],
  });
  const admission = () =>
    proxy.state().admission as {
      queueBound: number;
      queued: { default: number };
      rejected: Record<string, { default: number }>;
    };
  // A client with enough connections for a whole burst at once.
  const client = new Pool(`http://127.0.0.1:${port}`, { connections: 100 });
  t.after(() => client.destroy());
  // Warm up: the proxy learns the mean latency (about 5 ms).
  for (let i = 0; i < 20; i++) assert.equal((await send(client)).status, 200);
  assert.equal(admission().queueBound, 50, "10 × 30 s ÷ ~5 ms is far more than the cap, 10 × queueSize");

  // The upstream holds everything: 10 requests in flight, and the burst waits in the queue.
  let release!: () => void;
  hold = new Promise((resolve) => {
    release = resolve;
  });
  t.after(() => release());
  const burst = Array.from({ length: 80 }, () => send(client));
  await waitFor(
    () =>
      upstream.hits === 30 &&
      admission().queued.default === 50 &&
      admission().rejected["queue-full"]!.default === 20,
    { what: "10 at the upstream, 50 queued, 20 refused" },
  );
  hold = null;
  release();
  const replies = await Promise.all(burst);
  const shed = replies.filter((r) => r.status === 503);
  // A fixed queue of 5 would have shed 65 of the 80; the bound of 50 sheds the 20 beyond it.
  assert.equal(shed.length, 20);
  assert.ok(shed.every((r) => r.headers["x-homeostat-shed"] === "queue-full"));
  assert.equal(replies.filter((r) => r.status === 200).length, 60);
});
