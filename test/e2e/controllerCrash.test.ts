/**
 * The recoverer must survive its own crash: a SIGKILLed controller leaves its instances running;
 * the next `up` adopts them (same pids, no duplicates), and `down` leaves nothing behind.
 */

import assert from "node:assert/strict";
import { after, test } from "node:test";
import { isProcessAlive } from "../../src/lib/procStat.ts";
import {
  allInstances,
  demoFleetYaml,
  freePortRange,
  processesUnder,
  type StatusDoc,
  sandbox,
} from "../helpers/e2e.ts";
import { waitFor } from "../helpers/waitFor.ts";

const boxes: Awaited<ReturnType<typeof sandbox>>[] = [];
after(async () => {
  await Promise.all(boxes.map((b) => b.cleanup()));
});

async function readyPids(
  box: Awaited<ReturnType<typeof sandbox>>,
  count: number,
): Promise<Map<string, number>> {
  return await waitFor(
    async () => {
      const instances = allInstances(await box.get<StatusDoc>("/v1/status"));
      if (instances.length !== count || !instances.every((i) => i.state === "ready" && i.pid !== null))
        return null;
      return new Map(instances.map((i) => [i.name, i.pid!]));
    },
    { timeoutMs: 30_000, what: `${count} ready instances` },
  );
}

test("after the controller is SIGKILLed, the next one adopts every live instance and starts no duplicate", async () => {
  const box = await sandbox();
  boxes.push(box);
  const basePort = await freePortRange(3);
  const file = box.file("fleet.yaml", demoFleetYaml({ services: [{ name: "api", replicas: 3, basePort }] }));

  const first = box.up(file);
  const pidsBefore = await readyPids(box, 3);
  first.child.kill("SIGKILL");
  await first.exited;
  for (const pid of pidsBefore.values())
    assert.ok(isProcessAlive(pid, null), `instance ${pid} survived the controller`);

  // One instance also dies while no controller runs: it must be reaped and replaced, not adopted.
  const lost = pidsBefore.get("api-0")!;
  process.kill(lost, "SIGKILL");
  await waitFor(() => !isProcessAlive(lost, null), { what: "api-0 gone" });

  const second = box.up(file);
  const pidsAfter = await readyPids(box, 3);
  assert.equal(pidsAfter.get("api-1"), pidsBefore.get("api-1"), "api-1 adopted, not restarted");
  assert.equal(pidsAfter.get("api-2"), pidsBefore.get("api-2"), "api-2 adopted, not restarted");
  assert.notEqual(pidsAfter.get("api-0"), lost, "api-0 replaced");

  const events = (await box.get<{ events: { type: string; instance?: string }[] }>("/v1/events?limit=1000"))
    .events;
  const adopted = events
    .filter((e) => e.type === "instance.adopted")
    .map((e) => e.instance)
    .sort();
  assert.deepEqual(adopted, ["api-1", "api-2"]);
  assert.ok(events.some((e) => e.type === "instance.reaped" && e.instance === "api-0"));
  const incidents = (await box.get<{ incidents: { instance: string; reason: string }[] }>("/v1/incidents"))
    .incidents;
  assert.ok(incidents.some((i) => i.instance === "api-0" && i.reason === "lost-while-controller-down"));

  // Exactly the controller and three instances run in the sandbox: nothing duplicated or orphaned.
  const running = processesUnder(box.dir).filter((pid) => isProcessAlive(pid, null));
  assert.equal(running.length, 4, `processes in the sandbox: ${running.join(", ")}`);

  const down = await box.cli(["down", "--api-port", String(box.apiPort)]);
  assert.equal(down.code, 0, down.stderr);
  const exit = await second.exited;
  assert.equal(exit.code, 0);
  assert.deepEqual(processesUnder(box.dir), [], "down leaves no process behind");
});

test("down cleans up the instances of a controller that was SIGKILLed", async () => {
  const box = await sandbox();
  boxes.push(box);
  const basePort = await freePortRange(2);
  const file = box.file("fleet.yaml", demoFleetYaml({ services: [{ name: "web", replicas: 2, basePort }] }));
  const controller = box.up(file);
  const pids = await readyPids(box, 2);
  controller.child.kill("SIGKILL");
  await controller.exited;

  const noFile = await box.cli(["down", "--api-port", String(box.apiPort)]);
  assert.equal(noFile.code, 1, "without a controller or a state dir, down cannot know what to stop");
  assert.match(noFile.stderr, /homeostat down FLEET\.yaml/);

  const down = await box.cli(["down", file, "--api-port", String(box.apiPort)]);
  assert.equal(down.code, 0, down.stderr);
  assert.match(down.stdout, /stopped 2 instance\(s\)/);
  for (const pid of pids.values()) assert.equal(isProcessAlive(pid, null), false, `pid ${pid} stopped`);
  assert.deepEqual(processesUnder(box.dir), []);
});

test("Ctrl-C (SIGINT) stops every instance and the controller exits 0", async () => {
  const box = await sandbox();
  boxes.push(box);
  const basePort = await freePortRange(2);
  const file = box.file("fleet.yaml", demoFleetYaml({ services: [{ name: "web", replicas: 2, basePort }] }));
  const controller = box.up(file);
  const pids = await readyPids(box, 2);
  controller.child.kill("SIGINT");
  const exit = await controller.exited;
  assert.equal(exit.code, 0, controller.output());
  for (const pid of pids.values()) assert.equal(isProcessAlive(pid, null), false);
  assert.deepEqual(processesUnder(box.dir), []);
});

test("up on a broken fleet file starts nothing and exits 1 with file:line:col", async () => {
  const box = await sandbox();
  boxes.push(box);
  const basePort = await freePortRange(2);
  const good = demoFleetYaml({ services: [{ name: "web", replicas: 2, basePort }] });
  const file = box.file("fleet.yaml", good.replace("replicas: 2", 'replicas: "two"'));
  const controller = box.up(file);
  const exit = await controller.exited;
  assert.equal(exit.code, 1);
  assert.match(controller.output(), /fleet\.yaml:\d+:\d+: services\.web\.replicas: /);
  assert.match(controller.output(), /nothing was started/);
  assert.deepEqual(processesUnder(box.dir), []);
});

test("a second controller on the same state directory is refused", async () => {
  const box = await sandbox();
  boxes.push(box);
  const basePort = await freePortRange(1);
  const file = box.file("fleet.yaml", demoFleetYaml({ services: [{ name: "web", replicas: 1, basePort }] }));
  box.up(file);
  await readyPids(box, 1);
  const other = await box.cli([
    "up",
    file,
    "--api-port",
    String(box.apiPort + 1 === 65536 ? 1025 : box.apiPort + 1),
  ]);
  assert.equal(other.code, 1, other.stderr);
  assert.match(other.stderr, /HS_STATE_LOCKED/);
  const instances = allInstances(await box.get<StatusDoc>("/v1/status"));
  assert.equal(instances.length, 1, "the refused controller started nothing");
});
