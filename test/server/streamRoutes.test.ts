/**
 * The event stream's mechanics on a real socket (Fastify on 127.0.0.1 with only the stream route,
 * a real store): live frames, resume without gap or duplicate, the service filter, status on
 * change, heartbeats, a reset for a client that does not read, and clean-up on disconnect.
 */

import assert from "node:assert/strict";
import { connect } from "node:net";
import { type TestContext, test } from "node:test";
import Fastify from "fastify";
import { HomeostatError, httpStatusFor } from "../../src/errors.ts";
import { parseEventId } from "../../src/server/routes/streamClient.ts";
import { type StreamOptions, statusFingerprint, streamRoutes } from "../../src/server/routes/streamRoutes.ts";
import { StateStore } from "../../src/store/index.ts";
import { eventSeqs, openSse } from "../helpers/sse.ts";
import { waitFor } from "../helpers/waitFor.ts";
import { tempStateDir } from "../store/tempStateDir.ts";

interface Harness {
  url: string;
  port: number;
  store: StateStore;
  status: { value: Record<string, unknown> };
  clients: { count: number };
  /** Times the status document was read. */
  statusReads: { count: number };
  append(service?: string): number;
}

async function harness(t: TestContext, options: StreamOptions = {}): Promise<Harness> {
  const store = StateStore.open(tempStateDir(t));
  const status = {
    value: {
      services: [
        { name: "api", ready: 2 },
        { name: "web", ready: 1 },
      ],
      controller: { now: 1 },
    } as Record<string, unknown>,
  };
  const clients = { count: 0 };
  const statusReads = { count: 0 };
  const app = Fastify({ logger: false });
  // The API's envelope does this (errorEnvelope.ts); the bare app here needs it for the 400.
  app.setErrorHandler((error, _request, reply) => {
    const status = error instanceof HomeostatError ? httpStatusFor(error) : 500;
    void reply
      .status(status)
      .send({ error: { message: error instanceof Error ? error.message : String(error) } });
  });
  streamRoutes(
    app,
    {
      store,
      status: () => {
        statusReads.count++;
        return { ...status.value, controller: { now: Date.now() } };
      },
      controllerMetrics: { streamClients: (delta) => (clients.count += delta) },
    },
    { statusIntervalMs: 50, ...options },
  );
  await app.listen({ host: "127.0.0.1", port: 0 });
  t.after(async () => {
    await app.close();
    store.close();
  });
  const port = (app.server.address() as { port: number }).port;
  let n = 0;
  return {
    url: `http://127.0.0.1:${port}/v1/stream`,
    port,
    store,
    status,
    clients,
    statusReads,
    append: (service = "api") =>
      store.appendEvent({ at: Date.now(), type: "test.tick", service, reason: "r", message: `tick ${++n}` })
        .seq,
  };
}

test("live events arrive with id e<seq>; the status comes first; headers are an event stream", async (t) => {
  const h = await harness(t);
  h.append();
  const sse = await openSse(h.url);
  t.after(() => sse.close());
  assert.equal(sse.status, 200);
  assert.match(sse.headers.get("content-type") ?? "", /^text\/event-stream/);
  await sse.until((f) => f.length >= 1, "the first frame");
  assert.equal(sse.frames[0]!.event, "status", "the current status first, no history without an id");
  const a = h.append();
  const b = h.append("web");
  await sse.until((f) => eventSeqs(f).length === 2, "two live events");
  assert.deepEqual(eventSeqs(sse.frames), [a, b]);
  assert.deepEqual(
    sse.frames.filter((f) => f.event === "event").map((f) => f.id),
    [`e${a}`, `e${b}`],
  );
});

