/**
 * The `haproxy` data-plane engine end to end (issue 14): fleets whose service says
 * `traffic: { engine: haproxy }` are served by a managed HAProxy, driven through its Runtime API
 * by the real data plane and controller. The embedded engine's scenarios, on real HAProxy: a
 * canary failing analysis rolls back on its own; overload sheds sheddable first and critical
 * never; kill -9 of an instance, of the controller and of the data-plane process under load fail
 * no request, and the same HAProxy serves on and is adopted; `down` leaves no HAProxy; a missing
 * binary is an error at the engine line. Faults are real (release env, signals): injected ones
 * are refused for haproxy services.
 */

import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { haproxyPaths } from "../../src/dataplane/haproxy/haproxyPaths.ts";
import { RuntimeApi } from "../../src/dataplane/haproxy/runtimeApi.ts";
import { isProcessAlive } from "../../src/lib/procStat.ts";
import {
  BAD_ERROR_RATE,
  canaryFleetUnderLoad,
  expectBadCanaryRolledBack,
  type VersionLoad,
} from "../helpers/canaryFleet.ts";
import { type Criticality, type CriticalityOutcome, criticalityLoad } from "../helpers/criticalityLoad.ts";
import {
  allInstances,
  type Controller,
  demoFleetYaml,
  demoRelease,
  eventsSince,
  freePort,
  freePortRange,
  killController,
  processesUnder,
  readyStatus,
  type Sandbox,
  type StatusDoc,
  sandbox,
  sandboxesCleanedAfter,
  waitForServing,
} from "../helpers/e2e.ts";
import { apiCli, dataPlaneReattached, telling, upOnFreePorts } from "../helpers/fleetControl.ts";
import { failures, type SteadyLoad, steadyLoad } from "../helpers/steadyLoad.ts";
import { waitFor } from "../helpers/waitFor.ts";

/** What `/v1/traffic` says of a service served by HAProxy (the fields these tests read). */
interface HaproxyTrafficDoc {
  engine: string;
  endpoints: {
    instance: string;
    release: string;
    ejected: boolean;
    draining: boolean;
    haproxy: { weight: number | null; state: string | null; status: string | null };
  }[];
  haproxy: {
    pid: number | null;
    reloads: number;
    logPort: number;
    logLines: number;
    commandsSent: number;
    lastError: string | null;
  };
}

interface DataPlaneDoc {
  pid: number | null;
  connected: boolean;
  appliedVersion: number;
  restarts: number;
}

type Status = StatusDoc & { dataPlane?: DataPlaneDoc; controller: { pid: number } };

const newSandbox = sandboxesCleanedAfter();

async function trafficOf(box: Sandbox, service = "api"): Promise<HaproxyTrafficDoc> {
  const { services } = await box.get<{ services: Record<string, HaproxyTrafficDoc> }>("/v1/traffic");
  const doc = services[service];
  if (doc === undefined) throw new Error(`no ${service} in /v1/traffic`);
  return doc;
}

/** The `haproxy` service-line `traffic:` block, with `more` lines (each indented by 6 spaces). */
function haproxyTraffic(...more: string[]): string {
  return ["      engine: haproxy", ...more].join("\n");
}

/** Pids of live processes whose command line names `path` (`pgrep -f PATH`, this fleet's only). */
function processesNaming(path: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(path) && isProcessAlive(pid, null))
        pids.push(pid);
    } catch {
      // gone
    }
  }
  return pids;
}

/**
 * HAProxy's own view of a backend's servers, polled from its admin socket (`show stat`), every
 * distinct change kept: the evidence that nothing touched the servers while the controller or the
 * data plane was gone and a new one took over.
 */
