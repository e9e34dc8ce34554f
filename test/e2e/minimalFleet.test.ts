/**
 * Defaults that work (issue 13, item 7): the smallest fleet file a newcomer writes — one service,
 * replicas, a command, a port, no probes — becomes ready and heals; a service that takes no port
 * is judged by its process; status says which probes are in force and that they are defaults; an
 * instance not ready after its startup budget says why, in status and in an event.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { isProcessAlive } from "../../src/lib/procStat.ts";
import { allInstances, freePortRange, type StatusDoc, sandboxesCleanedAfter } from "../helpers/e2e.ts";
import { waitFor } from "../helpers/waitFor.ts";

const newSandbox = sandboxesCleanedAfter();

interface ProbesView {
  defaults: "tcp" | "process" | null;
  startup: string | null;
  readiness: string | null;
  liveness: string | null;
  startupBudgetMs: number | null;
}
interface Status extends StatusDoc {
  services: (StatusDoc["services"][number] & { probes?: ProbesView })[];
}

test("a fleet of python3 -m http.server with no probes becomes ready, says its probes are defaults, and a killed instance is replaced", async () => {
  const box = await newSandbox();
  const basePort = await freePortRange(4);
  const workerPorts = await freePortRange(2);
  const file = box.file(
    "fleet.yaml",
    `version: 1
name: minimal
services:
  web:
    replicas: 2
    basePort: ${basePort}
    release: v1
    releases:
      v1:
        command: python3
        args: [-m, http.server, "{port}", --bind, 127.0.0.1]
  worker:
    replicas: 1
    basePort: ${workerPorts}
    release: v1
    releases:
      v1:
        command: python3
        args: [-c, "import time; time.sleep(3600)"]
`,
  );
  box.up(file);
  const ready = await waitFor(
    async () => {
      const status = await box.get<Status>("/v1/status");
      const instances = allInstances(status);
      return instances.length === 3 && instances.every((i) => i.state === "ready" && i.pid !== null)
        ? status
        : null;
    },
    { timeoutMs: 30_000, what: "the minimal fleet ready" },
  );
  const web = ready.services.find((s) => s.name === "web")!;
  assert.equal(web.probes?.defaults, "tcp", "a service that takes {port} gets TCP probes");
  assert.match(web.probes?.readiness ?? "", /^tcp :port/);
  assert.match(web.probes?.liveness ?? "", /^tcp :port/);
  const worker = ready.services.find((s) => s.name === "worker")!;
  assert.equal(worker.probes?.defaults, "process", "a service without a port is judged by its process");
  assert.equal(worker.probes?.readiness, null);
  // The instances answer on their ports: TCP readiness meant it.
  const answer = await fetch(`http://127.0.0.1:${basePort}/`);
  assert.equal(answer.status, 200);
  await answer.arrayBuffer();

  const shown = await box.cli(["status", "--api-port", String(box.apiPort)]);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, /probes \(defaults, none declared\): startup tcp :port/);
  assert.match(shown.stdout, /probes: none declared; default: judged by its process alone/);

  // A killed instance is replaced (the process exits: no probe needed to see it).
  const victim = allInstances(ready).find((i) => i.name === "web-0")!;
  process.kill(victim.pid!, "SIGKILL");
  await waitFor(() => !isProcessAlive(victim.pid!, null), { what: "web-0 gone" });
  const healed = await waitFor(
    async () => {
      const again = allInstances(await box.get<Status>("/v1/status")).find((i) => i.name === "web-0");
      return again !== undefined && again.state === "ready" && again.pid !== null && again.pid !== victim.pid
        ? again
        : null;
    },
    { timeoutMs: 30_000, what: "web-0 replaced and ready" },
  );
  assert.notEqual(healed.pid, victim.pid);
  const down = await box.cli(["down", "--api-port", String(box.apiPort)]);
  assert.equal(down.code, 0, down.stderr);
});

test("an instance not ready after its startup budget says why, in status and in an event", async () => {
  const box = await newSandbox();
  const basePort = await freePortRange(2);
  // Takes {port} but never listens on it; its readiness probe is declared, with a short budget.
  const file = box.file(
    "fleet.yaml",
    `version: 1
name: slow
services:
  mute:
    replicas: 1
    basePort: ${basePort}
    release: v1
    releases:
      v1:
        command: python3
        args: [-c, "import sys, time; time.sleep(3600)", "{port}"]
    probes:
      readiness: { tcp: {}, interval: 100ms, timeout: 100ms, failureThreshold: 3 }
`,
  );
  box.up(file);
  const event = await waitFor(
    async () => {
      const { events } = await box.get<{
        events: { type: string; instance?: string; reason: string; message: string }[];
      }>("/v1/events?limit=1000");
      return events.find((e) => e.type === "instance.not-ready") ?? null;
    },
    { timeoutMs: 30_000, what: "an instance.not-ready event" },
  );
  assert.equal(event.instance, "mute-0");
  assert.equal(event.reason, "not-ready-after-startup");
  assert.match(event.message, /startup budget/);
  assert.match(event.message, /readiness probe: /, "it says what the probe found");
  const instance = allInstances(await box.get<Status>("/v1/status"))[0]!;
  assert.notEqual(instance.state, "ready");
  assert.match(instance.reason, /not ready after its startup budget/);
  const status = await box.get<Status>("/v1/status");
  assert.equal(status.services[0]!.probes?.defaults, null, "declared probes are not defaults");
  const down = await box.cli(["down", "--api-port", String(box.apiPort)]);
  assert.equal(down.code, 0, down.stderr);
});