test("resume with Last-Event-ID or ?after: the missed events, then live ones, no gap and no duplicate", async (t) => {
  const h = await harness(t, { pageSize: 7 });
  const first = await openSse(h.url);
  const before = [h.append(), h.append(), h.append()];
  await first.until((f) => eventSeqs(f).length === 3, "three events");
  const lastId = first.frames.filter((f) => f.event === "event").at(-1)!.id!;
  first.close();
  // While disconnected: more than a page of events.
  const missed = Array.from({ length: 20 }, () => h.append());
  const resumed = await openSse(h.url, { "last-event-id": lastId });
  t.after(() => resumed.close());
  await resumed.until((f) => eventSeqs(f).length === 20, "the 20 missed events");
  const live = [h.append(), h.append()];
  await resumed.until((f) => eventSeqs(f).length === 22, "and the live ones");
  assert.deepEqual(eventSeqs(resumed.frames), [...missed, ...live]);
  assert.equal(parseEventId(lastId), before.at(-1));
  const byQuery = await openSse(`${h.url}?after=${before[0]}`);
  t.after(() => byQuery.close());
  await byQuery.until((f) => eventSeqs(f).length === 24, "everything after the first");
  assert.deepEqual(eventSeqs(byQuery.frames), [...before.slice(1), ...missed, ...live]);
});

test("a resume while events keep coming in has no gap and no duplicate", async (t) => {
  const h = await harness(t, { pageSize: 5 });
  for (let i = 0; i < 50; i++) h.append();
  const timer = setInterval(() => h.append(), 2);
  t.after(() => clearInterval(timer));
  const sse = await openSse(`${h.url}?after=0`);
  t.after(() => sse.close());
  await sse.until((f) => eventSeqs(f).length >= 120, "120 events");
  clearInterval(timer);
  const seqs = eventSeqs(sse.frames);
  assert.deepEqual(
    seqs,
    Array.from({ length: seqs.length }, (_, i) => i + 1),
  );
});

test("?service= keeps one service's events, incidents and status", async (t) => {
  const h = await harness(t);
  const sse = await openSse(`${h.url}?service=web`);
  t.after(() => sse.close());
  await sse.until((f) => f.some((x) => x.event === "status"), "status");
  assert.deepEqual(
    (sse.frames[0]!.json as { services: { name: string }[] }).services.map((s) => s.name),
    ["web"],
  );
  h.append("api");
  const web = h.append("web");
  h.store.openIncident({
    service: "api",
    instance: "api-0",
    kind: "exited",
    reason: "exited",
    detectedAt: 1,
  });
  const incident = h.store.openIncident({
    service: "web",
    instance: "web-0",
    kind: "exited",
    reason: "exited",
    detectedAt: 2,
  });
  h.store.addIncidentEvent(incident.id, { at: 2, phase: "detected", detail: "exited with code 1" });
  await sse.until((f) => f.filter((x) => x.event === "incident").length === 2, "two incident frames");
  assert.deepEqual(eventSeqs(sse.frames), [web]);
  const incidents = sse.frames
    .filter((f) => f.event === "incident")
    .map((f) => f.json as { instance: string; timeline: unknown[] });
  assert.deepEqual(
    incidents.map((i) => [i.instance, i.timeline.length]),
    [
      ["web-0", 0],
      ["web-0", 1],
    ],
  );
});

test("status frames come when the document changes (clock readings aside), not on every check", async (t) => {
  const h = await harness(t, { statusIntervalMs: 20 });
  const sse = await openSse(h.url);
  t.after(() => sse.close());
  await sse.until((f) => f.some((x) => x.event === "status"), "the first status");
  // Ten checks with nothing changed but the clock.
  const reads = h.statusReads.count;
  await waitFor(() => h.statusReads.count >= reads + 10, { what: "ten status checks" });
  const statuses = () => sse.frames.filter((f) => f.event === "status");
  assert.ok(statuses().length <= 2, `no status frame for an unchanged document (got ${statuses().length})`);
  const before = statuses().length;
  h.status.value = {
    services: [
      { name: "api", ready: 1 },
      { name: "web", ready: 1 },
    ],
  };
  await sse.until(() => statuses().length === before + 1, "a status frame for the change");
  assert.deepEqual((statuses().at(-1)!.json as { services: { ready: number }[] }).services[0]!.ready, 1);
  assert.equal(statusFingerprint({ a: 1, now: 2 }), statusFingerprint({ a: 1, now: 3 }));
});