function watchServers(
  stateDir: string,
  backend: string,
): { changes: string[]; samples: () => number; stop(): Promise<void> } {
  const api = new RuntimeApi(haproxyPaths(stateDir).adminSocket, { timeoutMs: 2_000 });
  const changes: string[] = [];
  let last: string | null = null;
  let samples = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const text = await api.command("show stat -1 4 -1").catch(() => null);
      if (text !== null) {
        const view = serverView(text, backend);
        samples++;
        if (last !== null && view !== last) changes.push(`${new Date().toISOString()}: ${last} → ${view}`);
        last = view;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  return {
    changes,
    samples: () => samples,
    async stop() {
      running = false;
      await loop;
    },
  };
}

/** HAProxy's count of a backend's retries and redispatches (`show stat`'s wretr + wredis). */
async function backendRetries(stateDir: string, backend: string): Promise<number> {
  const csv = await new RuntimeApi(haproxyPaths(stateDir).adminSocket).command("show stat -1 2 -1");
  const lines = csv.split("\n");
  const columns = (lines.find((l) => l.startsWith("# ")) ?? "").slice(2).split(",");
  const row = lines.map((l) => l.split(",")).find((c) => c[0] === backend && c[1] === "BACKEND");
  if (row === undefined) throw new Error(`no backend ${backend} in show stat`);
  return Number(row[columns.indexOf("wretr")]) + Number(row[columns.indexOf("wredis")]);
}

/** Requests HAProxy has in flight on one server now (`show stat`'s scur). */
async function serverSessions(stateDir: string, backend: string, server: string): Promise<number> {
  const csv = await new RuntimeApi(haproxyPaths(stateDir).adminSocket).command("show stat -1 4 -1");
  const lines = csv.split("\n");
  const columns = (lines.find((l) => l.startsWith("# ")) ?? "").slice(2).split(",");
  const row = lines.map((l) => l.split(",")).find((c) => c[0] === backend && c[1] === server);
  if (row === undefined) throw new Error(`no server ${backend}/${server} in show stat`);
  return Number(row[columns.indexOf("scur")]);
}

/** `server status/weight addr` of each server of `backend` in a `show stat` CSV, one string. */
function serverView(csv: string, backend: string): string {
  const lines = csv.split("\n");
  const columns = (lines.find((l) => l.startsWith("# ")) ?? "").slice(2).split(",");
  const at = (name: string) => columns.indexOf(name);
  return lines
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => l.split(","))
    .filter((c) => c[at("pxname")] === backend && c[at("svname")] !== "BACKEND")
    .map((c) => `${c[at("svname")]} ${c[at("status")]}/${c[at("weight")]} ${c[at("addr")] ?? ""}`)
    .join("; ");
}

