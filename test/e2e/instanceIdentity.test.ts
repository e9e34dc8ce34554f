/**
 * Issue 12, instance identity: a foreign server on an instance's port answers its probes, but
 * it is not the instance. It must never be marked ready nor get the service's traffic, and the
 * events must name it. Two ways in: the port is taken before `up` (the start is blocked), and
 * the port is taken after the instance started but before it bound (the readiness check).
 */

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { after, describe, test } from "node:test";
import {
  allInstances,
  demoFleetYaml,
  freePort,
  freePortRange,
  NODE,
  type Sandbox,
  type StatusDoc,
  sandboxesCleanedAfter,
} from "../helpers/e2e.ts";
import { waitFor } from "../helpers/waitFor.ts";

const newSandbox = sandboxesCleanedAfter();

/** A tiny HTTP server that answers everything 200 and counts the requests that are not probes. */
const FOREIGN_SERVER = `
const http = require("node:http");
let served = 0;
http.createServer((req, res) => {
  if (req.url === "/__count") return res.end(String(served));
  if (req.url !== "/ready" && req.url !== "/healthz") served++;
  res.setHeader("x-instance", "foreign");
  res.end("foreign\\n");
}).listen(Number(process.argv[1]), "127.0.0.1", () => console.log("listening"));
`;

interface Foreign {
  child: ChildProcess;
  pid: number;
  served(): Promise<number>;
}

const foreigners: ChildProcess[] = [];
after(() => {
  for (const child of foreigners)
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
});

async function startForeign(box: Sandbox, port: number): Promise<Foreign> {
  const child = spawn(NODE, ["-e", FOREIGN_SERVER, String(port)], {
    cwd: box.dir,
    stdio: ["ignore", "pipe", "inherit"],
  });
  foreigners.push(child);
  await new Promise<void>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`the foreign server exited (${code})`)));
    child.stdout?.once("data", () => resolve());
  });
  return {
    child,
    pid: child.pid!,
    async served() {
      const r = await fetch(`http://127.0.0.1:${port}/__count`);
      return Number(await r.text());
    },
  };
}

interface Event {
  type: string;
  reason: string;
  message: string;
  instance?: string;
  data?: { to?: string };
}

async function events(box: Sandbox): Promise<Event[]> {
  return (await box.get<{ events: Event[] }>("/v1/events?limit=2000")).events;
}

/** Whether `instance` was ever reported ready. */
function everReady(all: Event[], instance: string): boolean {
  return all.some((e) => e.type === "instance.health" && e.instance === instance && e.data?.to === "ready");
}

/** Send `count` requests through the front port; the `x-instance` header of each answer. */
async function throughFront(port: number, count: number): Promise<string[]> {
  const seen: string[] = [];
  for (let i = 0; i < count; i++) {
    const r = await fetch(`http://127.0.0.1:${port}/`);
    await r.arrayBuffer();
    seen.push(r.headers.get("x-instance") ?? `status ${r.status}`);
  }
  return seen;
}

