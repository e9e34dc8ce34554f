/**
 * The managed HAProxy as a process, on a real HAProxy 2.6: start and stop (nothing left), a start
 * that cannot bind fails with HAProxy's reason, adoption after the process that started it is
 * gone, and seamless reloads through the master socket under steady keep-alive load: no request
 * fails, the servers' runtime state carries over, maps come back from their files.
 */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import {
  type HaproxyServiceConfig,
  renderHaproxyConfig,
  shedMapText,
} from "../../../src/dataplane/haproxy/haproxyConfig.ts";
import type { HaproxyPaths } from "../../../src/dataplane/haproxy/haproxyPaths.ts";
import {
  findHaproxy,
  HaproxyProcess,
  haproxyVersion,
} from "../../../src/dataplane/haproxy/haproxyProcess.ts";
import { isProcessAlive, processesInGroup } from "../../../src/lib/procStat.ts";
import { freePort, NODE, REPO } from "../../helpers/e2e.ts";
import { failures, steadyLoad } from "../../helpers/steadyLoad.ts";
import { waitFor } from "../../helpers/waitFor.ts";
import { traffic } from "../../traffic/proxy/kit.ts";
import { type Cleanup, get, HAPROXY, logListener, startHaproxy, stateDir, upstream } from "./haproxyKit.ts";

function service(name: string, port: number): HaproxyServiceConfig {
  return { name, port, traffic: traffic(), servers: [`${name}-0`, `${name}-1`] };
}

/** Every process of the group killed after the test, whatever happened to the HaproxyProcess. */
function killGroupAfter(t: Cleanup, pgid: () => number | null): void {
  t.after(async () => {
    const group = pgid();
    if (group === null || processesInGroup(group).length === 0) return;
    try {
      process.kill(-group, "SIGKILL");
    } catch {
      // gone
    }
    await waitFor(() => processesInGroup(group).length === 0, { what: "HAProxy's group gone" });
  });
}

test("the binary is found on PATH or in /usr/sbin, or named by HOMEOSTAT_HAPROXY; its version is read", async () => {
  assert.equal(findHaproxy({ PATH: "/nowhere" }), "/usr/sbin/haproxy");
  assert.equal(
    findHaproxy({ PATH: "/nowhere", HOMEOSTAT_HAPROXY: "/usr/sbin/haproxy" }),
    "/usr/sbin/haproxy",
  );
  assert.equal(
    findHaproxy({ PATH: "/usr/sbin", HOMEOSTAT_HAPROXY: "/nowhere/haproxy" }),
    null,
    "a wrong choice is not overridden",
  );
  assert.equal(findHaproxy({ PATH: "/usr/sbin", HOMEOSTAT_HAPROXY: "haproxy" }), null, "relative is refused");
  assert.match(await haproxyVersion(HAPROXY), /^2\.\d+\.\d+/);
});

test("start serves, alive tells, and stop leaves no process, pid file or socket", async (t) => {
  const { paths } = stateDir(t, ["api"]);
  const port = await freePort();
  const proc = await startHaproxy(t, paths, [service("api", port)], await freePort());
  killGroupAfter(t, () => proc.pid);
  assert.ok(proc.alive());
  assert.equal(Number(readFileSync(paths.pidFile, "utf8")), proc.pid, "the pid file names the master");
  const group = proc.processes();
  assert.equal(group.length, 2, "a master and one worker");
  assert.equal((await get(port)).status, 503, "listening, no server yet");
  await proc.stop(5_000);
  assert.equal(proc.alive(), false);
  assert.deepEqual(processesInGroup(proc.pid), []);
  for (const pid of group) assert.equal(isProcessAlive(pid, null), false);
  for (const file of [paths.pidFile, paths.masterSocket, paths.adminSocket]) {
    assert.throws(() => readFileSync(file), /ENOENT/, file);
  }
  await assert.rejects(get(port), /ECONNREFUSED/);
});