describe("one fleet served by HAProxy: kill -9 of an instance, the controller, the data plane; then down", () => {
  let box: Sandbox;
  let port: number;
  let file: string;
  let controller: Controller;
  let load: SteadyLoad | null = null;

  /** The fleet at rest: every instance ready, the data plane attached, HAProxy serving all three equally. */
  const atRest = async (): Promise<{ status: Status; traffic: HaproxyTrafficDoc }> => {
    const status = await readyStatus<Status>(box, 3, (s) => s.dataPlane?.connected === true);
    const traffic = await waitFor(
      async () => {
        const t = await trafficOf(box);
        const rows = t.endpoints.filter((e) => !e.draining);
        return rows.length === 3 &&
          rows.every((e) => !e.ejected && e.haproxy.state === "ready" && e.haproxy.weight === 256)
          ? t
          : null;
      },
      { timeoutMs: 20_000, what: "HAProxy serving all three instances at full weight" },
    );
    return { status, traffic };
  };

  /**
   * The fleet at rest, then steady load (100 rps on 5 connections) and HAProxy's servers watched
   * until both are flowing: what a kill is measured against. `stop` ends both.
   */
  const atRestUnderWatchedLoad = async () => {
    const rest = await atRest();
    const servers = watchServers(box.stateDir, "api");
    const run = steadyLoad({ port, rate: 100, connections: 5 });
    load = run;
    const stop = async () => {
      await run.stop();
      load = null;
      await servers.stop();
    };
    try {
      await waitFor(() => run.outcomes.length >= 100 && servers.samples() >= 3, {
        timeoutMs: 20_000,
        what: "load and HAProxy's servers watched before the kill",
      });
    } catch (error) {
      await stop();
      throw error;
    }
    return { ...rest, servers, run, stop };
  };

  before(async () => {
    box = await sandbox();
    ({ controller, port, file } = await upOnFreePorts(box, 6, (basePort, port) =>
      demoFleetYaml({ services: [{ name: "api", replicas: 3, basePort, port, traffic: haproxyTraffic() }] }),
    ));
    await telling(controller, async () => {
      await atRest();
      await waitForServing(port, "HAProxy serving the front port");
    });
  });
  after(async () => {
    await load?.stop();
    await box.cleanup();
  });

  test("HAProxy serves the front port; /v1/traffic shows it, with figures from its log lines", async () => {
    const traffic = await trafficOf(box);
    assert.equal(traffic.engine, "haproxy");
    const pid = traffic.haproxy.pid;
    assert.ok(pid !== null && isProcessAlive(pid, null), `HAProxy runs (pid ${pid})`);
    assert.match(readFileSync(`/proc/${pid}/cmdline`, "utf8"), /haproxy/);
    // HAProxy runs in the sandbox's directory: the harness's cleanup finds it like any process it left.
    assert.ok(processesUnder(box.dir).includes(pid), "HAProxy's cwd is in the sandbox");
    const seen = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const r = await fetch(`http://127.0.0.1:${port}/`);
      const body = (await r.json()) as { name: string };
      assert.equal(r.status, 200);
      seen.add(body.name);
    }
    assert.deepEqual([...seen].sort(), ["api-0", "api-1", "api-2"], "round robin over the three");
    await waitFor(async () => (await trafficOf(box)).haproxy.logLines >= 30, {
      what: "the 30 requests' log lines received by the data plane",
    });
    const metrics = await (await box.api("GET", "/metrics")).text();
    assert.match(
      metrics,
      /homeostat_proxy_requests_total\{[^}]*service="api"[^}]*result="ok"[^}]*\} [1-9]/,
      "the requests are counted from HAProxy's log lines",
    );
    const fault = await apiCli(box, "fault", "add", "error", "503", "--instance", "api-0");
    assert.notEqual(fault.code, 0, "an injected fault is refused for a haproxy service");
    assert.match(fault.stderr, /HS_BAD_REQUEST/);
  });

  test("kill -9 of an instance under load: 0 failed idempotent requests, and it serves again once replaced", async (t) => {
    const { status } = await atRest();
    const victim = allInstances(status).find((i) => i.name === "api-1")!;
    assert.ok(victim.pid);
    // Requests that take 200 ms: several are in flight on api-1 when it dies, and must be retried
    // elsewhere (GETs are idempotent) as well as the ones sent to it before it leaves the backend.
    load = steadyLoad({ port, rate: 100, connections: 25, path: "/work?ms=200" });
    try {
      await waitFor(() => load!.outcomes.length >= 100, { timeoutMs: 20_000, what: "load before the kill" });
      const retriesBefore = await backendRetries(box.stateDir, "api");
      // Kill it while HAProxy has requests in flight on it (the load's pace varies on a busy box).
      await waitFor(async () => (await serverSessions(box.stateDir, "api", "api-1")) >= 2, {
        timeoutMs: 10_000,
        intervalMs: 5,
        what: "requests in flight on api-1",
      });
      const killedAt = Date.now();
      process.kill(victim.pid, "SIGKILL");
      const replaced = await waitFor(
        async () => {
          const i = allInstances(await box.get<StatusDoc>("/v1/status")).find((x) => x.name === "api-1");
          return i?.state === "ready" && i.pid !== victim.pid ? i : null;
        },
        { timeoutMs: 30_000, what: "api-1 replaced and ready" },
      );
      await waitFor(
        async () => {
          const row = (await trafficOf(box)).endpoints.find((e) => e.instance === "api-1");
          return row?.haproxy.state === "ready" && (row.haproxy.weight ?? 0) > 0;
        },
        { timeoutMs: 10_000, what: "api-1 back in HAProxy's backend" },
      );
      // Served by the new api-1 (its own pid in the answer): the server slot took it back.
      await waitFor(
        async () => {
          const r = await fetch(`http://127.0.0.1:${port}/`);
          const body = (await r.json()) as { name: string; pid: number };
          return body.name === "api-1" && body.pid === replaced.pid;
        },
        { what: "the replaced api-1 answering through HAProxy" },
      );
      const resumedAt = Date.now();
      await waitFor(() => load!.outcomes.some((o) => o.sentAt > resumedAt + 500), { what: "load after" });
      // The kill was felt: requests in flight on the dead api-1 were retried on another server.
      const retries = (await backendRetries(box.stateDir, "api")) - retriesBefore;
      t.diagnostic(`${retries} of HAProxy's attempts retried or redispatched after the kill`);
      assert.ok(retries > 0, "HAProxy retried requests the dead instance could not serve");
      const window = load.between(killedAt - 1_000, Date.now());
      assert.ok(window.length >= 100, `${window.length} requests around the kill`);
      assert.deepEqual(failures(load.outcomes), [], "no request failed");
    } finally {
      await load.stop();
      load = null;
    }
  });

  test("controller SIGKILL under load: 0 failed requests, the same HAProxy serves on, and the next controller changes nothing", async (t) => {
    const { status: before, traffic: hapBefore, servers, run, stop } = await atRestUnderWatchedLoad();
    const hapPid = hapBefore.haproxy.pid!;
    const dataPlanePid = before.dataPlane!.pid!;
    let killedAt = 0;
    try {
      killedAt = Date.now();
      controller.child.kill("SIGKILL");
      await controller.exited;
      // A few seconds without a controller, under load: HAProxy and the data plane carry on.
      await waitFor(
        () => Date.now() - killedAt >= 3_000 && run.outcomes.some((o) => o.sentAt > killedAt + 3_000),
        { timeoutMs: 20_000, what: "3 s under load with no controller" },
      );
      assert.ok(isProcessAlive(hapPid, null), "HAProxy outlived the controller");
      assert.ok(isProcessAlive(dataPlanePid, null), "so did the data plane");
      assert.ok(run.between(killedAt, Date.now()).length >= 100, "requests were served meanwhile");

      controller = box.up(file);
      const adopted = await dataPlaneReattached<Status>(
        box,
        before.dataPlane!.appliedVersion,
        "the new controller attached to the data plane, its snapshot applied",
      );
      assert.equal(adopted.dataPlane!.pid, dataPlanePid, "the running data plane was adopted");
      const attachedAt = Date.now();
      // Several of the data plane's reports (one per 250 ms) and probe rounds after the new
      // controller's first snapshot: anything it was going to change, it has changed by then.
      await waitFor(() => run.outcomes.some((o) => o.sentAt > attachedAt + 2_000), {
        timeoutMs: 20_000,
        what: "2 s of load after the new controller attached",
      });
    } finally {
      await stop();
    }
    t.diagnostic(`HAProxy's servers sampled ${servers.samples()} times across the restart`);
    assert.ok(run.between(killedAt, Date.now()).length >= 100, "requests were served across the restart");
    assert.deepEqual(failures(run.outcomes), [], "no request failed");
    const hapAfter = await trafficOf(box);
    assert.equal(hapAfter.haproxy.pid, hapPid, "the same HAProxy serves");
    assert.equal(hapAfter.haproxy.reloads, hapBefore.haproxy.reloads, "not reloaded");
    assert.deepEqual(servers.changes, [], "no server of HAProxy's backend changed state, weight or address");
    const events = await eventsSince(box, killedAt);
    assert.ok(
      events.some((e) => e.type === "dataplane.adopted"),
      "the data plane was adopted",
    );
    assert.deepEqual(
      events
        .filter((e) => /^dataplane\.haproxy-(started|reloaded|exited)$/.test(e.type))
        .map((e) => e.message),
      [],
      "HAProxy was neither started, reloaded nor lost",
    );
  });

  test("data-plane SIGKILL under load: HAProxy serves on with 0 failed requests; the restarted data plane adopts it", async (t) => {
    const { status: before, traffic: hapBefore, servers, run, stop } = await atRestUnderWatchedLoad();
    const hapPid = hapBefore.haproxy.pid!;
    const firstDataPlane = before.dataPlane!.pid!;
    const configBefore = readFileSync(haproxyPaths(box.stateDir).config, "utf8");
    let killedAt = 0;
    try {
      killedAt = Date.now();
      process.kill(firstDataPlane, "SIGKILL");
      const restarted = await waitFor(
        async () => {
          const s = await box.get<Status>("/v1/status");
          return s.dataPlane?.connected === true && s.dataPlane.restarts === before.dataPlane!.restarts + 1
            ? s
            : null;
        },
        { timeoutMs: 30_000, what: "the controller attached to the restarted data plane" },
      );
      assert.notEqual(restarted.dataPlane!.pid, firstDataPlane, "a new data-plane process");
      // The new data plane adopted the running HAProxy: same pid, and its log lines reach the new
      // process's receiver (bound on the port HAProxy's configuration names).
      const adopted = await waitFor(
        async () => (await eventsSince(box, killedAt)).find((e) => e.type === "dataplane.haproxy-adopted"),
        { timeoutMs: 15_000, what: "dataplane.haproxy-adopted" },
      );
      assert.match(adopted.message, new RegExp(`pid ${hapPid}\\b`));
      const hap = await waitFor(
        async () => {
          const t = await trafficOf(box);
          return t.haproxy.pid === hapPid && t.haproxy.logLines >= 50 ? t : null;
        },
        { timeoutMs: 15_000, what: "the new data plane reporting the same HAProxy and its log lines" },
      );
      const configAfter = readFileSync(haproxyPaths(box.stateDir).config, "utf8");
      if (configAfter !== configBefore) {
        const was = new Set(configBefore.split("\n"));
        const now = new Set(configAfter.split("\n"));
        t.diagnostic(
          `haproxy.cfg changed: - ${[...was].filter((l) => !now.has(l)).join(" | ")} + ${[...now].filter((l) => !was.has(l)).join(" | ")}; ` +
            (await eventsSince(box, killedAt)).map((e) => `${e.type}: ${e.message}`).join(" | "),
        );
      }
      assert.equal(hap.haproxy.reloads, hapBefore.haproxy.reloads, "not reloaded");
      const adoptedAt = Date.now();
      await waitFor(() => run.outcomes.some((o) => o.sentAt > adoptedAt + 1_000), { what: "load after" });
    } finally {
      await stop();
    }
    assert.ok(run.between(killedAt, Date.now()).length >= 100, "requests were served across the restart");
    assert.deepEqual(failures(run.outcomes), [], "no request failed");
    assert.deepEqual(servers.changes, [], "no server of HAProxy's backend changed state, weight or address");
    const events = await eventsSince(box, killedAt);
    assert.deepEqual(
      events.filter((e) => /^dataplane\.haproxy-(started|reloaded)$/.test(e.type)).map((e) => e.message),
      [],
      "HAProxy was neither started again nor reloaded",
    );
  });

  test("a planned data-plane restart under load: 0 failed requests, the successor adopts the same HAProxy", async () => {
    const { status: before, traffic: hapBefore } = await atRest();
    const hapPid = hapBefore.haproxy.pid!;
    const run = steadyLoad({ port, rate: 100, connections: 5 });
    load = run;
    let handedOverAt = 0;
    let hapAfter: HaproxyTrafficDoc;
    try {
      await waitFor(() => run.outcomes.length >= 100, { timeoutMs: 20_000, what: "load before the restart" });
      const restart = await box.api("POST", "/v1/dataplane/restart", { reason: "e2e planned restart" });
      const body = (await restart.json()) as { from: number; to: number };
      assert.equal(restart.status, 200, JSON.stringify(body));
      assert.equal(body.from, before.dataPlane!.pid);
      handedOverAt = Date.now();
      await waitFor(
        async () => {
          const s = await box.get<Status>("/v1/status");
          return s.dataPlane?.connected === true && s.dataPlane.pid === body.to;
        },
        { timeoutMs: 20_000, what: "the controller attached to the successor" },
      );
      hapAfter = await waitFor(
        async () => {
          const doc = await trafficOf(box);
          return doc.haproxy.pid === hapPid && doc.haproxy.logLines >= 50 ? doc : null;
        },
        { timeoutMs: 15_000, what: "the successor reporting the same HAProxy and its log lines" },
      );
      await waitFor(() => run.outcomes.some((o) => o.sentAt > handedOverAt + 1_000), { what: "load after" });
    } finally {
      await run.stop();
      load = null;
    }
    assert.deepEqual(failures(run.outcomes), [], "no request failed across the planned restart");
    const events = await eventsSince(box, handedOverAt - 1_000);
    assert.ok(
      events.some((e) => e.type === "dataplane.haproxy-adopted"),
      "the successor adopted HAProxy",
    );
    // The successor binds HAProxy's log port beside its predecessor (SO_REUSEPORT): the rendered
    // configuration is the same, so HAProxy is not reloaded.
    assert.equal(hapAfter!.haproxy.reloads, hapBefore.haproxy.reloads, "HAProxy was not reloaded");
    assert.equal(hapAfter!.haproxy.logPort, hapBefore.haproxy.logPort, "the same log port");
    assert.ok(!events.some((e) => e.type === "dataplane.haproxy-reloaded"), "no reload event");
  });

  test("HAProxy SIGKILLed: the data plane starts it again, with every server as Homeostat set it, and says so", async () => {
    const { traffic: before } = await atRest();
    const killed = before.haproxy.pid!;
    const killedAt = Date.now();
    // The master and its worker: the whole of HAProxy gone at once.
    for (const pid of processesNaming(haproxyPaths(box.stateDir).dir)) process.kill(pid, "SIGKILL");
    const after = await waitFor(
      async () => {
        const doc = await trafficOf(box);
        return doc.haproxy.pid !== null && doc.haproxy.pid !== killed ? doc : null;
      },
      { timeoutMs: 10_000, what: "a new HAProxy reported" },
    );
    assert.ok(isProcessAlive(after.haproxy.pid!, null));
    // Back at rest: the three servers ready at full weight again, and it serves each instance.
    await atRest();
    const seen = new Set<string>();
    await waitFor(
      async () => {
        const r = await fetch(`http://127.0.0.1:${port}/`);
        await r.arrayBuffer();
        if (r.status === 200) seen.add(r.headers.get("x-homeostat-instance") ?? "?");
        return seen.size === 3;
      },
      { timeoutMs: 10_000, what: "the new HAProxy serving all three instances" },
    );
    const events = await eventsSince(box, killedAt);
    const exited = events.find((e) => e.type === "dataplane.haproxy-exited");
    assert.ok(exited, "the exit is an event");
    assert.match(exited.message, new RegExp(`HAProxy \\(pid ${killed}\\) exited`));
    assert.ok(events.some((e) => e.type === "dataplane.haproxy-started" && e.at >= exited.at));
  });

  test("homeostat down stops HAProxy with the fleet: no process of this fleet's state dir is left", async () => {
    const hapPid = (await trafficOf(box)).haproxy.pid!;
    assert.ok(processesNaming(box.stateDir).includes(hapPid), "HAProxy names the state dir");
    const down = await apiCli(box, "down");
    assert.equal(down.code, 0, down.stderr);
    await controller.exited;
    assert.deepEqual(processesNaming(box.stateDir), [], "no HAProxy (or data plane) of this fleet left");
    assert.ok(!isProcessAlive(hapPid, null));
    const paths = haproxyPaths(box.stateDir);
    assert.ok(
      !existsSync(paths.pidFile) && !existsSync(paths.adminSocket) && !existsSync(paths.masterSocket),
    );
  });
});

