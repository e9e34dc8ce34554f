/**
 * Homeostat's side: a real controller (`homeostat up`) running a Redis store (`stores:`, kind
 * redis: a primary and two replicas of redis-server it starts, supervises and fails over), with
 * the detection budget Sentinel's `down-after-milliseconds` copies. One store, two ways in, two
 * contenders: its stable endpoint (a plain connection to the data-plane process's forwarding
 * port) and its Sentinel-compatible port (ioredis in Sentinel mode, unchanged).
 */

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type ApiClient, apiClient } from "../../src/cli/apiClient.ts";
import { freePort, freePortRange } from "../../test/helpers/e2e.ts";
import { waitFor } from "../../test/helpers/waitFor.ts";
import { HomeostatUnderTest } from "../foundation/homeostat.ts";
import { identify, type ProcessLedger, signalIfRunning } from "../foundation/processes.ts";
import type { Contender, StoreSettings, Victim } from "./contender.ts";
import { settledTopology } from "./redisNodes.ts";
import type { Access } from "./writerProtocol.ts";

export const STORE = "bench";

/** `GET /v1/stores/:store`, the parts the bench reads (docs/redis.md). */
export interface StoreDocument {
  name: string;
  epoch: number;
  primary: string | null;
  phase: string;
  endpoint: { address: string; port: number };
  sentinel: { port: number } | null;
  members: {
    name: string;
    port: number;
    role: "primary" | "replica" | "unknown";
    reachable: boolean;
    offset: number | null;
    lagBytes: number | null;
    linkUp: boolean | null;
    pid: number | null;
  }[];
}

export function storeFleetYaml(options: {
  basePort: number;
  endpointPort: number;
  sentinelPort: number;
  store: StoreSettings;
  announce: "endpoint" | "primary";
}): string {
  const { store } = options;
  return [
    "version: 1",
    "services: {}",
    "stores:",
    `  ${STORE}:`,
    "    kind: redis",
    "    replicas: 2",
    `    basePort: ${options.basePort}`,
    `    port: ${options.endpointPort}`,
    `    sentinel: { port: ${options.sentinelPort}, announce: ${options.announce} }`,
    `    detection: { interval: ${store.detection.intervalMs}ms, timeout: ${store.detection.timeoutMs}ms, failures: ${store.detection.failures} }`,
    `    minReplicasToWrite: ${store.minReplicasToWrite}`,
    `    minReplicasMaxLag: ${store.minReplicasMaxLagS}s`,
    `    persistence: ${store.persistence}`,
    "",
  ].join("\n");
}

/** The running controller and its store, shared by both Homeostat contenders. */
export class HomeostatStore {
  readonly homeostat: HomeostatUnderTest;
  readonly fleetYaml: string;
  readonly basePort: number;
  readonly endpointPort: number;
  readonly sentinelPort: number;
  readonly #api: ApiClient;
  readonly #ledger: ProcessLedger;

  private constructor(
    homeostat: HomeostatUnderTest,
    fleetYaml: string,
    ports: { base: number; endpoint: number; sentinel: number },
    ledger: ProcessLedger,
  ) {
    this.homeostat = homeostat;
    this.fleetYaml = fleetYaml;
    this.basePort = ports.base;
    this.endpointPort = ports.endpoint;
    this.sentinelPort = ports.sentinel;
    this.#ledger = ledger;
    this.#api = apiClient(homeostat.apiPort, { stateDir: homeostat.stateDir });
  }

  static async start(
    dir: string,
    store: StoreSettings,
    announce: "endpoint" | "primary",
    ledger: ProcessLedger,
  ): Promise<HomeostatStore> {
    const base = await freePortRange(3);
    const endpoint = await freePort();
    const sentinel = await freePort();
    const fleetYaml = storeFleetYaml({
      basePort: base,
      endpointPort: endpoint,
      sentinelPort: sentinel,
      store,
      announce,
    });
    const fleetFile = join(dir, "fleet.yaml");
    writeFileSync(fleetFile, fleetYaml);
    const { homeostat } = await HomeostatUnderTest.start({
      fleetFile,
      apiPort: await freePort(),
      stateDir: join(dir, "state"),
      total: 0,
      ledger,
    });
    return new HomeostatStore(homeostat, fleetYaml, { base, endpoint, sentinel }, ledger);
  }

  dataPorts(): number[] {
    return [0, 1, 2].map((i) => this.basePort + i);
  }

  async document(): Promise<StoreDocument> {
    const doc = await this.#api.get<StoreDocument>(`/v1/stores/${STORE}`);
    for (const m of doc.members) if (m.pid !== null) this.#ledger.note(m.pid);
    return doc;
  }

  /** Homeostat says the store is healthy, and the nodes agree: one primary, both replicas in sync. */
  async ready(timeoutMs: number): Promise<number> {
    this.homeostat.assertRunning();
    return await waitFor(
      async () => {
        const doc = await this.document();
        if (doc.phase !== "healthy" || doc.members.some((m) => !m.reachable)) return null;
        const topology = await settledTopology(this.dataPorts());
        if (topology === null) return null;
        const primary = doc.members.find((m) => m.role === "primary");
        return primary?.port === topology.primary ? topology.primary : null;
      },
      { timeoutMs, intervalMs: 200, what: "Homeostat's store healthy: a primary and 2 replicas in sync" },
    );
  }

  async victim(port: number): Promise<Victim> {
    const member = (await this.document()).members.find((m) => m.port === port);
    if (member?.pid == null) throw new Error(`Homeostat's store shows no process on port ${port}`);
    const id = identify(member.pid);
    return { port, signal: (signal) => signalIfRunning(id, signal) };
  }
}

/** One of Homeostat's two ways in, as a contender. */
export class HomeostatContender implements Contender {
  readonly name: string;
  readonly label: string;
  readonly #store: HomeostatStore;
  readonly #way: "endpoint" | "sentinel";

  constructor(store: HomeostatStore, way: "endpoint" | "sentinel") {
    this.#store = store;
    this.#way = way;
    this.name = `homeostat-${way}`;
    this.label = way === "endpoint" ? "Homeostat, endpoint" : "Homeostat, Sentinel port";
  }

  access(): Access {
    return this.#way === "endpoint"
      ? { kind: "plain", host: "127.0.0.1", port: this.#store.endpointPort }
      : { kind: "sentinel", name: STORE, sentinels: [{ host: "127.0.0.1", port: this.#store.sentinelPort }] };
  }

  dataPorts(): number[] {
    return this.#store.dataPorts();
  }

  ready(timeoutMs: number): Promise<number> {
    return this.#store.ready(timeoutMs);
  }

  victim(port: number): Promise<Victim> {
    return this.#store.victim(port);
  }

  /** Homeostat brings the member back itself (as a replica): nothing for the bench to do. */
  async afterKill(): Promise<void> {}
}
