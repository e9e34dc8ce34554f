/**
 * The peer: Redis Sentinel at its best over real redis-server processes the bench starts — a
 * primary and two replicas, three Sentinels (quorum 2), `down-after-milliseconds` equal to
 * Homeostat's detection budget, the same persistence and `min-replicas-to-write` /
 * `min-replicas-max-lag` as Homeostat's store, `failover-timeout` short and `parallel-syncs` 2 (both
 * replicas follow the new primary at once). Sentinel does not start processes: after a kill -9 the
 * bench restarts the killed redis-server once the failover happened (restarting it before would
 * bring back a primary Sentinel never fails over from — Redis's documented hazard, not measured
 * here), with its own config; Sentinel then turns it into a replica.
 */

import { join } from "node:path";
import { freePortRange } from "../../test/helpers/e2e.ts";
import { waitFor } from "../../test/helpers/waitFor.ts";
import type { ProcessLedger } from "../foundation/processes.ts";
import type { Contender, StoreSettings, Victim } from "./contender.ts";
import { RedisProcess, settledTopology, withClient } from "./redisNodes.ts";
import type { Access } from "./writerProtocol.ts";

export const MASTER_NAME = "hsbench";

/** What Sentinel runs with here (printed with the results). */
export interface SentinelSettings {
  sentinels: number;
  quorum: number;
  downAfterMs: number;
  failoverTimeoutMs: number;
  parallelSyncs: number;
}

export function sentinelSettings(store: StoreSettings, failoverTimeoutMs: number): SentinelSettings {
  return {
    sentinels: 3,
    quorum: 2,
    downAfterMs: store.detectionBudgetMs,
    failoverTimeoutMs,
    parallelSyncs: 2,
  };
}

/** redis.conf of one data node: what Homeostat's store sets, written out for a plain redis-server. */
export function dataNodeConfig(options: {
  port: number;
  dir: string;
  store: StoreSettings;
  replicaOf: number | null;
}): string {
  const { store } = options;
  const persistence =
    store.persistence === "aof"
      ? ["appendonly yes", "appendfsync everysec", 'save ""']
      : store.persistence === "rdb"
        ? ["appendonly no"]
        : ["appendonly no", 'save ""'];
  return [
    `port ${options.port}`,
    "bind 127.0.0.1",
    "protected-mode yes",
    "daemonize no",
    `dir ${options.dir}`,
    `logfile ${join(options.dir, "server.log")}`,
    ...persistence,
    `min-replicas-to-write ${store.minReplicasToWrite}`,
    `min-replicas-max-lag ${store.minReplicasMaxLagS}`,
    // A replica that must resync does it at once over the socket (no fork-to-disk wait).
    "repl-diskless-sync yes",
    "repl-diskless-sync-delay 0",
    ...(options.replicaOf === null ? [] : [`replicaof 127.0.0.1 ${options.replicaOf}`]),
    "",
  ].join("\n");
}

export function sentinelConfig(options: {
  port: number;
  dir: string;
  primaryPort: number;
  settings: SentinelSettings;
}): string {
  const s = options.settings;
  return [
    `port ${options.port}`,
    "bind 127.0.0.1",
    "daemonize no",
    `dir ${options.dir}`,
    `logfile ${join(options.dir, "server.log")}`,
    `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${options.primaryPort} ${s.quorum}`,
    `sentinel down-after-milliseconds ${MASTER_NAME} ${s.downAfterMs}`,
    `sentinel failover-timeout ${MASTER_NAME} ${s.failoverTimeoutMs}`,
    `sentinel parallel-syncs ${MASTER_NAME} ${s.parallelSyncs}`,
    "",
  ].join("\n");
}

/** `SENTINEL master <name>` as key → value. */
async function sentinelMaster(port: number): Promise<Record<string, string>> {
  const flat = (await withClient(port, (c) => c.call("SENTINEL", "MASTER", MASTER_NAME))) as string[];
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
}

export class SentinelContender implements Contender {
  readonly name = "sentinel";
  readonly label = "Redis Sentinel";
  readonly nodes: RedisProcess[];
  readonly sentinels: RedisProcess[];
  readonly settings: SentinelSettings;
  readonly configs: Record<string, string>;

  private constructor(
    nodes: RedisProcess[],
    sentinels: RedisProcess[],
    settings: SentinelSettings,
    configs: Record<string, string>,
  ) {
    this.nodes = nodes;
    this.sentinels = sentinels;
    this.settings = settings;
    this.configs = configs;
  }

