/**
 * A Redis store end to end through `homeostat up` (the data-plane process serves its endpoint and
 * Sentinel-compatible port): ioredis finds the primary through Homeostat, `homeostat stores` and
 * `switchover` with --json (refused while automation is paused, done with --override), kill -9 of
 * the primary held while paused, failed over and verified on resume, the endpoint keeps
 * forwarding while the controller is SIGKILLed, the next controller adopts the members, and
 * `homeostat down FILE` after a crash stops them.
 */

import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { test } from "node:test";
import { Redis } from "ioredis";
import { exchange } from "../../src/stateful/redis/redisClient.ts";
import type { StoreStatus } from "../../src/stateful/redis/storeManager.ts";
import { freePort, freePortRange, sandboxesCleanedAfter } from "../helpers/e2e.ts";
import { waitFor } from "../helpers/waitFor.ts";

const newSandbox = sandboxesCleanedAfter();

test("a redis store through homeostat up: sentinel discovery, switchover, kill -9 failover, controller crash, adoption, down after a crash", async () => {
  const box = await newSandbox();
  const basePort = await freePortRange(3);
  const port = await freePort();
  const sentinelPort = await freePort();
  const fleet = box.file(
    "fleet.yaml",
    `version: 1\nservices: {}\nstores:\n  cache:\n    kind: redis\n    replicas: 2\n    basePort: ${basePort}\n    port: ${port}\n    sentinel: { port: ${sentinelPort} }\n    placement: { zones: [a, b, c] }\n`,
  );
  let up = box.up(fleet);
  const store = async (): Promise<StoreStatus> =>
    (await box.get<{ stores: StoreStatus[] }>("/v1/stores")).stores[0]!;
  const healthy = (s: StoreStatus) =>
    s.phase === "healthy" && s.members.every((m) => m.reachable && (m.role === "primary" || m.linkUp));
  try {
    await waitFor(async () => healthy(await store()), { what: "store healthy", timeoutMs: 30_000 });
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${box.describeControllers()}`);
  }

  const client = new Redis({
    sentinels: [{ host: "127.0.0.1", port: sentinelPort }],
    name: "cache",
    lazyConnect: true,
  });
  try {
    await client.connect();
    assert.equal(await client.set("k", "through-sentinel"), "OK");
  } finally {
    client.disconnect();
  }

  // apply does not change stores: refused, saying what to do, nothing applied.
  const text = readFileSync(fleet, "utf8");
  writeFileSync(fleet, text.replace("replicas: 2", "replicas: 2\n    maxLagOnFailover: 64kb"));
  const applied = await box.cli(["apply", fleet, "--api-port", String(box.apiPort)]);
  writeFileSync(fleet, text);
  assert.equal(applied.code, 1, applied.stdout);
  assert.match(applied.stderr, /stores\.cache\.maxLagOnFailoverBytes: stores are not changed by apply/);

  const listed = await box.cli(["stores", "--json", "--api-port", String(box.apiPort)]);
  assert.equal(listed.code, 0, listed.stderr);
  assert.equal((JSON.parse(listed.stdout) as { stores: StoreStatus[] }).stores[0]!.epoch, 1);

  // Paused (docs/brakes.md): a switchover is a person's action, refused without --override and a
  // reason (CLI and API alike), done with them (audited, journaled, an event).
  const api = ["--api-port", String(box.apiPort)];
  const paused = await box.cli(["pause", "--reason", "redis maintenance", ...api]);
  assert.equal(paused.code, 0, paused.stderr);
  const refused = await box.cli(["switchover", "cache", "--to", "cache-1", ...api]);
  assert.equal(refused.code, 1, refused.stdout);
  assert.match(
    refused.stderr,
    /switchover of cache refused: automation is paused by \S+ since \S+ \(redis maintenance\)\. To act anyway, add --override with --reason.*\[HS_PAUSED\]/,
  );
  const apiRefused = await box.api("POST", "/v1/stores/cache/switchover", { to: "cache-1" });
  assert.equal(apiRefused.status, 409);
  assert.equal(((await apiRefused.json()) as { error: { code: string } }).error.code, "HS_PAUSED");
  const noWhy = await box.api("POST", "/v1/stores/cache/switchover", { to: "cache-1", override: true });
  assert.equal(noWhy.status, 400);
  const cliNoWhy = await box.cli(["switchover", "cache", "--override", ...api]);
  assert.equal(cliNoWhy.code, 1, cliNoWhy.stderr);
  assert.match(cliNoWhy.stderr, /switchover: --override needs --reason/);
  assert.equal((await store()).epoch, 1, "nothing switched while refused");

  const switched = await box.cli([
    "switchover",
    "cache",
    "--to",
    "cache-1",
    "--override",
    "--reason",
    "planned move",
    "--json",
    ...api,
  ]);
  assert.equal(switched.code, 0, switched.stderr);
  assert.equal((JSON.parse(switched.stdout) as { epoch: number }).epoch, 2);
  const events = async (type: string) =>
    (
      await box.get<{ events: { type: string; message: string; data?: Record<string, unknown> }[] }>(
        "/v1/events?limit=5000",
      )
    ).events.filter((e) => e.type === type);
  assert.match(
    (await events("automation.overridden")).at(-1)?.message ?? "",
    /overrode the pause \(by \S+: redis maintenance\) for the switchover of cache: planned move/,
  );
  const { journal } = await box.get<{ journal: { action: string; data: { override?: boolean } }[] }>(
    "/v1/journal?limit=200",
  );
  assert.equal(
    journal.find((j) => j.action === "switchover")?.data.override,
    true,
    "journaled as an override",
  );
  assert.equal((await exchange(port, [["GET", "k"]], 2_000))[0], "through-sentinel");

  await waitFor(async () => healthy(await store()), {
    what: "verified after the switchover",
    timeoutMs: 20_000,
  });
  // Still paused: the automated failover of the killed primary is held (an event naming the
  // pause), the store says so; `resume` lets it go.
  const primaryPid = (await store()).members.find((m) => m.name === "cache-1")!.pid!;
  process.kill(primaryPid, "SIGKILL");
  const held = await waitFor(async () => (await store()).held.find((h) => h.kind === "failover"), {
    what: "the failover held",
  });
  assert.match(held.reason, /automation is paused by \S+ since \S+ \(redis maintenance\)/);
  assert.equal((await store()).phase, "held");
  assert.equal((await events("automation.held")).at(-1)?.data?.kind, "failover");
  assert.equal((await store()).epoch, 2, "nothing promoted while paused");
  const resumed = await box.cli(["resume", "--reason", "maintenance done", ...api]);
  assert.equal(resumed.code, 0, resumed.stderr);
  await waitFor(async () => (await store()).epoch === 3 && healthy(await store()), {
    what: "failover verified",
    timeoutMs: 30_000,
  });
  const after = await store();
  assert.notEqual(after.primary, "cache-1");
  assert.equal(after.members.find((m) => m.name === "cache-1")!.role, "replica");
  const incidents = await box.get<{
    incidents: { service: string; status: string; verifiedAt: number | null }[];
  }>("/v1/incidents");
  assert.ok(
    incidents.incidents.some((i) => i.service === "cache" && i.status === "closed" && i.verifiedAt !== null),
  );

  // The controller dies: the data plane keeps forwarding to the last primary it was told.
  const pids = after.members.map((m) => m.pid);
  up.child.kill("SIGKILL");
  await up.exited;
  assert.deepEqual(
    await exchange(
      port,
      [
        ["SET", "while-down", "1"],
        ["GET", "k"],
      ],
      2_000,
    ),
    ["OK", "through-sentinel"],
  );

  // The next controller adopts the members as they run.
  up = box.up(fleet);
  await waitFor(async () => healthy(await store()), { what: "store healthy again", timeoutMs: 30_000 });
  const adopted = await store();
  assert.deepEqual(
    adopted.members.map((m) => m.pid),
    pids,
  );
  assert.equal(adopted.epoch, 3);

  // Crashed again: `down FILE` stops what it left, the store's members included.
  up.child.kill("SIGKILL");
  await up.exited;
  const down = await box.cli(["down", fleet, "--api-port", String(box.apiPort)]);
  assert.equal(down.code, 0, down.stderr);
  assert.match(down.stdout, /stopped store member cache-0/);
  await waitFor(
    () =>
      pids.every((pid) => {
        try {
          process.kill(pid!, 0);
          return false;
        } catch {
          return true;
        }
      }),
    { what: "members stopped by down" },
  );
});
