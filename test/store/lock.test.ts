import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { DatabaseSync } from "node:sqlite";
import { type TestContext, test } from "node:test";
import { HomeostatError } from "../../src/errors.ts";
import { processStartTime } from "../../src/lib/procStat.ts";
import { StateStore } from "../../src/store/index.ts";
import { waitFor } from "../helpers/waitFor.ts";
import { tempStateDir } from "./tempStateDir.ts";

function openStore(t: TestContext): StateStore {
  const store = StateStore.open(tempStateDir(t));
  t.after(() => store.close());
  return store;
}

/** A real live process that is not us, killed when the test ends. */
async function spawnSleeper(t: TestContext): Promise<ChildProcess & { pid: number }> {
  const child = spawn("sleep", ["30"], { stdio: "ignore" });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error("sleep did not start");
  await waitFor(() => processStartTime(pid), { what: "sleep to appear in /proc" });
  return Object.assign(child, { pid });
}

function assertLockedBy(pid: number, port: number) {
  return (error: unknown) => {
    assert.ok(error instanceof HomeostatError);
    assert.equal(error.code, "HS_STATE_LOCKED");
    assert.match(error.message, new RegExp(`pid ${pid}, API port ${port}`));
    return true;
  };
}

test("the controller lock: held by a live process it refuses others; once that process dies it is taken over", async (t) => {
  const store = openStore(t);
  const me = { pid: process.pid, apiPort: 7001, startedAt: 1_000 };
  assert.deepEqual(store.acquireControllerLock(me), { previous: null });
  assert.deepEqual(store.controllerInfo(), { ...me, startTime: processStartTime(process.pid) });

  const sleeper = await spawnSleeper(t);
  const other = { pid: sleeper.pid, apiPort: 7002, startedAt: 2_000 };
  assert.throws(() => store.acquireControllerLock(other), assertLockedBy(process.pid, 7001));
  assert.equal(store.controllerInfo()?.pid, process.pid, "a refused acquire changes nothing");

  // Make the sleeper the holder, as if it were a running controller.
  store.releaseControllerLock(process.pid);
  assert.equal(store.controllerInfo(), null);
  store.acquireControllerLock(other);
  assert.throws(() => store.acquireControllerLock(me), assertLockedBy(sleeper.pid, 7002));

  const sleeperStartTime = processStartTime(sleeper.pid);
  assert.notEqual(sleeperStartTime, null);
  sleeper.kill("SIGKILL");
  await once(sleeper, "exit");
  const { previous } = store.acquireControllerLock(me);
  assert.deepEqual(previous, { ...other, startTime: sleeperStartTime });
  assert.equal(store.controllerInfo()?.pid, process.pid);
});

test("the holder re-acquiring its own lock succeeds (e.g. to record a new API port)", (t) => {
  const store = openStore(t);
  store.acquireControllerLock({ pid: process.pid, apiPort: 7001, startedAt: 1 });
  const { previous } = store.acquireControllerLock({ pid: process.pid, apiPort: 7003, startedAt: 1 });
  assert.equal(previous?.apiPort, 7001);
  assert.equal(store.controllerInfo()?.apiPort, 7003);
});

test("a lock whose pid now belongs to a different process (pid recycled) is stale", async (t) => {
  const store = openStore(t);
  const sleeper = await spawnSleeper(t);
  store.acquireControllerLock({ pid: sleeper.pid, apiPort: 7002, startedAt: 1 });
  // Same pid, live, but not the process that took the lock: rewrite its recorded start time.
  const db = new DatabaseSync(store.path);
  db.exec("UPDATE controller SET start_time = '1'");
  db.close();
  const { previous } = store.acquireControllerLock({ pid: process.pid, apiPort: 7001, startedAt: 2 });
  assert.equal(previous?.pid, sleeper.pid);
  assert.equal(previous?.startTime, "1");
});

test("releasing someone else's lock is a no-op", (t) => {
  const store = openStore(t);
  store.acquireControllerLock({ pid: process.pid, apiPort: 7001, startedAt: 1 });
  store.releaseControllerLock(process.pid + 1_000_000);
  assert.equal(store.controllerInfo()?.pid, process.pid);
});

test("the lock is seen by a second connection (another process looking for the API port)", (t) => {
  const dir = tempStateDir(t);
  const controller = StateStore.open(dir);
  t.after(() => controller.close());
  controller.acquireControllerLock({ pid: process.pid, apiPort: 7009, startedAt: 5 });
  const cli = StateStore.open(dir);
  t.after(() => cli.close());
  assert.equal(cli.controllerInfo()?.apiPort, 7009);
  assert.throws(
    () => cli.acquireControllerLock({ pid: process.ppid, apiPort: 7010, startedAt: 6 }),
    assertLockedBy(process.pid, 7009),
  );
});
