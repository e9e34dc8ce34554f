/**
 * The zone-failover fleet of the e2e tests, for either data-plane engine: three instances of the
 * demo app, one per zone, behind a front port, under ~100 rps of load with a fixed criticality
 * mix; zone-a's ports can be partitioned for real (nftables). With the queries and checks the
 * zone-failover tests share (zone state, events, evacuation, added capacity, shedding).
 */

import assert from "node:assert/strict";
import {
  healOrphanedPartitions,
  type NetPartition,
  partitionPorts,
} from "../../bench/common/netPartition.ts";
import { type CriticalityLoad, criticalityLoad } from "./criticalityLoad.ts";
import {
  APP,
  type Controller,
  freePort,
  freePortRange,
  NODE,
  type Sandbox,
  sandbox,
  waitForServing,
} from "./e2e.ts";
import { telling } from "./fleetControl.ts";
import { waitFor } from "./waitFor.ts";

/** The data-plane engine serving the fleet's service (`traffic.engine`). */
export type ZoneEngine = "embedded" | "haproxy";

/** Declared capacity per instance; the load is ~100 rps on three instances. */
export const CAPACITY_RPS = 50;
export const RATE_RPS = 100;

/** The fleet's retry and queue settings, and the retry backoff they leave (docs/data-plane.md, spec/schema.ts). */
const ATTEMPTS = 3;
const PER_TRY_TIMEOUT_MS = 300;
const RETRY_BACKOFF_MAX_MS = 250;
const QUEUE_TIMEOUT_MS = 1_000;

/**
 * The longest a request may take through the data plane: every attempt to its deadline, the
 * longest wait before each retry, the longest wait in the queue; plus 2 s for a noisy 2-core
 * machine. Before a retry the embedded engine backs off (at most RETRY_BACKOFF_MAX_MS); HAProxy
 * turns around within its connect timeout (the per-try timeout). A request not answered by then
 * counts as failed.
 */
export function requestBoundMs(engine: ZoneEngine): number {
  const beforeRetry = engine === "haproxy" ? PER_TRY_TIMEOUT_MS : RETRY_BACKOFF_MAX_MS;
  return ATTEMPTS * PER_TRY_TIMEOUT_MS + (ATTEMPTS - 1) * beforeRetry + QUEUE_TIMEOUT_MS + 2_000;
}

export interface ZoneFleetOptions {
  /** The fleet's name. */
  name: string;
  /** The service's data-plane engine (default embedded). */
  engine?: ZoneEngine;
  /** capacity.maxReplicas (default: 2 × replicas, the spare bank). */
  maxReplicas?: number;
  /**
   * An exec readiness check that does not cross the network (a host-local agent's view): a
   * network partition is then seen by the zone probe and the data plane, not by the instance probes.
   */
  localReadiness?: boolean;
  /** The releases declared (default v1 only); v1 runs. */
  releases?: string[];
}

/** The fleet file: service `api`, three replicas placed over zone-a, zone-b and zone-c. */
export function zoneFleetYaml(base: number, front: number, options: ZoneFleetOptions): string {
  const release = (version: string) =>
    [
      `      ${version}:`,
      `        command: ${JSON.stringify(NODE)}`,
      `        args: [${JSON.stringify(APP)}, --port, "{port}", --name, "{instance}"]`,
    ].join("\n");
  return `version: 1
name: ${options.name}
hosts:
  host-a: { zone: zone-a }
  host-b: { zone: zone-b }
  host-c: { zone: zone-c }
failover:
  automatic: true
  confirm: 1s
  stepPercent: 25
  stepInterval: 1s
  stabilization: 6s
  minInterval: 0s
defaults:
  probes:
    startup: { http: { path: /healthz }, interval: 100ms, timeout: 100ms, failureThreshold: 100 }
    readiness: { ${options.localReadiness === true ? "exec: { command: /bin/true }" : "http: { path: /ready }"}, interval: 200ms, timeout: 150ms, failureThreshold: 2 }
services:
  api:
    replicas: 3
    basePort: ${base}
    port: ${front}
    placement: { zones: [zone-a, zone-b, zone-c] }
    traffic:
${options.engine === "haproxy" ? "      engine: haproxy\n" : ""}      retries: { attempts: ${ATTEMPTS}, perTryTimeout: ${PER_TRY_TIMEOUT_MS}ms }
      limits: { queueTimeout: ${QUEUE_TIMEOUT_MS}ms }
    capacity: { rps: ${CAPACITY_RPS}, targetUtilization: 80%${options.maxReplicas === undefined ? "" : `, maxReplicas: ${options.maxReplicas}`} }
    release: v1
    releases:
${(options.releases ?? ["v1"]).map(release).join("\n")}
`;
}