test("stop ends at its deadline even with an idle keep-alive connection open", async (t) => {
  const { paths } = stateDir(t, ["api"]);
  const port = await freePort();
  const proc = await startHaproxy(t, paths, [service("api", port)], await freePort());
  killGroupAfter(t, () => proc.pid);
  const up = await upstream(t, "u0");
  await readyServers(proc, "api", [up.port]);
  const socket = connect(port, "127.0.0.1");
  t.after(() => {
    socket.destroy();
  });
  let answer = "";
  socket.on("data", (chunk: Buffer) => {
    answer += chunk.toString();
  });
  socket.write("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
  await waitFor(() => answer.endsWith("u0"), { what: "the keep-alive answer" });
  const started = performance.now();
  await proc.stop(1_000);
  const took = performance.now() - started;
  assert.deepEqual(processesInGroup(proc.pid), []);
  // idle-close-on-response keeps the idle connection open through the soft stop: the deadline ends it.
  assert.ok(took >= 900 && took < 4_000, `stopped in ${Math.round(took)}ms`);
});

test("a start that cannot bind its port fails with HS_PORT_IN_USE and HAProxy's alert and leaves no process", async (t) => {
  const { paths } = stateDir(t, ["api"]);
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise<void>((resolve) => taken.close(() => resolve())));
  const port = (taken.address() as { port: number }).port;
  const config = renderHaproxyConfig({ services: [service("api", port)], paths, logPort: 1 });
  await assert.rejects(
    HaproxyProcess.start({ binary: HAPROXY, paths, config }),
    (error: Error & { code?: string }) => {
      assert.equal(error.code, "HS_PORT_IN_USE");
      assert.match(error.message, /cannot bind|Address already in use/i);
      return true;
    },
  );
  assert.equal(await HaproxyProcess.adopt({ binary: HAPROXY, paths }), null);
});

