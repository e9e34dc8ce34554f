/**
 * The data-plane process's side of the config feed, over a real Unix socket and real listeners:
 * attach and hello, snapshots applied and acknowledged, reports with state and windows,
 * persistence without faults, faults dropped when the controller goes, serving a persisted
 * snapshot with no controller at all, and a protocol violation cutting the connection.
 */

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  DataPlaneProcess,
  IDLE_REPORT_INTERVAL_MS,
  REPORT_INTERVAL_MS,
} from "../../src/dataplane/dataPlaneProcess.ts";
import {
  type ControllerMessage,
  type DataPlaneMessage,
  dataPlaneMessageSchema,
  FEED_PROTOCOL_VERSION,
  type Snapshot,
} from "../../src/dataplane/feedProtocol.ts";
import { LineChannel } from "../../src/dataplane/lineChannel.ts";
import { dataPlanePaths } from "../../src/dataplane/paths.ts";
import { connectUnix } from "../../src/lib/sockets.ts";
import { freePort } from "../helpers/e2e.ts";
import { waitFor } from "../helpers/waitFor.ts";
import { startUpstream, traffic } from "../traffic/proxy/kit.ts";

interface FakeController {
  messages: DataPlaneMessage[];
  channel: LineChannel<DataPlaneMessage, ControllerMessage>;
  closed: Promise<string>;
}

async function attach(stateDir: string, pid = 4242, fencingToken?: number): Promise<FakeController> {
  const socket = await connectUnix(dataPlanePaths(stateDir).feed);
  const messages: DataPlaneMessage[] = [];
  const channel = new LineChannel<DataPlaneMessage, ControllerMessage>(socket, dataPlaneMessageSchema, (m) =>
    messages.push(m),
  );
  const closed = new Promise<string>((resolve) => channel.onClose(resolve));
  channel.send({
    type: "attach",
    protocol: FEED_PROTOCOL_VERSION,
    controller: { pid, startedAt: Date.now() },
    ...(fencingToken === undefined ? {} : { fencingToken }),
  });
  await waitFor(() => messages.some((m) => m.type === "hello"), { what: "hello" });
  return { messages, channel, closed };
}

function snapshotFor(version: number, port: number, upstreamPort: number, withFault: boolean): Snapshot {
  return {
    version,
    issuedAt: Date.now(),
    fleet: "t",
    controller: { pid: 4242, startedAt: Date.now() },
    services: [
      {
        name: "api",
        port,
        traffic: traffic() as unknown as Record<string, unknown>,
        endpoints: [
          {
            instance: "api-0",
            service: "api",
            release: "v1",
            zone: "zone-a",
            host: "host-a",
            address: "127.0.0.1",
            port: upstreamPort,
          },
        ],
        weights: null,
        zoneShares: null,
        shedding: null,
      },
    ],
    faults: withFault
      ? [{ id: "fault-1", createdAt: Date.now(), service: "api", fault: { kind: "error", status: 418 } }]
      : [],
  };
}

async function get(port: number): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(5_000) });
  return { status: response.status, body: await response.text() };
}

/** A started data plane in its own state dir, an upstream for api-0, a free front port, and a controller attached; all undone when `t` ends. */
async function startWithController(t: import("node:test").TestContext): Promise<{
  stateDir: string;
  upstream: { port: number };
  port: number;
  dataPlane: DataPlaneProcess;
  controller: FakeController;
}> {
  const stateDir = mkdtempSync(join(tmpdir(), "homeostat-dp-"));
  const upstream = await startUpstream(t, "api-0");
  const port = await freePort();
  const dataPlane = new DataPlaneProcess({ stateDir, log: () => {} });
  t.after(async () => {
    await dataPlane.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });
  await dataPlane.start();
  const controller = await attach(stateDir);
  return { stateDir, upstream, port, dataPlane, controller };
}