describe("a progressive deploy on HAProxy", () => {
  let box: Sandbox;
  let load: VersionLoad | null = null;

  before(async () => {
    box = await sandbox();
    ({ load } = await canaryFleetUnderLoad(box, {
      name: "haproxy-deploy-e2e",
      engine: "haproxy",
      releases: [demoRelease("v1"), demoRelease("v2-bad", { FAULT_ERROR_RATE: String(BAD_ERROR_RATE) })],
      serving: "HAProxy serving v1",
    }));
  });
  after(async () => {
    await load?.stop();
    await box.cleanup();
  });

  test("a canary failing analysis rolls back on its own; errors stay within the canary's share", async (t) => {
    await expectBadCanaryRolledBack(box, load!, t);
  });
});

describe("overload on HAProxy: the queue serves by criticality", () => {
  /**
   * Two instances of WORKERS 2 × WORK_MS 100: 2 × 2 × 1000 / 100 = 40 requests/s of real
   * capacity, and HAProxy lets each hold only its 2 worker slots (maxConcurrentPerInstance), so
   * the rest waits in HAProxy's queue, ordered by criticality, for at most QUEUE_TIMEOUT_MS.
   */
  const CAPACITY_RPS = 40;
  const QUEUE_TIMEOUT_MS = 500;
  /** 60 rps: critical 6 and default 24 (30 of the 40 rps) fit; sheddable's 30 rps do not. */
  const RATE_RPS = 60;
  const MIX = { critical: 1, default: 4, sheddable: 5 };
  let box: Sandbox;
  let port: number;

  before(async () => {
    box = await sandbox();
    let controller: Controller;
    ({ controller, port } = await upOnFreePorts(box, 4, (basePort, port) =>
      demoFleetYaml({
        services: [
          {
            name: "api",
            replicas: 2,
            basePort,
            port,
            env: { WORKERS: "2", WORK_MS: "100" },
            traffic: haproxyTraffic(
              `      limits: { maxConcurrentPerInstance: 2, queueTimeout: ${QUEUE_TIMEOUT_MS}ms }`,
            ),
          },
        ],
      }),
    ));
    await telling(controller, async () => {
      await readyStatus(box, 2);
      await waitForServing(port, "HAProxy serving");
    });
  });
  after(async () => {
    await box.cleanup();
  });

  test("1.5× capacity: sheddable times out in the queue first, default barely, critical never", async (t) => {
    // A request's bound: its wait in the queue, its work, and 2 s for a noisy 2-core machine.
    const load = criticalityLoad({
      port,
      rate: RATE_RPS,
      mix: MIX,
      timeoutMs: QUEUE_TIMEOUT_MS + 100 + 2_000,
    });
    let outcomes: CriticalityOutcome[];
    try {
      await waitFor(() => load.outcomes.length >= RATE_RPS * 8, {
        timeoutMs: 30_000,
        what: "8 s of load at 1.5× capacity",
      });
    } finally {
      await load.stop();
      outcomes = [...load.outcomes];
    }
    const of = (c: Criticality) => outcomes.filter((o) => o.criticality === c);
    const failedOf = (c: Criticality) => of(c).filter((o) => o.status !== 200);
    const served = outcomes.filter((o) => o.status === 200).length;
    const seconds = (Math.max(...outcomes.map((o) => o.at)) - Math.min(...outcomes.map((o) => o.at))) / 1000;
    t.diagnostic(
      `${outcomes.length} requests in ${seconds.toFixed(1)} s, ${served} served; failed: critical ${failedOf("critical").length}/${of("critical").length}, ` +
        `default ${failedOf("default").length}/${of("default").length}, sheddable ${failedOf("sheddable").length}/${of("sheddable").length}`,
    );
    // The capacity is real: at 60 rps offered, about 40 rps are served (overload, not a mistake).
    assert.ok(served <= (CAPACITY_RPS * 1.2 + 5) * seconds + 10, `${served} served: more than the capacity?`);
    assert.deepEqual(failedOf("critical"), [], "no critical request failed");
    const sheddable = failedOf("sheddable");
    const byDefault = failedOf("default");
    // HAProxy refuses what waited too long in its queue with a 503 of its own.
    assert.deepEqual(
      [...sheddable, ...byDefault].filter((o) => o.status !== 503),
      [],
      "every refusal is HAProxy's queue timeout (503)",
    );
    assert.ok(
      sheddable.length >= 0.3 * of("sheddable").length,
      `sheddable carries the overload: ${sheddable.length} of ${of("sheddable").length} shed`,
    );
    assert.ok(
      byDefault.length / of("default").length <= 0.25 * (sheddable.length / of("sheddable").length),
      `default is shed far less than sheddable (${byDefault.length} of ${of("default").length})`,
    );
    if (byDefault.length > 0) {
      assert.ok(
        Math.min(...sheddable.map((o) => o.at)) <= Math.min(...byDefault.map((o) => o.at)),
        "sheddable was shed before default",
      );
    }
    // The data plane counted it from HAProxy's log lines: queue-timeout sheds by criticality.
    const metrics = await waitFor(
      async () => {
        const text = await (await box.api("GET", "/metrics")).text();
        const shed =
          /homeostat_proxy_shed_total\{[^}]*criticality="sheddable"[^}]*reason="queue-timeout"[^}]*\} (\d+)/.exec(
            text,
          );
        return shed !== null && Number(shed[1]) >= sheddable.length ? text : null;
      },
      { what: "the sheddable queue timeouts in /metrics" },
    );
    assert.doesNotMatch(metrics, /homeostat_proxy_shed_total\{[^}]*criticality="critical"[^}]*\} [1-9]/);
  });
});

