/**
 * The controller's lifecycle apart from the fleet (issue 13, item 6): `down --keep-fleet` and
 * SIGQUIT stop the controller alone — the next `up` adopts the same processes, restarts nothing,
 * and traffic through the data plane never fails meanwhile (how Homeostat is upgraded); `up
 * --detach` runs it in the background with a pid file, and `down` stops it; a state directory a
 * live controller owns refuses a second one.
 */

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { isProcessAlive } from "../../src/lib/procStat.ts";
import {
  allInstances,
  apiFleetOfThree,
  freePort,
  processesUnder,
  readyStatus,
  type Sandbox,
  type StatusDoc,
  sandboxesCleanedAfter,
  waitForServing,
} from "../helpers/e2e.ts";
import { failures, steadyLoad } from "../helpers/steadyLoad.ts";
import { waitFor } from "../helpers/waitFor.ts";

const newSandbox = sandboxesCleanedAfter();

type Status = StatusDoc & {
  dataPlane?: { pid: number | null; connected: boolean };
  controller: { pid: number };
};
interface EventRow {
  type: string;
  at: number;
  instance?: string;
  reason: string;
}

async function eventsSince(box: Sandbox, at: number): Promise<EventRow[]> {
  const { events } = await box.get<{ events: EventRow[] }>("/v1/events?limit=10000");
  return events.filter((e) => e.at >= at);
}

function pidsOf(status: StatusDoc): Map<string, number> {
  return new Map(allInstances(status).map((i) => [i.name, i.pid!]));
}

/**
 * Stop the running controller with `stop` (keeping the fleet), check that everything it ran is
 * still alive and serving, then start another `up` and check it adopted the same processes and
 * restarted none, with steady traffic through the data plane failing nowhere in between.
 */
async function restartKeepingFleet(
  stop: (box: Sandbox, first: ReturnType<Sandbox["up"]>) => Promise<void>,
): Promise<void> {
  const box = await newSandbox();
  const { file, port } = await apiFleetOfThree(box);
  const first = box.up(file);
  const before = await readyStatus<Status>(box, 3, (s) => s.dataPlane?.connected === true);
  await waitForServing(port, "the front port");
  const pidsBefore = pidsOf(before);
  const dataPlanePid = before.dataPlane!.pid!;
  const load = steadyLoad({ port, rate: 40, connections: 4 });
  try {
    await waitFor(() => load.outcomes.length >= 20, { what: "load flowing" });
    await stop(box, first);
    const exit = await first.exited;
    assert.equal(exit.code, 0, first.output());
    assert.match(first.output(), /controller stopped; the instances and the data plane keep running/);
    for (const [name, pid] of pidsBefore) assert.ok(isProcessAlive(pid, null), `${name} kept running`);
    assert.ok(isProcessAlive(dataPlanePid, null), "the data plane kept running");
    // Traffic keeps flowing with no controller at all.
    const gapFrom = Date.now();
    await waitFor(() => load.between(gapFrom, Number.POSITIVE_INFINITY).length >= 20, {
      what: "requests served while no controller runs",
    });

    const secondAt = Date.now();
    box.up(file);
    const after = await readyStatus<Status>(
      box,
      3,
      (s) => s.dataPlane?.connected === true && s.controller.pid !== before.controller.pid,
    );
    assert.deepEqual(pidsOf(after), pidsBefore, "the same processes, adopted");
    assert.equal(after.dataPlane!.pid, dataPlanePid, "the same data plane, adopted");
    const events = await eventsSince(box, secondAt);
    assert.deepEqual(
      events
        .filter((e) => e.type === "instance.adopted")
        .map((e) => e.instance)
        .sort(),
      ["api-0", "api-1", "api-2"],
    );
    assert.deepEqual(
      events.filter((e) => e.type === "instance.started" || e.type === "instance.reaped"),
      [],
      "nothing restarted",
    );
    assert.ok(events.some((e) => e.type === "dataplane.adopted"));
    for (const instance of allInstances(after)) assert.equal(instance.consecutiveFailures, 0);
    const settledAt = Date.now();
    await waitFor(() => load.between(settledAt, Number.POSITIVE_INFINITY).length >= 20, {
      what: "requests served by the new controller's fleet",
    });
  } finally {
    await load.stop();
  }
  assert.ok(load.outcomes.length >= 60, `${load.outcomes.length} requests`);
  assert.deepEqual(failures(load.outcomes), [], "no request failed");
  const down = await box.cli(["down", "--api-port", String(box.apiPort)]);
  assert.equal(down.code, 0, down.stderr);
}