test("adoption: HAProxy outlives the process that started it and is adopted from its pid file", async (t) => {
  const { paths } = stateDir(t, ["api"]);
  const port = await freePort();
  const config = renderHaproxyConfig({
    services: [service("api", port)],
    paths,
    logPort: await freePort(),
  });
  const module = pathToFileURL(`${REPO}/src/dataplane/haproxy/haproxyProcess.ts`).href;
  const script = `
    const { HaproxyProcess } = await import(${JSON.stringify(module)});
    const p = await HaproxyProcess.start(JSON.parse(process.argv[1]));
    process.stdout.write(String(p.pid) + "\\n");
    setInterval(() => {}, 1000);
  `;
  const child = spawn(
    NODE,
    ["--input-type=module", "-e", script, JSON.stringify({ binary: HAPROXY, paths, config })],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  let started: number | null = null;
  killGroupAfter(t, () => started);
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  let out = "";
  child.stdout.on("data", (chunk: Buffer) => {
    out += chunk.toString();
  });
  started = Number(
    await waitFor(() => /^(\d+)\n/.exec(out)?.[1], {
      what: "the child's HAProxy started",
      timeoutMs: 20_000,
    }),
  );
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;

  const up = await upstream(t, "u0");
  const adopted = await HaproxyProcess.adopt({ binary: HAPROXY, paths });
  assert.ok(adopted, "a running HAProxy is adopted");
  t.after(() => adopted.stop(2_000));
  assert.equal(adopted.pid, started);
  assert.ok(adopted.alive());
  await adopted.admin.command(`set server api/api-0 addr 127.0.0.1 port ${up.port}`);
  await adopted.admin.command("set server api/api-0 state ready");
  assert.equal((await get(port)).body, "u0", "the adopted HAProxy serves and takes runtime commands");
  await adopted.stop(5_000);
  assert.deepEqual(processesInGroup(started), []);
  assert.equal(await HaproxyProcess.adopt({ binary: HAPROXY, paths }), null, "nothing left to adopt");
});

test("adopt refuses a pid file that names a process that is not this HAProxy", async (t) => {
  const { paths } = stateDir(t);
  assert.equal(await HaproxyProcess.adopt({ binary: HAPROXY, paths }), null, "no pid file");
  writeFileSync(paths.pidFile, `${process.pid}\n`);
  assert.equal(await HaproxyProcess.adopt({ binary: HAPROXY, paths }), null, "a live pid, but not HAProxy");
});

async function readyServers(proc: HaproxyProcess, backend: string, ports: readonly number[]): Promise<void> {
  for (const [slot, port] of ports.entries()) {
    await proc.admin.command(`set server ${backend}/${backend}-${slot} addr 127.0.0.1 port ${port}`);
    await proc.admin.command(`set server ${backend}/${backend}-${slot} state ready`);
  }
}

function writeShedMap(paths: HaproxyPaths, svc: string, text: string): void {
  writeFileSync(paths.shedMap(svc), text);
}

test("a reload through the master socket under keep-alive load fails no request and keeps the runtime state", async (t) => {
  const { paths } = stateDir(t, ["api", "web"]);
  const logs = await logListener(t);
  const [apiPort, webPort] = [await freePort(), await freePort()];
  const proc = await startHaproxy(t, paths, [service("api", apiPort)], logs.port);
  killGroupAfter(t, () => proc.pid);
  const ups = [await upstream(t, "u0"), await upstream(t, "u1")];
  await readyServers(
    proc,
    "api",
    ups.map((up) => up.port),
  );
  await proc.admin.command("set server api/api-0 weight 200");
  await proc.admin.command("set server api/api-1 weight 50");
  // A map changed at run time is written to its file too: the new worker reads the file.
  await proc.admin.command(`add map ${paths.shedMap("api")} sheddable 10000`);
  writeShedMap(paths, "api", shedMapText({ sheddable: 1, default: 0 }));

  const load = steadyLoad({ port: apiPort, rate: 4_000, connections: 4 });
  let loading = true;
  t.after(async () => {
    if (loading) await load.stop();
  });
  await waitFor(() => load.outcomes.length >= 200, { what: "load flowing" });
  const web = await upstream(t, "w0");
  // The first reload adds a service (the reason reloads happen); the next ones reload the same.
  const withWeb = renderHaproxyConfig({
    services: [service("api", apiPort), service("web", webPort)],
    paths,
    logPort: logs.port,
  });
  const workers = new Set<string>();
  for (let i = 0; i < 5; i++) {
    const before = load.outcomes.length;
    await proc.reload(withWeb);
    workers.add(/\nPid: (\d+)\n/.exec(await proc.admin.command("show info"))![1]!);
    if (i === 0) await proc.admin.command("set server web/web-1 state drain");
    await waitFor(() => load.outcomes.length >= before + 300, { what: `load after reload ${i + 1}` });
  }
  loading = false;
  await load.stop();
  assert.equal(proc.reloads, 5);
  assert.equal(workers.size, 5, "each reload has a new worker");
  assert.deepEqual(failures(load.outcomes).slice(0, 10), [], `of ${load.outcomes.length} requests`);
  t.diagnostic(`${load.outcomes.length} requests through 5 reloads, 0 failed`);

  // The new worker loaded the dumped server state: addresses, ports, weights.
  const state = await proc.admin.command("show servers state api");
  const rows = state.split("\n").filter((line) => / api-\d /.test(line));
  const row = (name: string) => rows.find((line) => line.includes(` ${name} `))!.split(" ");
  assert.equal(row("api-0")[7], "200", "weight kept");
  assert.equal(row("api-1")[7], "50", "weight kept");
  assert.equal(row("api-0")[18], String(ups[0]!.port), "port kept");
  assert.equal(row("api-1")[5], "2", "still running");
  const web1 = (await proc.admin.command("show servers state web"))
    .split("\n")
    .find((l) => l.includes(" web-1 "));
  assert.equal(
    Number(web1!.split(" ")[6]) & 0x08,
    0x08,
    "a drain set between reloads is kept by the next ones",
  );
  // The map came back from its file.
  assert.match(await proc.admin.command(`show map ${paths.shedMap("api")}`), /sheddable 10000/);
  // The new frontend serves once its servers are set.
  await readyServers(proc, "web", [web.port]);
  assert.equal((await get(webPort)).body, "w0");
  assert.equal((await get(apiPort, { "x-homeostat-criticality": "sheddable" })).status, 503);
  // Besides request lines, the old workers' "Proxy … stopped" notices arrive (one per frontend per reload).
  const others = logs.lines.filter((line) => !line.startsWith("hs1 "));
  t.diagnostic(
    `non-request log lines: ${JSON.stringify([...new Set(others.map((l) => l.replace(/\d+/g, "N")))])}`,
  );
  assert.ok(
    others.every((line) => /^Proxy \S+ stopped/.test(line)),
    JSON.stringify(others),
  );
});

test("a reload HAProxy refuses (at the check, or at the bind) leaves the old worker serving", async (t) => {
  const { paths } = stateDir(t, ["api", "web"]);
  const apiPort = await freePort();
  const proc = await startHaproxy(t, paths, [service("api", apiPort)], await freePort());
  killGroupAfter(t, () => proc.pid);
  const up = await upstream(t, "u0");
  await readyServers(proc, "api", [up.port]);
  const good = readFileSync(paths.config, "utf8");

  await assert.rejects(proc.reload(`${good}\n  bogus-keyword\n`), { code: "HS_HAPROXY_CONFIG" });
  assert.equal(readFileSync(paths.config, "utf8"), good, "a refused configuration is not written");
  assert.equal(proc.reloads, 0);

  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise<void>((resolve) => taken.close(() => resolve())));
  const takenPort = (taken.address() as { port: number }).port;
  const clash = renderHaproxyConfig({
    services: [service("api", apiPort), service("web", takenPort)],
    paths,
    logPort: 1,
  });
  await assert.rejects(proc.reload(clash), (error: Error & { code?: string }) => {
    assert.equal(error.code, "HS_PORT_IN_USE");
    assert.match(error.message, new RegExp(`${takenPort}`), "names the port");
    assert.doesNotMatch(error.message, /bogus-keyword/, "only what this reload wrote");
    return true;
  });
  assert.equal(readFileSync(paths.config, "utf8"), good, "the previous configuration is restored");
  assert.ok(proc.alive());
  assert.equal((await get(apiPort)).body, "u0", "the old worker still serves");
  // And the next good reload works.
  await proc.reload(good);
  assert.equal((await get(apiPort)).body, "u0");
});