test("snapshots are applied, acknowledged, reported, persisted without faults; faults end with the controller", async (t) => {
  const { stateDir, upstream, port, dataPlane, controller } = await startWithController(t);
  const hello = controller.messages.find((m) => m.type === "hello");
  assert.equal(hello?.type === "hello" && hello.identity.source, "none");

  controller.channel.send({ type: "snapshot", snapshot: snapshotFor(7, port, upstream.port, true) });
  await waitFor(() => controller.messages.some((m) => m.type === "ack" && m.version === 7 && m.ok), {
    what: "ack v7",
  });
  // The fault applies: the data plane serves exactly what the snapshot says.
  assert.equal((await get(port)).status, 418);

  const persisted = JSON.parse(readFileSync(dataPlanePaths(stateDir).snapshot, "utf8")) as Snapshot;
  assert.equal(persisted.version, 7);
  assert.deepEqual(persisted.faults, [], "faults are never persisted");

  const report = await waitFor(
    () =>
      controller.messages.findLast(
        (m): m is Extract<DataPlaneMessage, { type: "report" }> =>
          m.type === "report" && Object.keys(m.windows.services).length > 0,
      ),
    { what: "a report with windows" },
  );
  assert.equal(report.identity.appliedVersion, 7);
  assert.ok(report.services.api, "the listener's state is reported");
  assert.ok(report.windows.services.api!.requests.length > 0, "the request just made is in the windows");

  // The controller goes away: the data plane keeps serving, without the fault.
  controller.channel.close("test: controller gone");
  await waitFor(async () => (await get(port)).status === 200, { what: "served without the fault" });
  assert.match((await get(port)).body, /api-0/);
  assert.notEqual(dataPlane.identity().controllerLostAt, null);
});

test("a data plane started with no controller serves its persisted snapshot", async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), "homeostat-dp-"));
  const upstream = await startUpstream(t, "api-0");
  const port = await freePort();
  const first = new DataPlaneProcess({ stateDir, log: () => {} });
  t.after(() => first.stop());
  await first.start();
  const controller = await attach(stateDir);
  controller.channel.send({ type: "snapshot", snapshot: snapshotFor(3, port, upstream.port, false) });
  await waitFor(() => controller.messages.some((m) => m.type === "ack" && m.version === 3), { what: "ack" });
  controller.channel.close("test");
  // A crash, as far as the files go: the next process finds the snapshot (stop() would remove it).
  const snapshotText = readFileSync(dataPlanePaths(stateDir).snapshot, "utf8");
  await first.stop();
  writeFileSync(dataPlanePaths(stateDir).snapshot, snapshotText);

  const second = new DataPlaneProcess({ stateDir, log: () => {} });
  t.after(async () => {
    await second.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });
  await second.start();
  assert.equal(second.identity().source, "persisted");
  assert.equal(second.identity().appliedVersion, 3);
  const answer = await get(port);
  assert.equal(answer.status, 200);
  assert.match(answer.body, /api-0/);
});

test("a message that breaks the protocol cuts the connection; an unattached connection gives no orders", async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), "homeostat-dp-"));
  const dataPlane = new DataPlaneProcess({ stateDir, log: () => {} });
  t.after(async () => {
    await dataPlane.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });
  await dataPlane.start();
  const socket = connect({ path: dataPlanePaths(stateDir).feed });
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  socket.write(`${JSON.stringify({ type: "snapshot", snapshot: { version: "one" } })}\n`);
  await closed;

  const stranger = connect({ path: dataPlanePaths(stateDir).feed });
  const strangerClosed = new Promise<void>((resolve) => stranger.once("close", () => resolve()));
  stranger.write(`${JSON.stringify({ type: "stop" })}\n`);
  await strangerClosed;
  assert.equal(dataPlane.identity().appliedVersion, 0);
  // Still serving the feed: a controller can attach.
  const controller = await attach(stateDir);
  controller.channel.close("test");
});

