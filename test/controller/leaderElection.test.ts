/**
 * Leader election on a real PostgreSQL store: a follower takes over the moment a lease is given
 * up or runs out; a leader whose renewals fail deposes itself by its own clock before its lease
 * could have expired at the store; and the fenced driver refuses to start a process for a leader
 * that no longer leads (its clock, or the store, says so).
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fencedDriver } from "../../src/controller/fencedDriver.ts";
import {
  checkLeaseSettings,
  LeaderElection,
  type LeaseSettings,
} from "../../src/controller/leaderElection.ts";
import { LocalProcessDriver } from "../../src/drivers/local/localProcessDriver.ts";
import { HomeostatError } from "../../src/errors.ts";
import { type Claimant, StateStore } from "../../src/store/index.ts";
import { testLaunch } from "../drivers/fixtures/launch.ts";
import { pgStoreUrl } from "../helpers/postgres.ts";
import { waitFor } from "../helpers/waitFor.ts";

const SETTINGS: LeaseSettings = { ttlMs: 1_500, renewEveryMs: 300, marginMs: 300 };

function claimant(name: string): Claimant {
  return { holder: name, pid: process.pid, host: "test", apiUrl: null, startedAt: Date.now() };
}

function openStore(t: import("node:test").TestContext, url: string): StateStore {
  const dir = mkdtempSync(join(tmpdir(), "homeostat-le-"));
  const store = StateStore.open(dir, url);
  t.after(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return store;
}

function isFenced(error: unknown): boolean {
  return error instanceof HomeostatError && error.code === "HS_FENCED";
}

test("a follower takes over at once when the leader gives the lease up, and within the TTL when it goes silent", async (t) => {
  const url = pgStoreUrl(t);
  const storeA = openStore(t, url);
  const storeB = openStore(t, url);
  const lost: string[] = [];
  const a = new LeaderElection({
    leases: storeA.leadership,
    me: claimant("a"),
    settings: SETTINGS,
    onLost: (w) => lost.push(w),
  });
  const leaseA = await a.acquire(() => {});
  a.start();
  t.after(() => a.stop(false));

  const followed: number[] = [];
  const aborter = new AbortController();
  t.after(() => aborter.abort());
  const b = new LeaderElection({
    leases: storeB.leadership,
    me: claimant("b"),
    settings: SETTINGS,
    onLost: () => {},
  });
  const taking = b.acquire((lease) => {
    if (lease !== null) followed.push(lease.token);
  }, aborter.signal);
  await waitFor(() => followed.length >= 2, { what: "b following a" });
  assert.deepEqual([...new Set(followed)], [leaseA.token], "b follows a while a renews");

  // Given up (a clean stop): b claims it at its next try, with the next token.
  const givenUpAt = Date.now();
  a.stop(true);
  const leaseB = await taking;
  assert.equal(leaseB.token, leaseA.token + 1);
  assert.ok(Date.now() - givenUpAt < SETTINGS.ttlMs, "taken before the lease would have run out");
  assert.deepEqual(lost, [], "a gave it up: it did not lose it");
  b.start();

  // b goes silent (stops renewing without giving up): c takes over only once the lease ran out.
  b.stop(false);
  const silentAt = Date.now();
  const storeC = openStore(t, url);
  const c = new LeaderElection({
    leases: storeC.leadership,
    me: claimant("c"),
    settings: SETTINGS,
    onLost: () => {},
  });
  const leaseC = await c.acquire(() => {}, aborter.signal);
  const waited = Date.now() - silentAt;
  assert.equal(leaseC.token, leaseB.token + 1);
  assert.ok(
    waited >= SETTINGS.ttlMs - SETTINGS.renewEveryMs,
    `c waited ${waited} ms: the lease had to run out first`,
  );
  assert.ok(waited < SETTINGS.ttlMs + 5_000, `c took over ${waited} ms after b went silent`);
  c.stop(true);
});

test("a leader whose renewals fail deposes itself by its own clock, before its lease can have run out", async (t) => {
  const url = pgStoreUrl(t);
  const store = openStore(t, url);
  let now = 0;
  const lost: string[] = [];
  const election = new LeaderElection({
    leases: store.leadership,
    me: claimant("a"),
    settings: SETTINGS,
    onLost: (why) => lost.push(why),
    monotonic: () => now,
  });
  await election.acquire(() => {});
  election.start();
  t.after(() => election.stop(false));
  election.assertLeading("start x");

  // The store goes away (closed here: every call fails, as with a partition): renewals fail, but
  // the leader keeps acting until the last safe instant by its clock, then stops on its own.
  store.close();
  now = SETTINGS.ttlMs - SETTINGS.marginMs - 1;
  election.assertLeading("start x");
  now = SETTINGS.ttlMs - SETTINGS.marginMs;
  assert.throws(() => election.assertLeading("start x"), isFenced);
  assert.equal(lost.length, 1);
  assert.match(lost[0] ?? "", /not renewed in time/);
  assert.equal(election.lease, null);
});

test("a leader frozen past its lease (SIGSTOP, a long pause) is deposed the moment it wakes, before any order", async (t) => {
  const url = pgStoreUrl(t);
  const storeA = openStore(t, url);
  let now = 0;
  const a = new LeaderElection({
    leases: storeA.leadership,
    me: claimant("a"),
    settings: SETTINGS,
    onLost: () => {},
    monotonic: () => now,
  });
  const lease = await a.acquire(() => {});
  // No renewal timer runs (as if frozen); the clock jumps past the lease.
  now = SETTINGS.ttlMs * 3;
  assert.throws(() => a.assertLeading("start x"), isFenced);

  // Even if it did not notice (the test hook), the store refuses it once another leads.
  const storeB = openStore(t, url);
  const b = new LeaderElection({
    leases: storeB.leadership,
    me: claimant("b"),
    settings: SETTINGS,
    onLost: () => {},
  });
  const next = await b.acquire(() => {});
  t.after(() => b.stop(true));
  assert.throws(() => storeA.leadership.assertCurrent(lease.token, "start x"), isFenced);
  storeB.leadership.assertCurrent(next.token, "start x");
});

test("the fenced driver starts nothing for a controller that no longer leads", async (t) => {
  const url = pgStoreUrl(t);
  const store = openStore(t, url);
  const dir = mkdtempSync(join(tmpdir(), "homeostat-fence-"));
  const inner = new LocalProcessDriver({ logDir: dir });
  t.after(async () => {
    await inner.stopAll(0);
    rmSync(dir, { recursive: true, force: true });
  });
  const first = store.leadership.claim(claimant("a"), 60_000);
  assert.equal(first.leader, true);
  const token = first.lease.token;
  const driver = fencedDriver(inner, (what) => store.leadership.assertCurrent(token, what));
  const launch = testLaunch({
    instance: "svc-0",
    command: process.execPath,
    args: ["-e", "setInterval(() => {}, 1000)"],
    cwd: dir,
  });
  const handle = await driver.start(launch);
  assert.equal(inner.status("svc-0").state, "running");

  // Another controller takes the lease (it expired, or was given up): this one's orders stop.
  store.leadership.release(token);
  store.leadership.claim(claimant("b"), 60_000);
  await assert.rejects(async () => driver.start({ ...launch, instance: "svc-1" }), isFenced);
  assert.equal(inner.status("svc-1").state, "missing", "no process was started");
  await assert.rejects(async () => driver.stop("svc-0", 1_000), isFenced);
  assert.equal(inner.status("svc-0").state, "running", "nor stopped");
  assert.equal(handle.pid > 0, true);
});

test("lease settings must leave at least two renewals per lease", () => {
  checkLeaseSettings({ ttlMs: 5_000, renewEveryMs: 1_000, marginMs: 1_000 });
  assert.throws(
    () => checkLeaseSettings({ ttlMs: 2_000, renewEveryMs: 900, marginMs: 400 }),
    /under two renewals/,
  );
  assert.throws(() => checkLeaseSettings({ ttlMs: 500, renewEveryMs: 100, marginMs: 100 }), /1s to 10m/);
});
