/**
 * The data plane's store endpoints against real redis-server processes: the forwarding port
 * switches in one step and closes connections to the replaced primary, a lower epoch is never
 * applied, and the Sentinel-compatible port answers ioredis as Redis Sentinel would.
 */

import assert from "node:assert/strict";
import net from "node:net";
import { after, test } from "node:test";
import { Redis } from "ioredis";
import type { StoreSnapshot } from "../../src/dataplane/feedProtocol.ts";
import { StoreEndpoints } from "../../src/dataplane/redisEndpoint.ts";
import { exchange } from "../../src/stateful/redis/redisClient.ts";
import { parseInfo } from "../../src/stateful/redis/resp.ts";
import { freePort } from "../helpers/e2e.ts";
import { RedisServers } from "../helpers/redisServers.ts";
import { waitFor } from "../helpers/waitFor.ts";

const servers = new RedisServers();
const endpoints: StoreEndpoints[] = [];
after(async () => {
  await Promise.all(endpoints.map((e) => e.close()));
  servers.stopAll();
});

const member = (name: string, port: number) => ({ member: name, address: "127.0.0.1", port });

async function servedPort(port: number): Promise<number> {
  const [info] = await exchange(port, [["INFO", "server"]], 2_000);
  return Number(parseInfo(String(info)).get("tcp_port"));
}

test("the endpoint forwards to the primary, switches in one step, cuts connections to the old one, ignores a lower epoch", async () => {
  const a = await servers.start();
  const b = await servers.start();
  const events: string[] = [];
  const stores = new StoreEndpoints((type) => events.push(type));
  endpoints.push(stores);
  const port = await freePort();
  const snapshot = (epoch: number, primary: number | null): StoreSnapshot => ({
    name: "cache",
    port,
    sentinel: null,
    epoch,
    primary: primary === null ? null : member(primary === a.port ? "cache-0" : "cache-1", primary),
    replicas: [],
  });
  await stores.apply([snapshot(1, a.port)]);
  assert.equal(await servedPort(port), a.port);
  assert.deepEqual(
    await exchange(
      port,
      [
        ["SET", "k", "1"],
        ["GET", "k"],
      ],
      2_000,
    ),
    ["OK", "1"],
  );

  // A client holding a connection to the primary that is about to be replaced.
  const held = net.connect({ host: "127.0.0.1", port });
  await new Promise((resolve) => held.once("connect", resolve));
  held.write("PING\r\n");
  await new Promise((resolve) => held.once("data", resolve));
  const closed = new Promise((resolve) => held.once("close", resolve));

  await stores.apply([snapshot(2, b.port)]);
  await closed;
  assert.equal(await servedPort(port), b.port);
  assert.equal(stores.state().cache?.cutOnSwitch, 1);
  // Nothing of the endpoint's is left on the old primary: only our own CLIENT LIST connection.
  await waitFor(async () => {
    const [list] = await exchange(a.port, [["CLIENT", "LIST"]], 2_000);
    return String(list).trim().split("\n").length === 1;
  });

  await stores.apply([snapshot(1, a.port)]);
  assert.equal(await servedPort(port), b.port, "a lower epoch never moves the endpoint back");
  assert.ok(events.includes("redis.endpoint-stale-snapshot"));

  // No primary (a failover under way): a new connection waits, then is spliced to the next one.
  await stores.apply([snapshot(3, null)]);
  const waiting = exchange(port, [["INFO", "server"]], 5_000);
  await waitFor(() => stores.state().cache?.waiting === 1);
  await stores.apply([snapshot(4, a.port)]);
  assert.equal(Number(parseInfo(String((await waiting)[0])).get("tcp_port")), a.port);
});

test("the Sentinel-compatible port: ioredis finds the primary through it, +switch-master is published", async () => {
  const a = await servers.start();
  const b = await servers.start();
  const stores = new StoreEndpoints();
  endpoints.push(stores);
  const port = await freePort();
  const sentinelPort = await freePort();
  const snapshot = (epoch: number, primary: number, announce: "endpoint" | "primary"): StoreSnapshot => ({
    name: "cache",
    port,
    sentinel: { port: sentinelPort, announce },
    epoch,
    primary: member(primary === a.port ? "cache-0" : "cache-1", primary),
    replicas: [member(primary === a.port ? "cache-1" : "cache-0", primary === a.port ? b.port : a.port)],
  });
  await stores.apply([snapshot(1, a.port, "endpoint")]);
  assert.deepEqual(
    await exchange(
      sentinelPort,
      [
        ["PING"],
        ["SENTINEL", "get-master-addr-by-name", "cache"],
        ["SENTINEL", "get-master-addr-by-name", "other"],
        ["SENTINEL", "sentinels", "cache"],
      ],
      2_000,
    ),
    ["PONG", ["127.0.0.1", String(port)], null, []],
  );
  const [masters] = await exchange(sentinelPort, [["SENTINEL", "masters"]], 2_000);
  assert.ok(Array.isArray(masters) && Array.isArray(masters[0]));
  assert.equal((masters[0] as string[])[(masters[0] as string[]).indexOf("flags") + 1], "master");

  const client = new Redis({
    sentinels: [{ host: "127.0.0.1", port: sentinelPort }],
    name: "cache",
    lazyConnect: true,
  });
  try {
    await client.connect();
    assert.equal(await client.set("through-sentinel", "yes"), "OK");
    assert.equal(Number(parseInfo(await client.info("server")).get("tcp_port")), a.port);
  } finally {
    client.disconnect();
  }

  // A subscriber hears of the switch, with the addresses the port announces.
  const subscriber = net.connect({ host: "127.0.0.1", port: sentinelPort });
  const received: string[] = [];
  subscriber.on("data", (chunk) => received.push(chunk.toString()));
  subscriber.write("*2\r\n$9\r\nSUBSCRIBE\r\n$14\r\n+switch-master\r\n");
  await waitFor(() => received.join("").includes("subscribe"));
  await stores.apply([snapshot(2, b.port, "primary")]);
  await waitFor(() => received.join("").includes(`cache 127.0.0.1 ${a.port} 127.0.0.1 ${b.port}`));
  // A failover passes through "no primary" while the replica is promoted: the switch is announced
  // all the same, from the primary last served to the new one.
  await stores.apply([{ ...snapshot(3, b.port, "primary"), primary: null }]);
  await stores.apply([snapshot(4, a.port, "primary")]);
  await waitFor(() => received.join("").includes(`cache 127.0.0.1 ${b.port} 127.0.0.1 ${a.port}`), {
    what: "+switch-master after an interval without a primary",
  });
  subscriber.destroy();
  assert.deepEqual(await exchange(sentinelPort, [["SENTINEL", "get-master-addr-by-name", "cache"]], 2_000), [
    ["127.0.0.1", String(a.port)],
  ]);
});
