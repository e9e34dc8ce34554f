/**
 * Webhook delivery against real local receivers (node:http on 127.0.0.1): the Slack and generic
 * formats, the signature, a receiver that is down then comes up, one that stays down, one that
 * hangs, a full queue, and what is (and is not) worth a notification.
 */

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { type TestContext, test } from "node:test";
import { SIGNATURE_HEADER, verifySignature } from "../../src/notify/formats.ts";
import { type DeliveryOutcome, Notifier } from "../../src/notify/notifier.ts";
import { NOTIFICATION_EVENTS, type WebhookSpec } from "../../src/spec/notifications.ts";
import { type EventRecord, StateStore } from "../../src/store/index.ts";
import { freePort } from "../helpers/e2e.ts";
import { waitFor } from "../helpers/waitFor.ts";
import { tempStateDir } from "../store/tempStateDir.ts";

interface Received {
  headers: IncomingMessage["headers"];
  body: string;
}

/** A receiver on 127.0.0.1 that records each request and answers with `answer` (default 200). */
async function receiver(
  t: TestContext,
  options: { port?: number; answer?: (req: IncomingMessage, res: ServerResponse) => void } = {},
): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => {
      body += chunk.toString();
    });
    req.on("end", () => {
      received.push({ headers: req.headers, body });
      if (options.answer) options.answer(req, res);
      else res.end("ok");
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}/hook`, received, server };
}

function hook(over: Partial<WebhookSpec> & { url: string }): WebhookSpec {
  return {
    name: "ops",
    format: "generic",
    events: [...NOTIFICATION_EVENTS],
    secretEnv: null,
    timeoutMs: 2_000,
    maxAttempts: 3,
    ...over,
  };
}

/** A store, a notifier on it, and the outcomes it counted; all closed after the test. */
function notifierFor(
  t: TestContext,
  webhooks: WebhookSpec[],
  options: { env?: NodeJS.ProcessEnv; maxQueued?: number } = {},
): { store: StateStore; notifier: Notifier; outcomes: DeliveryOutcome[] } {
  const store = StateStore.open(tempStateDir(t));
  const outcomes: DeliveryOutcome[] = [];
  const notifier = new Notifier({
    fleet: "shop",
    notifications: { webhooks },
    store,
    note: (type, why, data) => {
      const { service, ...rest } = data;
      store.appendEvent({
        at: Date.now(),
        type,
        reason: why.code,
        message: why.message,
        ...(typeof service === "string" ? { service } : {}),
        data: rest,
      });
    },
    count: (_webhook, outcome) => outcomes.push(outcome),
    backoffBaseMs: 50,
    backoffMaxMs: 400,
    ...(options.env ? { env: options.env } : {}),
    ...(options.maxQueued ? { maxQueued: options.maxQueued } : {}),
  });
  notifier.start();
  t.after(() => {
    notifier.stop();
    store.close();
  });
  return { store, notifier, outcomes };
}

/** Opens an incident on `instance` the way the controller does: the record, then its event. */
function openIncident(store: StateStore, instance: string, service = "api"): EventRecord {
  const incident = store.openIncident({
    service,
    instance,
    kind: "exited",
    reason: "exited",
    detectedAt: Date.now(),
    ttdMs: 120,
    detail: "exited with code 1",
  });
  return store.appendEvent({
    at: Date.now(),
    type: "incident.opened",
    service,
    instance,
    reason: "incident-opened",
    message: `${instance}: exited with code 1`,
    data: { incident: incident.id },
  });
}

function failures(store: StateStore): EventRecord[] {
  return store.listEvents().filter((e) => e.type === "notification.failed");
}

test("slack format: { text, blocks } naming the fleet, service and instance", async (t) => {
  const slack = await receiver(t);
  const { store } = notifierFor(t, [hook({ url: slack.url, format: "slack" })]);
  openIncident(store, "api-0");
  await waitFor(() => slack.received.length === 1, { what: "the Slack delivery" });
  const body = JSON.parse(slack.received[0]!.body) as { text: string; blocks: { type: string }[] };
  assert.match(
    body.text,
    /Incident opened \[shop\/api\]: api-0: incident #1 opened \(exited\): exited with code 1/,
  );
  assert.deepEqual(
    body.blocks.map((b) => b.type),
    ["section", "context"],
  );
  assert.equal(slack.received[0]!.headers["content-type"], "application/json");
  assert.equal(slack.received[0]!.headers[SIGNATURE_HEADER], undefined, "no secret, no signature");
});

test('generic format, signed with HMAC-SHA256 over "<t>.<body>" with the secret from the environment', async (t) => {
  const generic = await receiver(t);
  const secret = "s3cret-value";
  const { store } = notifierFor(t, [hook({ url: generic.url, secretEnv: "HOOK_SECRET" })], {
    env: { HOOK_SECRET: secret },
  });
  const event = openIncident(store, "api-1");
  await waitFor(() => generic.received.length === 1, { what: "the generic delivery" });
  const { headers, body } = generic.received[0]!;
  const payload = JSON.parse(body) as Record<string, unknown>;
  assert.equal(payload.type, "incident.opened");
  assert.equal(payload.fleet, "shop");
  assert.equal(payload.service, "api");
  assert.equal(payload.id, `shop:e${event.seq}`);
  assert.equal(payload.at, new Date(event.at).toISOString());
  assert.equal(payload.reason, "incident-opened");
  assert.equal((payload.incident as { instance: string }).instance, "api-1");
  assert.equal((payload.incident as { ttdMs: number }).ttdMs, 120);
  assert.equal(headers["x-homeostat-notification"], payload.id);
  const header = String(headers[SIGNATURE_HEADER]);
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  assert.ok(match, header);
  const expected = createHmac("sha256", secret).update(`${match[1]}.${body}`).digest("hex");
  assert.equal(match[2], expected);
  const now = Math.floor(Date.now() / 1000);
  assert.ok(verifySignature(secret, body, header, now));
  assert.equal(verifySignature("another-secret", body, header, now), false);
  assert.equal(verifySignature(secret, `${body} `, header, now), false, "a changed body fails");
  assert.equal(verifySignature(secret, body, header, now + 3600), false, "an old signature fails");
  assert.ok(!body.includes(secret));
});

test("a declared secret that is not in the environment: nothing is sent unsigned, the failure is evented", async (t) => {
  const generic = await receiver(t);
  const { store } = notifierFor(t, [hook({ url: generic.url, secretEnv: "MISSING_SECRET" })], { env: {} });
  openIncident(store, "api-0");
  const [failed] = await waitFor(() => failures(store).length === 1 && failures(store), {
    what: "notification.failed",
  });
  assert.match(failed!.message, /MISSING_SECRET is not set/);
  assert.equal(generic.received.length, 0);
});

test("a receiver that is down (connection refused) and then comes up gets the notification after retries", async (t) => {
  const port = await freePort();
  const { store, outcomes } = notifierFor(t, [
    hook({ url: `http://127.0.0.1:${port}/hook`, maxAttempts: 20 }),
  ]);
  openIncident(store, "api-0");
  await waitFor(() => outcomes.filter((o) => o === "retried").length >= 2, { what: "two refused attempts" });
  const late = await receiver(t, { port });
  await waitFor(() => late.received.length === 1, { what: "the delivery once the receiver is up" });
  assert.equal((JSON.parse(late.received[0]!.body) as { type: string }).type, "incident.opened");
  await waitFor(() => outcomes.includes("delivered"), { what: "counted as delivered" });
  assert.deepEqual(failures(store), []);
});