/** Ports zone-a's slots can use: slot s of both banks (2 × replicas slots) sits in zone s mod 3 (src/spec/ports.ts, placementOf). */
export function zoneAPorts(base: number, replicas = 3): number[] {
  const ports: number[] = [];
  for (let slot = 0; slot < 2 * replicas; slot++) if (slot % 3 === 0) ports.push(base + slot);
  return ports;
}

export interface ZoneStatus {
  zone: string;
  state: string;
  reason: string;
  share: number;
  shift: { phase: string; trigger: string } | null;
}
export interface FailoverDoc {
  zones: ZoneStatus[];
  services: {
    service: string;
    servingCapacityRps: number;
    addedInstances: string[];
    shed: { sheddable: number; default: number };
  }[];
}
export interface ZoneEventDoc {
  seq: number;
  at: number;
  type: string;
  reason: string;
  message: string;
  data: {
    zone?: string;
    share?: number;
    shed?: { sheddable: number; default: number };
    instances?: string[];
  };
}

/** A zone fleet serving under load, with the queries and checks the zone-failover tests share. */
export class ZoneFleet {
  private partition: NetPartition | null = null;

  readonly box: Sandbox;
  readonly front: number;
  readonly base: number;
  readonly fleetFile: string;
  /** The controller running now (a test may replace it). */
  controller: Controller;
  readonly engine: ZoneEngine;
  /** ~100 rps, 20 % critical, 50 % default, 30 % sheddable, each request bounded by requestBoundMs. */
  readonly load: CriticalityLoad;

  private constructor(o: {
    box: Sandbox;
    front: number;
    base: number;
    fleetFile: string;
    controller: Controller;
    engine: ZoneEngine;
    load: CriticalityLoad;
  }) {
    this.box = o.box;
    this.front = o.front;
    this.base = o.base;
    this.fleetFile = o.fleetFile;
    this.controller = o.controller;
    this.engine = o.engine;
    this.load = o.load;
  }

  /**
   * Start the fleet in a new sandbox, wait until its front port serves (`serving` names that
   * wait), start the load and wait for every zone judged healthy with load flowing (demand
   * measured) before anything fails. `partition`: the fleet will be partitioned, so partitions an
   * earlier run left behind are removed first. A fleet that does not come up leaves nothing running.
   */
  static async start(
    options: ZoneFleetOptions & { serving: string; partition?: boolean },
  ): Promise<ZoneFleet> {
    if (options.partition === true) await healOrphanedPartitions();
    const engine = options.engine ?? "embedded";
    const box = await sandbox();
    let load: CriticalityLoad | null = null;
    try {
      const front = await freePort();
      const base = await freePortRange(6);
      const fleetFile = box.file("fleet.yaml", zoneFleetYaml(base, front, options));
      const controller = box.up(fleetFile);
      await telling(controller, () => waitForServing(front, options.serving));
      const running = criticalityLoad({
        port: front,
        rate: RATE_RPS,
        mix: { critical: 2, default: 5, sheddable: 3 },
        timeoutMs: requestBoundMs(engine),
      });
      load = running;
      await waitFor(
        async () => {
          const doc = await box.get<FailoverDoc>("/v1/failover");
          return doc.zones.every((z) => z.state === "healthy") && running.outcomes.length > 300;
        },
        { timeoutMs: 20_000, what: "steady load on a healthy fleet" },
      );
      return new ZoneFleet({ box, front, base, fleetFile, controller, engine, load: running });
    } catch (error) {
      await load?.stop();
      await box.cleanup();
      throw error;
    }
  }

  /** Heal any partition, stop the load and clean the sandbox up. */
  async stop(): Promise<void> {
    try {
      await this.healZoneA();
    } finally {
      await this.load.stop();
      await this.box.cleanup();
    }
  }