  static async start(
    dir: string,
    store: StoreSettings,
    failoverTimeoutMs: number,
    ledger: ProcessLedger,
  ): Promise<SentinelContender> {
    const settings = sentinelSettings(store, failoverTimeoutMs);
    const dataBase = await freePortRange(3);
    const sentinelBase = await freePortRange(3);
    const nodes = [0, 1, 2].map((i) => {
      const nodeDir = join(dir, `redis-${i}`);
      return new RedisProcess({
        name: `sentinel-contender redis-${i}`,
        port: dataBase + i,
        dir: nodeDir,
        config: dataNodeConfig({
          port: dataBase + i,
          dir: nodeDir,
          store,
          replicaOf: i === 0 ? null : dataBase,
        }),
        ledger,
      });
    });
    const sentinels = [0, 1, 2].map((i) => {
      const sDir = join(dir, `sentinel-${i}`);
      return new RedisProcess({
        name: `sentinel-${i}`,
        port: sentinelBase + i,
        dir: sDir,
        config: sentinelConfig({ port: sentinelBase + i, dir: sDir, primaryPort: dataBase, settings }),
        sentinel: true,
        ledger,
      });
    });
    for (const node of nodes) await node.start();
    for (const sentinel of sentinels) await sentinel.start();
    // The configs as started, for the results (the files themselves are rewritten by Sentinel).
    return new SentinelContender(nodes, sentinels, settings, {
      "redis.conf (initial primary)": dataNodeConfig({
        port: dataBase,
        dir: "<dir>",
        store,
        replicaOf: null,
      }),
      "redis.conf (replica)": dataNodeConfig({
        port: dataBase + 1,
        dir: "<dir>",
        store,
        replicaOf: dataBase,
      }),
      "sentinel.conf": sentinelConfig({ port: sentinelBase, dir: "<dir>", primaryPort: dataBase, settings }),
    });
  }

  dataPorts(): number[] {
    return this.nodes.map((n) => n.port);
  }

  access(): Access {
    return {
      kind: "sentinel",
      name: MASTER_NAME,
      sentinels: this.sentinels.map((s) => ({ host: "127.0.0.1", port: s.port })),
    };
  }

  /**
   * Every data node running, one primary with both replicas in sync, and every Sentinel agreeing
   * on it with nothing down or in progress: the state a trial starts from.
   */
  async ready(timeoutMs: number): Promise<number> {
    for (const node of this.nodes) if (!node.running()) await node.start();
    for (const sentinel of this.sentinels) if (!sentinel.running()) await sentinel.start();
    return await waitFor(
      async () => {
        const topology = await settledTopology(this.dataPorts());
        if (topology === null) return null;
        for (const sentinel of this.sentinels) {
          const master = await sentinelMaster(sentinel.port);
          if (
            Number(master.port) !== topology.primary ||
            master.flags !== "master" ||
            master["num-slaves"] !== "2" ||
            master["num-other-sentinels"] !== "2" ||
            master["failover-state"] !== undefined
          )
            return null;
          const replicas = (await withClient(sentinel.port, (c) =>
            c.call("SENTINEL", "REPLICAS", MASTER_NAME),
          )) as string[][];
          const flags = replicas.map((r) => r[r.indexOf("flags") + 1]);
          if (replicas.length !== 2 || flags.some((f) => f !== "slave")) return null;
        }
        return topology.primary;
      },
      {
        timeoutMs,
        intervalMs: 200,
        what: "Sentinel's primary with 2 replicas in sync, 3 Sentinels agreeing",
      },
    );
  }

  #node(port: number): RedisProcess {
    const node = this.nodes.find((n) => n.port === port);
    if (node === undefined) throw new Error(`no Sentinel-contender node on port ${port}`);
    return node;
  }

  async victim(port: number): Promise<Victim> {
    const node = this.#node(port);
    return { port, signal: (signal) => node.signal(signal) };
  }

  /**
   * Sentinel starts no process: the bench restarts the killed one — once every Sentinel names
   * the new primary (or at `deadline`). Sooner, the restarted old primary (back as a primary with
   * its own data, as from its config) is a primary a client asking a Sentinel mid-failover can
   * still be sent to, whose writes the demotion then discards: seen in a development run (a
   * writer's 173 acknowledged writes lost), not what Sentinel at its best does.
   */
  async afterKill(port: number, deadline: number): Promise<void> {
    await waitFor(
      async () => {
        if (performance.timeOrigin + performance.now() >= deadline) return true;
        const named = await Promise.all(
          this.sentinels.map(async (s) => {
            const addr = (await withClient(s.port, (c) =>
              c.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME),
            )) as string[] | null;
            return Number(addr?.[1]);
          }),
        );
        return named.every((p) => p !== port);
      },
      { timeoutMs: 60_000, intervalMs: 20, what: "every Sentinel naming the new primary" },
    ).catch(() => undefined);
    const node = this.#node(port);
    if (!node.running()) await node.start();
  }

  async stop(): Promise<void> {
    for (const p of [...this.sentinels, ...this.nodes]) await p.kill();
  }
}