describe("a foreign process on an instance's port", () => {
  test("taken before up: the start is blocked with an event naming the holder; it gets no traffic", async () => {
    const box = await newSandbox();
    const basePort = await freePortRange(6);
    const front = await freePort();
    const foreign = await startForeign(box, basePort + 1);
    const file = box.file(
      "fleet.yaml",
      demoFleetYaml({ services: [{ name: "api", replicas: 3, basePort, port: front }] }),
    );
    box.up(file);

    const held = await waitFor(
      async () =>
        (await events(box).catch(() => [])).find(
          (e) => e.type === "instance.port-held" && e.instance === "api-1",
        ) ?? null,
      { timeoutMs: 30_000, what: "an instance.port-held event for api-1" },
    );
    assert.equal(held.reason, "port-held");
    assert.match(held.message, new RegExp(`port ${basePort + 1} is already held by pid ${foreign.pid} \\(`));
    assert.match(held.message, /node/);

    await waitFor(
      async () => {
        const status = await box.get<StatusDoc>("/v1/status");
        const ready = allInstances(status)
          .filter((i) => i.state === "ready")
          .map((i) => i.name);
        return ready.includes("api-0") && ready.includes("api-2") ? status : null;
      },
      { timeoutMs: 30_000, what: "api-0 and api-2 ready" },
    );
    const answers = await throughFront(front, 60);
    assert.deepEqual([...new Set(answers)].sort(), ["api-0", "api-2"], `answers: ${answers.join(",")}`);
    // Held back for a while: the start is retried (backoff) and blocked again each time.
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(
      [...new Set(await throughFront(front, 30))].sort(),
      ["api-0", "api-2"],
      "the foreign server never takes the service's traffic",
    );
    assert.equal(await foreign.served(), 0, "no request through the front port reached the foreign server");

    // `status` names the holder while the blocked slot waits out its backoff.
    const api1 = await waitFor(
      async () => {
        const s = await box.get<StatusDoc>("/v1/status");
        const found = allInstances(s).find((i) => i.name === "api-1");
        return found?.state === "exited" ? found : null;
      },
      { timeoutMs: 10_000, what: "api-1 shown as exited between blocked starts" },
    );
    assert.match(api1.reason, new RegExp(`port ${basePort + 1} is already held by pid ${foreign.pid} \\(`));
    assert.notEqual(api1.pid, foreign.pid);
    const all = await events(box);
    assert.equal(everReady(all, "api-1"), false, "api-1 was never marked ready");
    assert.ok(all.filter((e) => e.type === "instance.port-held" && e.instance === "api-1").length >= 2);
    const incidents = (
      await box.get<{ incidents: { instance: string; reason: string }[] }>("/v1/incidents")
    ).incidents.filter((i) => i.instance === "api-1");
    assert.equal(incidents.length, 1, "the blocked start opened one incident");

    // The holder goes away: the next start takes the port, and api-1 serves.
    foreign.child.kill("SIGKILL");
    await waitFor(
      async () => {
        const s = await box.get<StatusDoc>("/v1/status");
        return allInstances(s).find((i) => i.name === "api-1")?.state === "ready";
      },
      { timeoutMs: 30_000, what: "api-1 ready once the port is free" },
    );
  });

  test("taken after the start, before the instance bound: never ready, replaced, holder named", async () => {
    const box = await newSandbox();
    const basePort = await freePortRange(2);
    const front = await freePort();
    // An instance that binds late: the foreign server gets there first.
    const lateBinder = box.file(
      "late.js",
      `setTimeout(() => require("node:http").createServer((q, s) => s.end("late")).listen(Number(process.env.PORT), "127.0.0.1"), 3000);`,
    );
    const yaml = demoFleetYaml({ services: [{ name: "api", replicas: 1, basePort, port: front }] })
      .replace(/args: \[.*\]/, `args: [${JSON.stringify(lateBinder)}]`)
      .replace("failureThreshold: 100", "failureThreshold: 200");
    box.up(box.file("fleet.yaml", yaml));

    await waitFor(
      async () =>
        (await events(box).catch(() => [])).some(
          (e) => e.type === "instance.started" && e.instance === "api-0",
        ),
      { timeoutMs: 30_000, what: "api-0 started" },
    );
    const foreign = await startForeign(box, basePort);

    const held = await waitFor(
      async () =>
        (await events(box)).find((e) => e.type === "instance.port-held" && e.instance === "api-0") ?? null,
      { timeoutMs: 30_000, what: "an instance.port-held event for api-0" },
    );
    assert.equal(held.reason, "port-held");
    assert.match(held.message, new RegExp(`port ${basePort} is answered by pid ${foreign.pid} \\(`));

    await new Promise((r) => setTimeout(r, 1000));
    const answers = await throughFront(front, 20);
    assert.ok(!answers.includes("foreign"), `answers: ${answers.join(",")}`);
    assert.equal(await foreign.served(), 0, "no request through the front port reached the foreign server");
    const all = await events(box);
    assert.equal(everReady(all, "api-0"), false, "api-0 was never marked ready");
    assert.ok(
      all.some(
        (e) => e.type === "instance.unhealthy" && e.instance === "api-0" && /answered by pid/.test(e.message),
      ),
      "the impostor made the run a startup failure",
    );
    foreign.child.kill("SIGKILL");
  });
});