  /** Partition zone-a's ports (nftables, every packet dropped); one partition at a time. */
  async cutZoneA(): Promise<void> {
    assert.equal(this.partition, null, "one partition at a time");
    this.partition = await partitionPorts(zoneAPorts(this.base), "blackhole");
  }

  /** Remove the partition, if any. */
  async healZoneA(): Promise<void> {
    await this.partition?.heal();
    this.partition = null;
  }

  /** Zone `name` as the failover API shows it. */
  async zone(name: string): Promise<ZoneStatus> {
    return (await this.box.get<FailoverDoc>("/v1/failover")).zones.find((z) => z.zone === name)!;
  }

  /** The controller's events after `afterSeq`, of one type when given. */
  async events(type?: string, afterSeq = 0): Promise<ZoneEventDoc[]> {
    const { events: all } = await this.box.get<{ events: ZoneEventDoc[] }>(
      `/v1/events?limit=10000&after=${afterSeq}`,
    );
    return type === undefined ? all : all.filter((e) => e.type === type);
  }

  /**
   * Wait until zone-a is evacuated automatically because it is down; returns the zone and when
   * the evacuation was seen.
   */
  async expectZoneAEvacuated(): Promise<{ zone: ZoneStatus; seenAt: number }> {
    const evacuated = await waitFor(
      async () => {
        const z = await this.zone("zone-a");
        return z.share === 0 && z.shift?.phase === "evacuated" ? z : null;
      },
      { timeoutMs: 20_000, what: "zone-a evacuated" },
    );
    const seenAt = Date.now();
    assert.equal(evacuated.shift?.trigger, "automatic");
    const [started] = await this.events("failover.started");
    assert.equal(started?.reason, "domain-down");
    assert.match(started!.message, /zone-a is down/);
    return { zone: evacuated, seenAt };
  }

  /** The first scale-up events of a failover. */
  scaleUps(): Promise<ZoneEventDoc[]> {
    return waitFor(async () => {
      const found = await this.events("failover.scale-up");
      return found.length > 0 ? found : null;
    });
  }

  /**
   * zone-a lost with maxReplicas 3: maxReplicas counts the instances outside the lost zone, so
   * 3 − 2 survivors = 1 may be added, api-4. Waits until it is added and ready, and until answers
   * of requests shed since `cutAt` (the gate protecting the survivors meanwhile) came back.
   */
  async expectApi4AddedWhileShedding(cutAt: number): Promise<void> {
    const scaleUps = await this.scaleUps();
    assert.deepEqual(
      scaleUps.flatMap((e) => e.data.instances ?? []),
      ["api-4"],
    );
    await waitFor(async () => (await this.events("failover.capacity-ready")).length > 0, {
      timeoutMs: 20_000,
      what: "api-4 ready",
    });
    await waitFor(() => this.load.outcomes.some((o) => o.shed === "failover-shed" && o.at > cutAt), {
      what: "the shed requests' answers",
    });
  }

  /** No critical request failed, for any reason (shed, refused, 5xx, no answer within the request bound). */
  assertNoCriticalFailure(): void {
    const critical = this.load.outcomes.filter((o) => o.criticality === "critical");
    assert.ok(critical.length > 0, "critical requests were sent");
    const failed = critical.filter((o) => o.status !== 200);
    assert.deepEqual(
      failed.slice(0, 5),
      [],
      `${failed.length} of ${critical.length} critical requests failed (status 0: no answer within ${requestBoundMs(this.engine)}ms)`,
    );
  }

  /** Wait for a clean second of traffic: the second before the last, more than 50 requests, all 200. */
  async expectCleanSecond(what: string): Promise<void> {
    await waitFor(
      () => {
        const recent = this.load.outcomes.filter(
          (o) => o.at > Date.now() - 2_000 && o.at < Date.now() - 1_000,
        );
        return recent.length > 50 && recent.every((o) => o.status === 200);
      },
      { timeoutMs: 15_000, what },
    );
  }
}

/** No announced shedding touched default traffic. */
export function assertDefaultNeverShed(shedding: readonly ZoneEventDoc[]): void {
  assert.ok(
    shedding.every((e) => e.data.shed!.default === 0),
    JSON.stringify(shedding.map((e) => e.data.shed)),
  );
}