test("a receiver that stays down: notification.failed after maxAttempts, saying why", async (t) => {
  const port = await freePort();
  const { store, outcomes } = notifierFor(t, [
    hook({ url: `http://127.0.0.1:${port}/hook`, maxAttempts: 3 }),
  ]);
  openIncident(store, "api-0");
  const [failed] = await waitFor(() => failures(store).length === 1 && failures(store), {
    what: "notification.failed",
  });
  assert.equal(failed!.reason, "notification-failed");
  assert.equal(failed!.service, "api");
  assert.match(
    failed!.message,
    /webhook ops: incident\.opened not delivered after 3 attempt\(s\): ECONNREFUSED/,
  );
  assert.deepEqual(
    outcomes,
    ["retried", "retried", "failed"],
    "two retries, then one final failure; the failure event itself is not notified",
  );
});

test("a receiver that hangs: each attempt ends at its timeout; a 4xx is not retried", async (t) => {
  const hung = await receiver(t, { answer: () => {} });
  const refusing = await receiver(t, {
    answer: (_req, res) => {
      res.statusCode = 404;
      res.end();
    },
  });
  const { store } = notifierFor(t, [
    hook({ name: "hung", url: hung.url, timeoutMs: 200, maxAttempts: 2 }),
    hook({ name: "gone", url: refusing.url, maxAttempts: 5 }),
  ]);
  openIncident(store, "api-0");
  await waitFor(() => failures(store).length === 2, { what: "both failures", timeoutMs: 10_000 });
  const byHook = new Map(failures(store).map((e) => [(e.data as { webhook: string }).webhook, e]));
  assert.match(byHook.get("hung")!.message, /after 2 attempt\(s\): no answer within 200 ms/);
  assert.match(byHook.get("gone")!.message, /after 1 attempt\(s\): HTTP 404/);
  assert.equal(hung.received.length, 2);
  assert.equal(refusing.received.length, 1);
});