test("engine: haproxy with HOMEOSTAT_HAPROXY naming a missing file: validate and up exit 1 at the engine line, starting nothing", async () => {
  const box = await newSandbox();
  const yaml = demoFleetYaml({
    services: [
      {
        name: "api",
        replicas: 2,
        basePort: await freePortRange(4),
        port: await freePort(),
        traffic: haproxyTraffic(),
      },
    ],
  });
  const file = box.file("fleet.yaml", yaml);
  const lines = yaml.split("\n");
  const line = lines.findIndex((l) => l.includes("engine: haproxy"));
  const at = new RegExp(
    `fleet\\.yaml:${line + 1}:${lines[line]!.indexOf("haproxy") + 1}: services\\.api\\.traffic\\.engine: `,
  );
  const env = { HOMEOSTAT_HAPROXY: join(box.dir, "no-such-haproxy") };

  const validate = await box.cli(["validate", file], env);
  assert.equal(validate.code, 1, validate.stdout + validate.stderr);
  assert.match(validate.stdout + validate.stderr, at);
  assert.match(validate.stdout + validate.stderr, /haproxy binary/);

  const up = await box.cli(["up", file, "--api-port", String(box.apiPort)], env);
  assert.equal(up.code, 1, up.stdout + up.stderr);
  assert.match(up.stderr, at);
  assert.match(up.stderr, /nothing was started/);
  assert.deepEqual(processesUnder(box.dir), [], "no controller, data plane, HAProxy or instance");
  assert.ok(!existsSync(haproxyPaths(box.stateDir).dir), "no HAProxy directory made");
});