test("fencing: orders from a deposed leader (a lower token) are refused and reported; the leader keeps the feed", async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), "homeostat-dp-"));
  const upstream = await startUpstream(t, "api-0");
  const stale = await startUpstream(t, "api-stale");
  const port = await freePort();
  const dataPlane = new DataPlaneProcess({ stateDir, log: () => {} });
  t.after(async () => {
    await dataPlane.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });
  await dataPlane.start();
  const leader = await attach(stateDir, 1001, 7);
  leader.channel.send({
    type: "snapshot",
    snapshot: { ...snapshotFor(5, port, upstream.port, false), fencingToken: 7 },
  });
  await waitFor(() => leader.messages.some((m) => m.type === "ack" && m.version === 5 && m.ok), {
    what: "ack v5",
  });
  assert.equal(dataPlane.identity().fencingToken, 7);

  // The old leader (token 6) wakes up and tries to take the feed: refused, and the leader stays attached.
  const deposed = await attach(stateDir, 1000, 6);
  await deposed.closed;
  let leaderCut = false;
  void leader.closed.then(() => {
    leaderCut = true;
  });
  // Its snapshot, sent over a connection that was cut, changed nothing; nor does a stale snapshot
  // sent by an attached controller (a leader that restarted on an old token file, say).
  leader.channel.send({
    type: "snapshot",
    snapshot: { ...snapshotFor(9, port, stale.port, false), fencingToken: 6 },
  });
  const refusal = await waitFor(() => leader.messages.find((m) => m.type === "ack" && m.version === 9), {
    what: "the answer to the stale snapshot",
  });
  assert.deepEqual(
    refusal.type === "ack" && { ok: refusal.ok, fenced: /^HS_FENCED/.test(refusal.error ?? "") },
    { ok: false, fenced: true },
  );
  assert.equal(dataPlane.identity().appliedVersion, 5);
  assert.equal(leaderCut, false, "the deposed controller did not cut the leader's feed");
  assert.equal(dataPlane.identity().controllerLostAt, null);
  assert.match((await get(port)).body, /api-0/, "still serving the leader's endpoints");
  // Both refusals are events the leader's report carries (so they are stored and shown).
  const fenced = await waitFor(
    () => {
      const events = leader.messages.flatMap((m) => (m.type === "report" ? m.events : []));
      const found = events.filter((e) => e.type === "dataplane.fenced");
      return found.length >= 2 ? found : undefined;
    },
    { what: "two dataplane.fenced events" },
  );
  assert.match(fenced.map((e) => e.message).join("\n"), /tried to attach with fencing token 6/);
  assert.match(fenced.map((e) => e.message).join("\n"), /snapshot v9 with fencing token 6/);

  // The token survives a restart of the data plane (it is persisted with the snapshot).
  const persisted = JSON.parse(readFileSync(dataPlanePaths(stateDir).snapshot, "utf8")) as Snapshot;
  assert.equal(persisted.fencingToken, 7);
});

test("an idle data plane reports every IDLE_REPORT_INTERVAL_MS; traffic and events go out on the next REPORT_INTERVAL_MS tick", async (t) => {
  const { upstream, port, controller } = await startWithController(t);
  controller.channel.send({ type: "snapshot", snapshot: snapshotFor(1, port, upstream.port, false) });
  await waitFor(() => controller.messages.some((m) => m.type === "ack" && m.version === 1 && m.ok), {
    what: "ack v1",
  });
  const reports = () =>
    controller.messages.filter(
      (m): m is Extract<DataPlaneMessage, { type: "report" }> => m.type === "report",
    );
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const gapsFrom = (from: number) => {
    const at = reports()
      .slice(from)
      .map((r) => r.at);
    return at.slice(1).map((x, i) => x - at[i]!);
  };

  // Idle: nothing served, nothing changed. Reports keep coming (the controller's figures are not
  // late: STATS_LAG_TOLERANCE_MS is 750 ms), half as often as the 250 ms tick.
  const idleFrom = reports().length;
  await waitFor(() => reports().length >= idleFrom + 7, { timeoutMs: 15_000, what: "7 idle reports" });
  const idle = gapsFrom(idleFrom);
  assert.ok(
    median(idle) >= REPORT_INTERVAL_MS * 1.5 &&
      median(idle) >= IDLE_REPORT_INTERVAL_MS - REPORT_INTERVAL_MS / 2,
    `idle reports every ${median(idle)} ms at the median (${idle.join(", ")})`,
  );
  assert.ok(median(idle) < 750, `idle reports every ${median(idle)} ms at the median`);

  // Traffic: the windows change every second, and a report goes every tick while they do.
  const busyFrom = reports().length;
  const stop = Date.now() + 2_000;
  while (Date.now() < stop) assert.equal((await get(port)).status, 200);
  const busy = gapsFrom(busyFrom);
  assert.ok(busy.length >= 4, `${busy.length + 1} reports in 2 s of traffic`);
  assert.ok(
    median(busy) < REPORT_INTERVAL_MS * 1.5,
    `reports every ${median(busy)} ms at the median under traffic (${busy.join(", ")})`,
  );
  assert.ok(
    reports()
      .slice(busyFrom)
      .some((r) => (r.windows.services.api?.requests.length ?? 0) > 0),
    "the traffic is in the windows",
  );
});
