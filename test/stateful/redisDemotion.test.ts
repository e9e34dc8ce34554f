/**
 * A demoted primary closes its clients, as Redis Sentinel's demotion does (REPLICAOF and CLIENT
 * KILL TYPE normal/pubsub in one MULTI/EXEC): Redis itself keeps them connected across REPLICAOF,
 * where they only get READONLY and a Sentinel-aware client given the member's own address
 * (`announce: primary`) never rediscovers. Real redis-server members, the store manager and the
 * data plane's endpoints in this process; the returning old primary's case (SIGSTOP, SIGCONT) is
 * in redisFailover.test.ts. Every test stops what it started, sockets included.
 */

import assert from "node:assert/strict";
import type net from "node:net";
import { test } from "node:test";
import { Redis } from "ioredis";
import { exchange } from "../../src/stateful/redis/redisClient.ts";
import { directClient, startStore } from "../helpers/redisStoreHarness.ts";
import { waitFor } from "../helpers/waitFor.ts";

test("switchover: the old primary's clients are closed with its demotion — a Sentinel client given the member's address (announce: primary) moves to the new primary; the endpoint serves on", async () => {
  const h = await startStore("", { announce: "primary" });
  const sockets: net.Socket[] = [];
  const client = new Redis({
    sentinels: [{ host: "127.0.0.1", port: h.spec.sentinel!.port }],
    name: "cache",
    lazyConnect: true,
    // Reconnecting at once keeps the test short; the default backoff would do too.
    retryStrategy: () => 20,
  });
  client.on("error", () => {});
  try {
    const oldPort = h.portOf("cache-0");
    const plain = await directClient(oldPort);
    const subscriber = await directClient(oldPort, ["SUBSCRIBE", "news"]);
    sockets.push(plain.socket, subscriber.socket);
    await client.connect();
    assert.equal(await client.set("before", "1"), "OK");
    assert.equal(client.stream.remotePort, oldPort, "announce: primary hands out the member's own address");

    const result = await h.stores.switchover("cache", { to: "cache-2", reason: "test" });
    assert.equal(result.epoch, 2);

    await waitFor(() => plain.closed() && subscriber.closed(), {
      what: "the old primary closing its normal and pub/sub clients",
    });
    // Without the closing, ioredis would stay on cache-0 and get READONLY for ever.
    await waitFor(
      async () =>
        client.stream?.remotePort === h.portOf("cache-2") && (await client.set("after", "2")) === "OK",
      { what: "the Sentinel client writing on the new primary" },
    );
    const completed = h.events.find((e) => e.type === "redis.switchover.completed");
    const closed = (completed?.data as { clientsClosed?: number } | undefined)?.clientsClosed ?? 0;
    assert.ok(closed >= 3, `the switchover closed ${closed} connections (a plain, a subscriber, ioredis)`);
    assert.deepEqual(
      await exchange(
        h.spec.port,
        [
          ["SET", "through-endpoint", "3"],
          ["GET", "before"],
        ],
        2_000,
      ),
      ["OK", "1"],
      "the endpoint serves the new primary",
    );
    // The controller's own probe connections to cache-0 may have been among those closed: a
    // failed probe of a replica is no failure of the primary, nothing else is promoted.
    await waitFor(() => h.status().phase === "healthy", { what: "verified", timeoutMs: 20_000 });
    assert.equal(h.status().epoch, 2);
    assert.equal(h.status().primary, "cache-2");
  } finally {
    client.disconnect();
    for (const socket of sockets) socket.destroy();
    await h.close();
  }
});

test("a member that answers as a primary at a stale epoch is demoted with its clients closed, journaled with how many", async () => {
  const h = await startStore();
  const sockets: net.Socket[] = [];
  try {
    const rogue = h.portOf("cache-1");
    const plain = await directClient(rogue);
    sockets.push(plain.socket);
    // Made a primary behind Homeostat's back (an operator's REPLICAOF NO ONE, a restored backup).
    assert.deepEqual(await exchange(rogue, [["REPLICAOF", "NO", "ONE"]], 2_000), ["OK"]);
    await waitFor(() => plain.closed(), { what: "the stale primary closing its client" });
    const fenced = await waitFor(() => h.events.find((e) => e.type === "redis.fenced"), {
      what: "redis.fenced",
    });
    assert.equal(fenced.instance, "cache-1");
    assert.ok((fenced.data as { clientsClosed: number }).clientsClosed >= 1, JSON.stringify(fenced.data));
    const demotion = h.state.listJournal().find((j) => j.action === "redis.demote");
    assert.match(demotion?.result?.detail ?? "", /demoted; [1-9]\d* client connection\(s\) closed/);
    await waitFor(() => h.status().members.find((m) => m.name === "cache-1")?.follows === "cache-0", {
      what: "cache-1 following cache-0 again",
    });
    assert.equal(h.status().epoch, 1);
    assert.equal(h.status().primary, "cache-0");
    assert.deepEqual(await exchange(h.spec.port, [["SET", "k", "v"]], 2_000), ["OK"]);
  } finally {
    for (const socket of sockets) socket.destroy();
    await h.close();
  }
});
