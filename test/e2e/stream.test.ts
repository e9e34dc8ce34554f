/**
 * Events out, end to end: a real controller (`homeostat up`) with real instances and its data
 * plane, a killed instance, and what leaves the controller about it — the SSE stream (live, then
 * resumed after a disconnect with Last-Event-ID, with no gap or duplicate; a status frame on
 * change), webhooks to local receivers (Slack format delivered; a receiver that hangs ends in
 * `notification.failed` while the loop has long since restarted the instance), and the
 * controller's metrics next to the data plane's on `/metrics`.
 */

import assert from "node:assert/strict";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import {
  allInstances,
  demoFleetYaml,
  freePort,
  freePortRange,
  readyStatus,
  type Sandbox,
  type StatusDoc,
  sandboxesCleanedAfter,
} from "../helpers/e2e.ts";
import { eventSeqs, openSse, type SseReader } from "../helpers/sse.ts";
import { waitFor } from "../helpers/waitFor.ts";

interface EventRow {
  seq: number;
  at: number;
  type: string;
  instance?: string;
  service?: string;
  message: string;
  data?: Record<string, unknown>;
}

/** A receiver on 127.0.0.1: records each request; `hang` never answers (the socket stays open). */
async function receiver(hang: boolean) {
  const received: { at: number; headers: IncomingMessage["headers"]; body: string }[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => {
      body += chunk.toString();
    });
    req.on("end", () => {
      received.push({ at: Date.now(), headers: req.headers, body });
      if (!hang) res.end("ok");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  const close = () => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { url, received, close };
}

/** The Authorization header of the sandbox's admin token. */
function auth(box: Sandbox): Record<string, string> {
  return { authorization: `Bearer ${box.token()}` };
}

const HUNG_TIMEOUT_MS = 4_000;

describe("events out: stream, webhooks and metrics around a killed instance", () => {
  const newSandbox = sandboxesCleanedAfter();
  let box: Sandbox;
  let slack: Awaited<ReturnType<typeof receiver>>;
  let hung: Awaited<ReturnType<typeof receiver>>;
  /** Stays connected throughout: live events, incident and status frames. */
  let live: SseReader;
  /** Disconnected right after the incident opens, then resumed from its last id. */
  let first: SseReader;
  const streams: SseReader[] = [];

  before(async () => {
    slack = await receiver(false);
    hung = await receiver(true);
    process.env.HOMEOSTAT_TEST_HOOK_SECRET = "e2e-secret";
    box = await newSandbox();
    const basePort = await freePortRange(4);
    const port = await freePort();
    const notifications = [
      "notifications:",
      "  webhooks:",
      `    - { name: chat, url: "${slack.url}", format: slack }`,
      `    - name: pager`,
      `      url: "${hung.url}"`,
      "      format: generic",
      "      events: [incident.opened]",
      "      secretEnv: HOMEOSTAT_TEST_HOOK_SECRET",
      `      timeout: ${HUNG_TIMEOUT_MS}ms`,
      "      maxAttempts: 2",
      "",
    ].join("\n");
    const yaml = demoFleetYaml({
      name: "events",
      services: [{ name: "api", replicas: 2, basePort, port }],
    }).replace(/^services:$/m, `${notifications}services:`);
    box.up(box.file("fleet.yaml", yaml));
    await readyStatus(box, 2);
    live = await openSse(`http://127.0.0.1:${box.apiPort}/v1/stream`, auth(box));
    first = await openSse(`http://127.0.0.1:${box.apiPort}/v1/stream`, auth(box));
    streams.push(live, first);
    await live.until((f) => f.some((x) => x.event === "status"), "the first status frame");
    await first.until((f) => f.some((x) => x.event === "status"), "the first status frame");
  });

  after(async () => {
    for (const s of streams) s.close();
    await slack?.close();
    await hung?.close();
    delete process.env.HOMEOSTAT_TEST_HOOK_SECRET;
  });

  test("the stream needs a token, and a viewer's is enough", async () => {
    const anonymous = await fetch(`http://127.0.0.1:${box.apiPort}/v1/stream`);
    assert.equal(anonymous.status, 401);
    await anonymous.body?.cancel();
    const created = await box.api("POST", "/v1/tokens", { name: "dashboard", role: "viewer" });
    assert.equal(created.status, 201, await created.clone().text());
    const { secret } = (await created.json()) as { secret: string };
    const viewer = await openSse(`http://127.0.0.1:${box.apiPort}/v1/stream`, {
      authorization: `Bearer ${secret}`,
    });
    streams.push(viewer);
    assert.equal(viewer.status, 200);
    await viewer.until((f) => f.some((x) => x.event === "status"), "the viewer's first status frame");
    viewer.close();
  });

  test("a killed instance: live events and a status change on the stream, resume after a disconnect without gap or duplicate", async () => {
    assert.equal(live.status, 200);
    const status = await box.get<StatusDoc>("/v1/status");
    const victim = allInstances(status).find((i) => i.name === "api-0")!;
    process.kill(victim.pid!, "SIGKILL");
    // One client goes away as soon as the incident opens: the recovery happens while it is gone.
    await first.until(
      (f) => f.some((x) => x.event === "event" && (x.json as EventRow).type === "incident.opened"),
      "incident.opened on the first stream",
    );
    const lastId = first.frames.filter((f) => f.event === "event").at(-1)!.id!;
    const seenLive = eventSeqs(first.frames);
    first.close();
    // Live: the exit and the incident, as they are stored.
    await live.until(
      (f) => f.some((x) => x.event === "event" && (x.json as EventRow).type === "incident.opened"),
      "incident.opened on the stream",
    );
    await live.until(
      (f) => f.some((x) => x.event === "incident" && (x.json as { instance: string }).instance === "api-0"),
      "an incident frame for api-0",
    );
    // The status document changed (api-0 failed, then a new process took its place): a status
    // frame says so. (Whether one catches it not ready depends on how fast it is back.)
    await live.until(
      (f) =>
        f.some(
          (x) =>
            x.event === "status" &&
            allInstances(x.json as StatusDoc).some((i) => i.name === "api-0" && i.pid !== victim.pid),
        ),
      "a status frame with api-0 changed",
    );
    // Resume from the last id the first client saw, once the recovery has gone on without it.
    await waitFor(
      async () => {
        const rows = (await box.get<{ events: EventRow[] }>(`/v1/events?after=${lastId.slice(1)}&limit=1000`))
          .events;
        return rows.some((e) => e.type === "incident.mitigated" && e.instance === "api-0");
      },
      { what: "api-0 mitigated while the stream was away", timeoutMs: 30_000 },
    );
    const resumed = await openSse(`http://127.0.0.1:${box.apiPort}/v1/stream`, {
      ...auth(box),
      "last-event-id": lastId,
    });
    streams.push(resumed);
    await resumed.until(
      (f) => f.some((x) => x.event === "event" && (x.json as EventRow).type === "incident.mitigated"),
      "the missed incident.mitigated replayed",
    );
    const stored = (
      await box.get<{ events: EventRow[] }>(`/v1/events?after=${lastId.slice(1)}&limit=10000`)
    ).events.map((e) => e.seq);
    const replayed = eventSeqs(resumed.frames);
    assert.deepEqual(
      replayed.slice(0, stored.length),
      stored,
      "every stored event after the id, in order, once",
    );
    assert.ok(
      replayed.every((seq, i) => i === 0 || seq > replayed[i - 1]!),
      "strictly increasing: no duplicate",
    );
    assert.ok(
      seenLive.every((seq) => seq <= Number(lastId.slice(1))),
      "nothing replayed that the first connection had seen",
    );
    assert.ok(replayed[0]! > Number(lastId.slice(1)));
  });

  test("webhooks: the Slack receiver gets the incident; the hung one ends in notification.failed while the instance was long restarted", async () => {
    await waitFor(
      () =>
        slack.received.some((r) =>
          /Incident opened \[events\/api\]: api-0/.test((JSON.parse(r.body) as { text: string }).text),
        ),
      { what: "the Slack notification of the incident", timeoutMs: 20_000 },
    );
    const failed = await waitFor(
      async () => {
        const rows = (await box.get<{ events: EventRow[] }>("/v1/events?limit=10000")).events;
        return rows.find((e) => e.type === "notification.failed") ?? null;
      },
      { what: "notification.failed for the hung receiver", timeoutMs: 4 * HUNG_TIMEOUT_MS + 10_000 },
    );
    assert.equal(failed.data?.webhook, "pager");
    assert.match(
      failed.message,
      /webhook pager: incident\.opened not delivered after 2 attempt\(s\): no answer within 4000 ms/,
    );
    assert.equal(hung.received.length, 2, "two attempts, each waited out");
    assert.match(String(hung.received[0]!.headers["x-homeostat-signature"]), /^t=\d+,v1=[0-9a-f]{64}$/);
    // The loop did not wait for the receiver: api-0 was restarted and ready before the first attempt even timed out.
    const rows = (await box.get<{ events: EventRow[] }>("/v1/events?limit=10000")).events;
    const opened = rows.find((e) => e.type === "incident.opened" && e.instance === "api-0")!;
    const mitigated = rows.find((e) => e.type === "incident.mitigated" && e.instance === "api-0")!;
    assert.ok(mitigated, "api-0 recovered");
    assert.ok(
      mitigated.at < hung.received[0]!.at + HUNG_TIMEOUT_MS,
      `recovered (${mitigated.at - opened.at} ms after detection) while the first delivery attempt still hung`,
    );
    await readyStatus(box, 2);
    // And the recovery is verified, and said so.
    await waitFor(
      () =>
        slack.received.some((r) => /Recovery verified/.test((JSON.parse(r.body) as { text: string }).text)),
      { what: "the Slack notification of the verification", timeoutMs: 30_000 },
    );
  });

  test("metrics: the controller's series next to the data plane's, with sane values after the recovery", async () => {
    const response = await fetch(`http://127.0.0.1:${box.apiPort}/metrics`, { headers: auth(box) });
    assert.equal(response.status, 200);
    const text = await response.text();
    const value = (pattern: RegExp): number => {
      const match = pattern.exec(text);
      assert.ok(match, `no series matching ${pattern}`);
      return Number(match[1]);
    };
    assert.ok(value(/^homeostat_controller_reconcile_duration_seconds_count (\d+)$/m) > 10);
    const sum = value(/^homeostat_controller_reconcile_duration_seconds_sum ([\d.e-]+)$/m);
    const count = value(/^homeostat_controller_reconcile_duration_seconds_count (\d+)$/m);
    assert.ok(sum / count < 0.5, `a pass takes ${sum / count}s on average`);
    assert.ok(value(/^homeostat_controller_actions_total\{type="start",outcome="ok"\} (\d+)$/m) >= 3);
    const incidents = await box.get<{ incidents: unknown[] }>("/v1/incidents?limit=100");
    assert.equal(
      value(/^homeostat_controller_time_to_mitigate_seconds_count\{service="api"\} (\d+)$/m),
      1,
      JSON.stringify(incidents),
    );
    const ttr = value(/^homeostat_controller_time_to_mitigate_seconds_sum\{service="api"\} ([\d.e-]+)$/m);
    assert.ok(ttr > 0 && ttr < 20, `TTR ${ttr}s`);
    assert.equal(value(/^homeostat_controller_time_to_verify_seconds_count\{service="api"\} (\d+)$/m), 1);
    assert.ok(
      value(/^homeostat_controller_webhook_deliveries_total\{webhook="chat",outcome="delivered"\} (\d+)$/m) >=
        2,
    );
    assert.equal(
      value(/^homeostat_controller_webhook_deliveries_total\{webhook="pager",outcome="failed"\} (\d+)$/m),
      1,
    );
    assert.ok(value(/^homeostat_controller_stream_clients (\d+)$/m) >= 0);
    assert.match(text, /^# TYPE homeostat_controller_open_incidents gauge$/m);
    assert.match(
      text,
      /^homeostat_proxy_requests_total|^# HELP homeostat_proxy_/m,
      "the data plane's series too",
    );
    const names = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]);
    assert.equal(new Set(names).size, names.length, "no metric name twice");
  });
});
