/**
 * The Runtime API against a real HAProxy 2.6: placeholder servers become real ones (addr, port,
 * state), weights and states read back from `show servers state` / `show stat`, the shed map is
 * set, added and cleared at run time and the shedding rule follows it, errors are errors, and our
 * log line arrives over UDP with its fields in the documented order.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { type HaproxyServiceConfig, shedMapText } from "../../../src/dataplane/haproxy/haproxyConfig.ts";
import { RuntimeApi } from "../../../src/dataplane/haproxy/runtimeApi.ts";
import { freePort } from "../../helpers/e2e.ts";
import { waitFor } from "../../helpers/waitFor.ts";
import { traffic } from "../../traffic/proxy/kit.ts";
import { type Cleanup, get, logListener, startHaproxy, stateDir, upstream } from "./haproxyKit.ts";

/** `show servers state <backend>` as rows keyed by server name. */
async function serversState(api: RuntimeApi, backend: string): Promise<Map<string, Record<string, string>>> {
  const lines = (await api.command(`show servers state ${backend}`)).split("\n");
  const header = lines
    .find((line) => line.startsWith("# be_id"))!
    .slice(2)
    .split(" ");
  const rows = new Map<string, Record<string, string>>();
  for (const line of lines) {
    if (!/^\d+ /.test(line) || line.split(" ").length !== header.length) continue;
    const values = line.split(" ");
    const row = Object.fromEntries(header.map((key, i) => [key, values[i]!]));
    rows.set(row.srv_name!, row);
  }
  return rows;
}