test("heartbeat comments at the configured interval", async (t) => {
  const h = await harness(t, { heartbeatMs: 50 });
  const sse = await openSse(h.url);
  t.after(() => sse.close());
  await waitFor(() => sse.comments.filter((c) => c === "heartbeat").length >= 2, { what: "two heartbeats" });
});

test("a client that does not read is reset and closed; disconnects remove clients", async (t) => {
  const h = await harness(t, { maxQueuedBytes: 64 * 1024 });
  // A raw socket that sends the request and then never reads: the kernel buffers fill up.
  const socket = connect(h.port, "127.0.0.1");
  t.after(() => socket.destroy());
  socket.pause();
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  socket.write("GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  await waitFor(() => h.clients.count === 1, { what: "the client connected" });
  const big = "x".repeat(2000);
  for (let i = 0; i < 20_000 && h.clients.count > 0; i++) {
    h.store.appendEvent({ at: Date.now(), type: "test.big", reason: "r", message: big });
    if (i % 200 === 0) await new Promise((r) => setImmediate(r));
  }
  await waitFor(() => h.clients.count === 0, { what: "the slow client dropped" });
  // Now read what it was sent: a `reset` frame telling where to resume.
  let text = "";
  socket.on("data", (d: Buffer) => {
    text = (text + d.toString()).slice(-4096);
  });
  socket.resume();
  await waitFor(() => text.includes("event: reset"), { what: "the reset frame", timeoutMs: 20_000 });
  const data = JSON.parse(/event: reset\ndata: (.*)\n/.exec(text)![1]!) as { lastEventId: string };
  assert.match(data.lastEventId, /^e\d+$/);
  // A normal client connects and leaves: the gauge follows.
  const sse = await openSse(h.url);
  await waitFor(() => h.clients.count === 1, { what: "one client" });
  sse.close();
  await waitFor(() => h.clients.count === 0, { what: "no client after the disconnect" });
});

test("a malformed Last-Event-ID is a 400", async (t) => {
  const h = await harness(t);
  const response = await fetch(h.url, { headers: { "last-event-id": "yesterday" } });
  assert.equal(response.status, 400);
  await response.body?.cancel();
});

test("closing the API ends open streams instead of waiting for them", async (t) => {
  const store = StateStore.open(tempStateDir(t));
  t.after(() => store.close());
  const app = Fastify({ logger: false });
  streamRoutes(app, { store, status: () => ({}) });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const port = (app.server.address() as { port: number }).port;
  const sse = await openSse(`http://127.0.0.1:${port}/v1/stream`);
  t.after(() => sse.close());
  await sse.until((f) => f.length > 0, "the first frame");
  await app.close();
  await waitFor(() => sse.ended(), { what: "the stream ended by the server" });
});

test("one stream more than maxClients is refused with 503 until one closes", async (t) => {
  const h = await harness(t, { maxClients: 2 });
  const first = await openSse(h.url);
  t.after(() => first.close());
  const second = await openSse(h.url);
  t.after(() => second.close());
  await waitFor(() => h.clients.count === 2, { what: "two clients counted" });
  const refused = await fetch(h.url);
  assert.equal(refused.status, 503);
  assert.match(((await refused.json()) as { error: { message: string } }).error.message, /2 event streams/);
  first.close();
  await waitFor(() => h.clients.count === 1, { what: "the first client gone" });
  const third = await openSse(h.url);
  t.after(() => third.close());
  await third.until((f) => f.length > 0, "a frame on the stream opened after one closed");
});