test("a full queue drops the newest, counts each drop and events them (once a minute), memory stays bounded", async (t) => {
  const hung = await receiver(t, { answer: () => {} });
  const { store, notifier, outcomes } = notifierFor(
    t,
    [hook({ url: hung.url, timeoutMs: 30_000, maxAttempts: 1 })],
    { maxQueued: 3 },
  );
  for (let i = 0; i < 8; i++) openIncident(store, `api-${i}`, `svc${i}`);
  assert.deepEqual(notifier.pending(), { ops: 3 });
  assert.equal(outcomes.filter((o) => o === "dropped").length, 5);
  const dropped = await waitFor(
    () => {
      const events = store.listEvents().filter((e) => e.type === "notification.dropped");
      return events.length > 0 ? events : null;
    },
    { what: "notification.dropped" },
  );
  assert.equal(dropped.length, 1, "one event for the burst, not one per drop");
  assert.match(dropped[0]!.message, /webhook ops: 1 notification\(s\) dropped/);
});

test("what is notified: escalation when another instance of the service fails, crash loops, verification, rollbacks, failovers", async (t) => {
  const generic = await receiver(t);
  const { store } = notifierFor(t, [hook({ url: generic.url })]);
  openIncident(store, "api-0");
  openIncident(store, "api-1");
  const incident = store.listIncidents().find((i) => i.instance === "api-0")!;
  const note = (type: string, data: Record<string, unknown>, service: string | null = "api") =>
    store.appendEvent({
      at: Date.now(),
      type,
      ...(service === null ? {} : { service }),
      reason: "r",
      message: `${type} happened`,
      data,
    });
  note("incident.crash-loop", { incident: incident.id });
  // A rollback's own incident is told as deploy.rolled-back, not as one more failing instance.
  const rollback = store.openIncident({
    service: "api",
    instance: "api",
    kind: "rollback",
    reason: "rollback",
    detectedAt: Date.now(),
  });
  note("incident.opened", { incident: rollback.id });
  note("instance.health", { from: "ready", to: "unready" });
  note("deploy.rolling-back", { rollout: 7 });
  note("failover.started", { zone: "zone-a" }, null);
  note("failback.completed", { zone: "zone-a" }, null);
  const at = Date.now();
  store.updateIncident(incident.id, { status: "closed", closedAt: at, stabilizedAt: at, verifiedAt: at });
  note("incident.stabilized", { incident: incident.id });
  note("incident.verified", { incident: incident.id });
  await waitFor(() => generic.received.length === 7, { what: "seven notifications" });
  const types = generic.received.map(
    (r) => JSON.parse(r.body) as { type: string; reason: string; data: Record<string, unknown> },
  );
  assert.deepEqual(types.map((p) => `${p.type} ${p.reason}`).sort(), [
    "deploy.rolled-back r",
    "failover.ended r",
    "failover.started r",
    "incident.escalated crash-loop",
    "incident.escalated service-wide",
    "incident.opened incident-opened",
    "incident.verified r",
  ]);
  assert.equal(types.find((p) => p.type === "deploy.rolled-back")?.data.automatic, true);
  assert.ok(
    !store.listEvents().some((e) => e.type.startsWith("notification.")),
    "nothing failed, and a success is not an event",
  );
});