/** `show stat` (CSV) rows of a backend's servers, keyed by server name. */
async function stat(api: RuntimeApi, backend: string): Promise<Map<string, Record<string, string>>> {
  const lines = (await api.command("show stat")).split("\n").filter((line) => line !== "");
  const header = lines[0]!.replace(/^# /, "").split(",");
  const rows = new Map<string, Record<string, string>>();
  for (const line of lines.slice(1)) {
    const values = line.split(",");
    const row = Object.fromEntries(header.map((key, i) => [key, values[i] ?? ""]));
    if (row.pxname === backend && row.svname !== "BACKEND" && row.svname !== "FRONTEND")
      rows.set(row.svname!, row);
  }
  return rows;
}

async function oneService(t: Cleanup, overrides: Parameters<typeof traffic>[0] = {}) {
  const { paths } = stateDir(t, ["api"]);
  const logs = await logListener(t);
  const port = await freePort();
  const service: HaproxyServiceConfig = {
    name: "api",
    port,
    traffic: traffic(overrides),
    servers: ["api-0", "api-1", "api-2"],
  };
  const proc = await startHaproxy(t, paths, [service], logs.port);
  return { paths, logs, port, proc, api: proc.admin };
}

test("a placeholder server serves once the Runtime API sets its addr, port and state ready", async (t) => {
  const { port, api } = await oneService(t);
  const up = await upstream(t, "u0");
  const before = await get(port);
  assert.equal(before.status, 503, "no server is ready yet");
  await api.command(`set server api/api-0 addr 127.0.0.1 port ${up.port}`);
  await api.command("set server api/api-0 state ready");
  const after = await get(port);
  assert.equal(after.status, 200);
  assert.equal(after.body, "u0");
  const state = (await serversState(api, "api")).get("api-0")!;
  assert.equal(state.srv_port, String(up.port));
  assert.equal(state.srv_op_state, "2", "running");
});

test("weights and drain/maint states read back from show servers state and show stat", async (t) => {
  const { port, api } = await oneService(t);
  const ups = [await upstream(t, "u0"), await upstream(t, "u1"), await upstream(t, "u2")];
  for (const [slot, up] of ups.entries()) {
    await api.command(`set server api/api-${slot} addr 127.0.0.1 port ${up.port}`);
    await api.command(`set server api/api-${slot} state ready`);
  }
  await api.command("set server api/api-0 weight 200");
  await api.command("set server api/api-1 state drain");
  await api.command("set server api/api-2 state maint");
  const state = await serversState(api, "api");
  assert.equal(state.get("api-0")!.srv_uweight, "200");
  // Admin state bits (2.6 server.h): 0x01 forced maint, 0x04 maint from the config's `disabled`
  // (kept as a mark after `state ready`), 0x08 forced drain.
  assert.equal(Number(state.get("api-1")!.srv_admin_state) & 0x08, 0x08, "drain");
  assert.equal(Number(state.get("api-2")!.srv_admin_state) & 0x01, 0x01, "maint");
  const stats = await stat(api, "api");
  assert.equal(stats.get("api-0")!.weight, "200");
  assert.equal(stats.get("api-1")!.status, "DRAIN");
  assert.equal(stats.get("api-2")!.status, "MAINT");

  // Drain and maint take no new requests: all go to api-0.
  for (let i = 0; i < 6; i++) assert.equal((await get(port)).body, "u0");
  assert.equal(ups[1]!.hits + ups[2]!.hits, 0);

  // Weights share the traffic (roundrobin honours runtime weights).
  await api.command("set server api/api-1 state ready");
  await api.command("set server api/api-0 weight 1");
  await api.command("set server api/api-1 weight 3");
  const counts: Record<string, number> = {};
  for (let i = 0; i < 40; i++) {
    const body = (await get(port)).body;
    counts[body] = (counts[body] ?? 0) + 1;
  }
  assert.equal(counts.u0, 10);
  assert.equal(counts.u1, 30);
});

test("the log map samples answered requests at run time; what HAProxy answers itself is always logged", async (t) => {
  const { port, api, paths, logs } = await oneService(t);
  const up = await upstream(t, "u0");
  await api.command(`set server api/api-0 addr 127.0.0.1 port ${up.port}`);
  await api.command("set server api/api-0 state ready");
  const answered = () => logs.lines.filter((line) => line.includes(" api-0 200 "));
  for (let i = 0; i < 40; i++) assert.equal((await get(port)).status, 200);
  await waitFor(() => answered().length === 40, { what: "a line for each of 40 answered requests" });
  assert.ok(
    answered().every((line) => line.endsWith(" 10000\n")),
    "each says all are logged",
  );

  // 1 in 20: about 20 lines for 400 answered requests (at least 1, far fewer than 400).
  await api.command(`add map ${paths.logMap("api")} sample 500`);
  const before = answered().length;
  for (let i = 0; i < 400; i++) assert.equal((await get(port)).status, 200);
  // A request HAProxy answers itself (no server ready): logged whatever the share.
  await api.command("set server api/api-0 state maint");
  assert.equal((await get(port)).status, 503);
  await waitFor(() => logs.lines.some((line) => line.includes(" <NOSRV> 503 ")), { what: "the 503's line" });
  const sampled = answered().slice(before);
  assert.ok(sampled.length >= 1 && sampled.length <= 60, `${sampled.length} lines for 400 answered requests`);
  assert.ok(
    sampled.every((line) => line.endsWith(" 500\n")),
    "each says it stands for 20",
  );
});

test("the shed map is set, added and cleared at run time and the shedding rule follows it", async (t) => {
  const { port, api, paths } = await oneService(t);
  const up = await upstream(t, "u0");
  await api.command(`set server api/api-0 addr 127.0.0.1 port ${up.port}`);
  await api.command("set server api/api-0 state ready");
  const map = paths.shedMap("api");

  await assert.rejects(api.command(`set map ${map} sheddable 10000`), /entry not found/, "set needs the key");
  await api.command(`add map ${map} sheddable 10000`);
  await api.command(`add map ${map} default 0`);
  assert.match(await api.command(`show map ${map}`), /sheddable 10000\n.*default 0\n/);

  const shed = await get(port, { "x-homeostat-criticality": "Sheddable" });
  assert.equal(shed.status, 503);
  assert.equal(shed.headers["x-homeostat-shed"], "failover-shed");
  assert.equal(shed.headers["retry-after"], "1");
  assert.equal(shed.body, "shed\n");
  assert.equal(
    (await get(port, { "x-homeostat-criticality": "critical" })).status,
    200,
    "critical is never shed",
  );
  assert.equal((await get(port)).status, 200, "no header is default, at 0");
  assert.equal((await get(port, { "x-homeostat-criticality": "bogus" })).status, 200, "unknown is default");

  await api.command(`set map ${map} default 10000`);
  assert.equal(
    (await get(port, { "x-homeostat-criticality": "bogus" })).status,
    503,
    "unknown is default, now shed",
  );
  assert.equal((await get(port, { "x-homeostat-criticality": "critical" })).status, 200);

  // Half: both outcomes happen (rand(10000) < 5000 about half the time).
  await api.command(`set map ${map} default 5000`);
  const statuses = new Set<number>();
  for (let i = 0; i < 60 && statuses.size < 2; i++) statuses.add((await get(port)).status);
  assert.deepEqual([...statuses].sort(), [200, 503]);

  await api.command(`clear map ${map}`);
  assert.equal((await api.command(`show map ${map}`)).trim(), "");
  assert.equal(
    (await get(port, { "x-homeostat-criticality": "sheddable" })).status,
    200,
    "a cleared map sheds nothing",
  );
  assert.equal(shedMapText({ sheddable: 1, default: 0.5 }), "sheddable 10000\ndefault 5000\n");
});

test("HAProxy's error answers are errors", async (t) => {
  const { api } = await oneService(t);
  for (const [cmd, why] of [
    ["bogus command", /Unknown command/],
    ["set server api/nope weight 2", /No such server/],
    ["set server nope/api-0 weight 2", /No such backend/],
    ["set server api/api-0 weight 300", /Absolute weight/],
    ["show map /nowhere.map", /Unknown map identifier/],
  ] as const) {
    await assert.rejects(api.command(cmd), (error: Error & { code?: string }) => {
      assert.equal(error.code, "HS_HAPROXY_RUNTIME", cmd);
      assert.match(error.message, why);
      return true;
    });
  }
  await assert.rejects(new RuntimeApi(`${api.socketPath}.absent`).command("show info"), /ENOENT/);
});

/**
 * The log line, and the termination states HAProxy 2.6 writes for each way a request ends.
 * `%tsc` is four characters: session end cause, session state, then two cookie/persistence flags.
 */
test("the hs1 log line arrives over UDP with its fields in order, and each ending's termination state", async (t) => {
  const { port, api, logs, paths } = await oneService(t, {
    retries: { maxAttempts: 2, perTryTimeoutMs: 2_000 },
    limits: { maxConcurrentPerInstance: 1, queueTimeoutMs: 300 },
  });
  const up = await upstream(t, "u0");
  await api.command(`set server api/api-0 addr 127.0.0.1 port ${up.port}`);
  await api.command("set server api/api-0 state ready");

  const lineFor = async (what: string, count: number): Promise<string> =>
    await waitFor(() => (logs.lines.length >= count ? logs.lines[count - 1]! : null), { what });
  const fields = (received: string) => {
    assert.ok(received.endsWith("\n"), "format raw: the log-format text, then a newline");
    const line = received.slice(0, -1);
    const [
      tag,
      backend,
      server,
      status,
      ta,
      tw,
      tc,
      tr,
      retries,
      ts,
      crit,
      method,
      local,
      logShare,
      ...rest
    ] = line.split(" ");
    assert.equal(rest.length, 0, `14 fields: ${line}`);
    return { tag, backend, server, status, ta, tw, tc, tr, retries, ts, crit, method, local, logShare };
  };
  const seen: Record<string, string> = {};

  // A normal 200.
  assert.equal((await get(port, { "x-homeostat-criticality": "critical" })).status, 200);
  const ok = fields(await lineFor("the 200's line", 1));
  assert.equal(ok.tag, "hs1");
  assert.equal(ok.backend, "api");
  assert.equal(ok.server, "api-0");
  assert.equal(ok.status, "200");
  for (const timing of [ok.ta, ok.tw, ok.tc, ok.tr]) assert.match(timing!, /^\d+$/);
  assert.equal(ok.retries, "0");
  // Every answered request logged (the log map's share is all of them: 10000 in 1/10000ths).
  assert.equal(ok.logShare, "10000");
  assert.equal(ok.crit, "critical");
  assert.equal(ok.method, "GET");
  assert.equal(ok.local, "-");
  seen.ok = ok.ts!;

  // A shed (`http-request return`).
  await api.command(`add map ${paths.shedMap("api")} sheddable 10000`);
  assert.equal((await get(port, { "x-homeostat-criticality": "sheddable" }, "POST")).status, 503);
  const shed = fields(await lineFor("the shed's line", 2));
  assert.equal(shed.backend, "api", "shed in the backend, so the line names the service");
  assert.equal(shed.server, "<NOSRV>");
  assert.equal(shed.status, "503");
  assert.equal(shed.crit, "sheddable");
  assert.equal(shed.method, "POST");
  assert.equal(shed.local, "failover-shed");
  assert.equal(shed.tr, "-1");
  seen.shed = shed.ts!;

  // Queue timeout: api-0 (maxconn 1) holds one slow request; the next waits 300 ms and gets 503.
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  up.handler = (_req, res) => {
    void held.then(() => res.end("slow"));
  };
  const slow = get(port);
  await waitFor(() => up.hits >= 2, { what: "the slow request at the upstream" });
  const queued = await get(port);
  assert.equal(queued.status, 503);
  release();
  assert.equal((await slow).status, 200);
  const lines = await waitFor(() => (logs.lines.length >= 4 ? logs.lines.slice(2, 4) : null), {
    what: "2 lines",
  });
  const queue = fields(lines.find((line) => line.includes(" 503 "))!);
  // Without persistence a request waits in the backend's queue, for no particular server.
  assert.equal(queue.server, "<NOSRV>");
  assert.ok(Number(queue.tw) >= 290, `waited the queue timeout: ${queue.tw}`);
  seen.queueTimeout = queue.ts!;
  up.handler = (_req, res) => res.end("u0");

  // No server available.
  await api.command("set server api/api-0 state maint");
  assert.equal((await get(port)).status, 503);
  const none = fields(await lineFor("the no-server line", 5));
  assert.equal(none.server, "<NOSRV>");
  assert.equal(none.status, "503");
  seen.noServer = none.ts!;

  // Connection refused on api-1, retried (redispatched) to api-0.
  const closed = await freePort();
  await api.command("set server api/api-0 state ready");
  await api.command(`set server api/api-1 addr 127.0.0.1 port ${closed}`);
  await api.command("set server api/api-1 state ready");
  await api.command("set server api/api-0 weight 1");
  await api.command("set server api/api-1 weight 256");
  let retried: ReturnType<typeof fields> | undefined;
  for (let i = 0; i < 10 && retried === undefined; i++) {
    const before = logs.lines.length;
    assert.equal((await get(port)).status, 200, "a refused connection is retried elsewhere");
    const line = fields(await lineFor("a line", before + 1));
    if (line.retries !== "0") retried = line;
  }
  assert.ok(retried, "a request met the refusing server");
  assert.equal(retried.server, "api-0");
  assert.match(retried.retries!, /^\+1$/, "one retry, redispatched");
  seen.refusedRetried = retried.ts!;

  t.diagnostic(`termination states: ${JSON.stringify(seen)}; lines: ${JSON.stringify(logs.lines)}`);
  assert.deepEqual(seen, {
    ok: "----",
    shed: "LR--",
    queueTimeout: "sQ--",
    noServer: "SC--",
    refusedRetried: "----",
  });
});

test("under overload the queue serves critical before default before sheddable (set-priority-class)", async (t) => {
  const { port, api } = await oneService(t, {
    limits: { maxConcurrentPerInstance: 1, queueTimeoutMs: 5_000 },
  });
  const up = await upstream(t, "u0");
  await api.command(`set server api/api-0 addr 127.0.0.1 port ${up.port}`);
  await api.command("set server api/api-0 state ready");
  const order: string[] = [];
  const releases: (() => void)[] = [];
  up.handler = (req, res) => {
    order.push(String(req.headers["x-homeostat-criticality"] ?? "first"));
    releases.push(() => res.end("ok"));
  };
  const first = get(port);
  await waitFor(() => releases.length === 1, { what: "the first request holding the only slot" });
  const queued: Promise<unknown>[] = [];
  for (const crit of ["sheddable", "default", "critical"]) {
    queued.push(get(port, { "x-homeostat-criticality": crit }));
    // Each is in the queue before the next is sent, so arrival order is the reverse of the expected order.
    await waitFor(async () => (await queueLength(api)) === queued.length, { what: `${crit} queued` });
  }
  for (let i = 0; i < 4; i++) {
    await waitFor(() => releases.length > i, { what: `request ${i + 1} at the upstream` });
    releases[i]!();
  }
  await Promise.all([first, ...queued]);
  assert.deepEqual(order, ["first", "critical", "default", "sheddable"]);
});

/** Requests waiting in the backend's queue (show stat `qcur` of the BACKEND row). */
async function queueLength(api: RuntimeApi): Promise<number> {
  const lines = (await api.command("show stat")).split("\n");
  const header = lines[0]!.replace(/^# /, "").split(",");
  const row = lines.find((line) => line.startsWith("api,BACKEND,"))!.split(",");
  return Number(row[header.indexOf("qcur")]);
}