test("down --keep-fleet, then up: the same pids adopted, 0 restarts, 0 failed requests through the data plane", async () => {
  await restartKeepingFleet(async (box) => {
    const down = await box.cli(["down", "--keep-fleet", "--api-port", String(box.apiPort)]);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, /the controller stopped; the fleet keeps running/);
  });
});

test("SIGQUIT to the controller does what down --keep-fleet does", async () => {
  await restartKeepingFleet(async (_box, first) => {
    first.child.kill("SIGQUIT");
  });
});

test("down --keep-fleet with no controller says there is nothing to stop, and stops nothing", async () => {
  const box = await newSandbox();
  const down = await box.cli(["down", "--keep-fleet", "--api-port", String(box.apiPort)]);
  assert.equal(down.code, 1);
  assert.match(down.stderr, /HS_CONTROLLER_UNREACHABLE/);
  assert.match(down.stderr, /nothing to stop/);
});

test("up --detach runs the controller in the background with a pid file; a second up is refused; down stops it", async () => {
  const box = await newSandbox();
  const { file } = await apiFleetOfThree(box);
  const started = await box.cli(["up", file, "--detach", "--api-port", String(box.apiPort)]);
  assert.equal(started.code, 0, started.stderr);
  assert.match(started.stdout, /runs in the background \(pid \d+\)/);
  const pidFile = join(box.stateDir, "controller.pid");
  const pid = Number(readFileSync(pidFile, "utf8").trim());
  assert.ok(isProcessAlive(pid, null), "the detached controller runs");
  assert.match(readFileSync(join(box.stateDir, "controller.out"), "utf8"), /homeostat: fleet "e2e"/);
  const status = await readyStatus<Status>(box, 3);
  assert.equal(status.controller.pid, pid, "the pid file names the controller");

  // A second controller on the same state directory is refused, in the foreground or detached.
  const otherPort = await freePort();
  const again = await box.cli(["up", file, "--detach", "--api-port", String(otherPort)]);
  assert.equal(again.code, 1, again.stdout);
  assert.match(again.stderr, /HS_STATE_LOCKED/);
  assert.match(again.stderr, /another controller owns this state directory/);
  assert.match(again.stderr, /nothing runs/);
  assert.equal(Number(readFileSync(pidFile, "utf8").trim()), pid, "the pid file still names the first");
  const foreground = box.up(file, ["--api-port", String(otherPort)]);
  const refused = await foreground.exited;
  assert.equal(refused.code, 1);
  assert.match(foreground.output(), /HS_STATE_LOCKED/);
  assert.ok(isProcessAlive(pid, null), "the first controller still runs");

  const down = await box.cli(["down", "--api-port", String(box.apiPort)]);
  assert.equal(down.code, 0, down.stderr);
  await waitFor(() => !isProcessAlive(pid, null), { what: "the detached controller gone" });
  assert.equal(existsSync(pidFile), false, "the pid file is removed");
  await waitFor(() => processesUnder(box.dir).length === 0, { what: "no process left" });
});

test("up --detach that cannot start fails with the controller's error and exit code, leaving nothing running", async () => {
  const box = await newSandbox();
  const { file } = await apiFleetOfThree(box);
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(box.apiPort, "127.0.0.1", r));
  try {
    const started = await box.cli(["up", file, "--detach", "--api-port", String(box.apiPort)]);
    assert.equal(started.code, 1, started.stdout);
    assert.match(started.stderr, /already in use/);
    assert.match(started.stderr, /exited with code 1 before its API answered; nothing runs/);
    assert.deepEqual(processesUnder(box.dir), [], "nothing left running");
    assert.equal(existsSync(join(box.stateDir, "controller.pid")), false);
  } finally {
    await new Promise((r) => blocker.close(r));
  }
});