describe("HAProxy with neither controller nor data plane", () => {
  test("it serves on with its last state, and `homeostat down FILE` stops it with the instances", async () => {
    const box = await newSandbox();
    const { controller, port, file } = await upOnFreePorts(box, 6, (basePort, port) =>
      demoFleetYaml({ services: [{ name: "api", replicas: 3, basePort, port, traffic: haproxyTraffic() }] }),
    );
    const { status, hapPid } = await telling(controller, async () => {
      const status = await readyStatus<Status>(box, 3, (s) => s.dataPlane?.connected === true);
      await waitForServing(port, "HAProxy serving the front port");
      const traffic = await trafficOf(box);
      return { status, hapPid: traffic.haproxy.pid! };
    });
    const dataPlanePid = status.dataPlane!.pid!;
    await killController(box, "the controller gone");
    process.kill(dataPlanePid, "SIGKILL");
    await waitFor(() => !isProcessAlive(dataPlanePid, null), { what: "the data plane gone" });

    // Static stability: nothing of Homeostat runs, and HAProxy serves every instance still.
    const seen = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const r = await fetch(`http://127.0.0.1:${port}/`);
      await r.arrayBuffer();
      assert.equal(r.status, 200);
      seen.add(r.headers.get("x-homeostat-instance") ?? "?");
    }
    assert.deepEqual([...seen].sort(), ["api-0", "api-1", "api-2"]);

    const down = await box.cli(["down", file]);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, new RegExp(`stopped HAProxy \\(pid ${hapPid}\\)`));
    assert.match(down.stdout, /stopped 3 instance\(s\) it left behind/);
    assert.deepEqual(processesNaming(box.stateDir), [], "no HAProxy of this fleet left");
    assert.ok(!isProcessAlive(hapPid, null));
  });
});
