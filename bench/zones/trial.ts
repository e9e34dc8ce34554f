/**
 * One trial: a fresh contender on the scenario's instances — HAProxy over instances the bench
 * starts, or a fresh Homeostat controller (failover on, or off for NAIVE) — open-loop load at the
 * set share of the fleet's capacity, zone-a cut off after the warm-up, restored after the outage,
 * the load kept on for the tail; then everything is stopped.
 *
 * The default fault is a real network partition (bench/common/netPartition.ts): nftables rules on
 * loopback drop every packet to and from every port zone-a's slots can use (both banks, so an
 * instance the controller restarts or adds there is cut too). The balancer's requests, its health
 * checks or probes, and this bench's own `/stats` readings all cross it. The `hook` fault is
 * Homeostat's fault API instead (`POST /v1/faults` blackhole on the zone): only Homeostat's proxy
 * and zone probe see it — a simulation, run for Homeostat modes only.
 */

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { apiClient } from "../../src/cli/apiClient.ts";
import type { EventRecord } from "../../src/store/index.ts";
import type { FaultRule } from "../../src/traffic/faults.ts";
import { waitFor } from "../../test/helpers/waitFor.ts";
import { type NetPartition, partitionPorts } from "../common/netPartition.ts";
import { HomeostatUnderTest } from "../foundation/homeostat.ts";
import type { ProcessLedger } from "../foundation/processes.ts";
import { type QuietReading, waitQuiet } from "../proxy/quiet.ts";
import { busyPorts } from "../rollback/fleetCopy.ts";
import {
  analyzeTrial,
  type GeneratorHealth,
  generatorHealth,
  type TrialEvent,
  type TrialFigures,
} from "./analysis.ts";
import {
  API_PORT,
  FAILED_ZONE,
  FAILOVER,
  FRONT_PORT,
  fleetYaml,
  instancePorts,
  type Scenario,
  SERVICE,
  scenario as scenarioOf,
  zonePorts,
} from "./fleet.ts";
import { HaproxyFleet } from "./haproxy.ts";
import { epochNow, OpenLoad } from "./load.ts";
import type { FaultName, Mode, ScenarioName, ZonesBenchOptions } from "./options.ts";
import { type BalancerReading, haproxyBalancer, homeostatBalancer, Sampler } from "./sampler.ts";

export interface FaultRecord {
  fault: FaultName;
  /** Partition: the nftables table, the kind, and the ports cut. */
  table?: string;
  kind?: string;
  ports?: number[];
  /** Hook: the rule Homeostat created. */
  rule?: FaultRule;
}

export interface Trial {
  scenario: ScenarioName;
  fault: FaultName;
  loadFraction: number;
  mode: Mode;
  /** 0-based round. */
  repeat: number;
  /** Position in its pair (0: ran first). */
  order: number;
  ratePerSecond: number;
  /** How busy the machine was just before the trial (the bench idle). */
  before: QuietReading | null;
  /** ms from start to every instance ready (HAProxy: every server UP). */
  readyAfterMs: number | null;
  faultRecord: FaultRecord | null;
  requests: number;
  /** Whether the generator kept up (invalid trials are counted and left out of summaries). */
  generator: GeneratorHealth | null;
  figures: TrialFigures | null;
  /** `GET /v1/failover` at the end of the tail (Homeostat only). */
  failoverAtEnd: unknown;
  /** The trial's wall time, start of the contender to everything stopped. */
  wallMs: number;
  ok: boolean;
  error?: string;
}

/** What run.ts must undo if the bench is interrupted mid-trial. */
export interface LiveTrial {
  stop: (() => Promise<void>) | null;
  partition: NetPartition | null;
}

/** Sleep until the epoch time `at`: pacing of the experiment's schedule, the load runs meanwhile. */
async function until(at: number): Promise<void> {
  const wait = at - epochNow();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
}

async function allEvents(apiPort: number, stateDir: string): Promise<EventRecord[]> {
  const api = apiClient(apiPort, { timeoutMs: 10_000, stateDir });
  const all: EventRecord[] = [];
  let after = 0;
  for (;;) {
    const page = (await api.get<{ events: EventRecord[] }>(`/v1/events?after=${after}&limit=10000`)).events;
    all.push(...page);
    if (page.length < 10_000) return all;
    after = page.at(-1)!.seq;
  }
}

export function offeredRate(s: Scenario, loadFraction: number): number {
  return Math.round(loadFraction * s.replicas * s.instanceCapacityRps);
}

/** A started contender, as the trial drives it. */
interface Contender {
  readyAfterMs: number;
  assertRunning(): void;
  balancer: () => Promise<BalancerReading>;
  /** Inject the hook fault (Homeostat only); returns its epoch time and what to remove. */
  hook?(): Promise<{ at: number; rule: FaultRule; remove: () => Promise<void> }>;
  /** The ports the contender's zone-a instances listen on (to check the partition covers them). */
  failedZonePorts(): Promise<number[]>;
  events(): Promise<TrialEvent[]>;
  failoverAtEnd(): Promise<unknown>;
  stop(): Promise<void>;
}

async function startHomeostat(
  s: Scenario,
  mode: Exclude<Mode, "haproxy">,
  dir: string,
  ledger: ProcessLedger,
): Promise<Contender> {
  const fleetFile = join(dir, "fleet.yaml");
  writeFileSync(fleetFile, fleetYaml(s, mode));
  const { homeostat, readyAfterMs } = await HomeostatUnderTest.start({
    fleetFile,
    apiPort: API_PORT,
    stateDir: join(dir, "state"),
    total: s.replicas,
    ledger,
  });
  const api = apiClient(API_PORT, { timeoutMs: 5_000, stateDir: join(dir, "state") });
  return {
    readyAfterMs,
    assertRunning: () => homeostat.assertRunning(),
    balancer: homeostatBalancer(API_PORT, join(dir, "state")),
    hook: async () => {
      const { fault } = await api.post<{ fault: FaultRule }>("/v1/faults", {
        zone: FAILED_ZONE,
        fault: { kind: "blackhole" },
      });
      return {
        at: fault.createdAt,
        rule: fault,
        remove: async () => {
          await api.delete(`/v1/faults/${encodeURIComponent(fault.id)}`);
        },
      };
    },
    failedZonePorts: async () =>
      (await homeostat.status()).services
        .flatMap((svc) => svc.instances)
        .filter((i) => i.zone === FAILED_ZONE)
        .map((i) => i.port),
    events: () => allEvents(API_PORT, join(dir, "state")),
    failoverAtEnd: () => api.get<unknown>("/v1/failover").catch(() => null),
    stop: () => homeostat.stop(),
  };
}

async function startHaproxy(s: Scenario, dir: string, ledger: ProcessLedger): Promise<Contender> {
  const started = performance.now();
  const fleet = await HaproxyFleet.start({ scenario: s, dir, ledger });
  const readyAfterMs = performance.now() - started;
  return {
    readyAfterMs,
    assertRunning: () => fleet.assertRunning(),
    balancer: haproxyBalancer(() => fleet.serverStats(), s.zoneOfSlot),
    failedZonePorts: async () =>
      Array.from({ length: s.replicas }, (_, slot) => slot)
        .filter((slot) => s.zoneOfSlot(slot) === FAILED_ZONE)
        .map((slot) => s.basePort + slot),
    events: async () =>
      fleet.events.map((e) => ({
        at: e.at,
        type: e.state === "DOWN" ? "haproxy.down" : "haproxy.up",
        instance: e.server,
        message: `HAProxy: ${e.server} ${e.state}${e.reason === null ? "" : ` (${e.reason})`}`,
      })),
    failoverAtEnd: async () => null,
    stop: () => fleet.stop(),
  };
}

export async function runTrial(context: {
  name: ScenarioName;
  fault: FaultName;
  loadFraction: number;
  mode: Mode;
  repeat: number;
  order: number;
  options: ZonesBenchOptions;
  scratch: string;
  ledger: ProcessLedger;
  /** What an interrupt must stop and heal; kept current by the trial. */
  live: LiveTrial;
  log: (message: string) => void;
}): Promise<Trial> {
  const { name, fault, loadFraction, mode, repeat, options, ledger, live } = context;
  const s = scenarioOf(name);
  const rate = offeredRate(s, loadFraction);
  const trial: Trial = {
    scenario: name,
    fault,
    loadFraction,
    mode,
    repeat,
    order: context.order,
    ratePerSecond: rate,
    before: null,
    readyAfterMs: null,
    faultRecord: null,
    requests: 0,
    generator: null,
    figures: null,
    failoverAtEnd: null,
    wallMs: 0,
    ok: false,
  };
  if (fault === "hook" && mode === "haproxy") throw new Error("the hook fault exists only inside Homeostat");
  const dir = join(context.scratch, `${name}-${fault}-${loadFraction}-${mode}-${repeat + 1}`);
  mkdirSync(dir, { recursive: true });

  const ports = [FRONT_PORT, API_PORT, ...instancePorts(s)];
  // The previous trial's instances may still be letting go of their ports.
  await waitFor(async () => (await busyPorts(ports)).length === 0, {
    timeoutMs: 30_000,
    intervalMs: 200,
    what: "the bench's ports to be free",
  }).catch(async () => {
    throw new Error(
      `ports ${(await busyPorts(ports)).join(", ")} are in use: is another bench:zones running?`,
    );
  });
  trial.before = await waitQuiet(options.quietPercent, 60_000);

  const started = performance.now();
  const contender =
    mode === "haproxy" ? await startHaproxy(s, dir, ledger) : await startHomeostat(s, mode, dir, ledger);
  live.stop = () => contender.stop();
  trial.readyAfterMs = contender.readyAfterMs;
  let load: OpenLoad | null = null;
  let sampler: Sampler | null = null;
  try {
    const cut = zonePorts(s, FAILED_ZONE);
    const running = await contender.failedZonePorts();
    const uncovered = running.filter((p) => !cut.includes(p));
    if (uncovered.length > 0)
      throw new Error(`${FAILED_ZONE} instances on ports ${uncovered.join(", ")} would escape the partition`);

    load = new OpenLoad({
      port: FRONT_PORT,
      path: "/",
      ratePerSecond: rate,
      timeoutMs: options.clientTimeoutMs,
    });
    const t0 = load.start();
    sampler = new Sampler(
      {
        slots: instancePorts(s).map((port, slot) => ({
          slot,
          port,
          zone: s.zoneOfSlot(slot),
          instance: `${SERVICE}-${slot}`,
        })),
        balancer: contender.balancer,
      },
      t0,
    );
    sampler.start();

    await until(t0 + options.warmupMs);
    contender.assertRunning();
    let faultAt: number;
    let remove: () => Promise<void>;
    if (fault === "partition") {
      const cutting = epochNow();
      const partition = await partitionPorts(cut, options.partitionKind);
      faultAt = (cutting + epochNow()) / 2;
      live.partition = partition;
      remove = () => partition.heal();
      trial.faultRecord = {
        fault,
        table: partition.table,
        kind: partition.kind,
        ports: [...partition.ports],
      };
      context.log(
        `    ${FAILED_ZONE} partitioned (${options.partitionKind}, ports ${cut.join(", ")}); outage for ${options.outageMs / 1000} s…`,
      );
    } else {
      const hooked = await contender.hook!();
      faultAt = hooked.at;
      remove = hooked.remove;
      trial.faultRecord = { fault, rule: hooked.rule };
      context.log(
        `    ${FAILED_ZONE} blackholed by the fault hook (${hooked.rule.id}); outage for ${options.outageMs / 1000} s…`,
      );
    }

    await until(faultAt + options.outageMs);
    const removing = epochNow();
    await remove();
    const clearedAt = (removing + epochNow()) / 2;
    live.partition = null;
    context.log(`    fault removed; ${options.tailMs / 1000} s more…`);

    await until(clearedAt + options.tailMs);
    contender.assertRunning();
    trial.failoverAtEnd = await contender.failoverAtEnd();
    const result = await load.stop();
    load = null;
    const samples = await sampler.stop();
    sampler = null;
    const events = await contender.events();
    trial.requests = result.records.length;
    trial.generator = generatorHealth(result, rate);
    trial.figures = analyzeTrial({
      scenario: s,
      load: result,
      samples,
      events,
      faultAt,
      clearedAt,
      stepIntervalMs: FAILOVER.stepIntervalMs,
    });
    trial.ok = true;
  } catch (error) {
    trial.error = error instanceof Error ? error.message : String(error);
  } finally {
    await live.partition?.heal().catch(() => undefined);
    live.partition = null;
    await load?.stop().catch(() => undefined);
    await sampler?.stop().catch(() => undefined);
    await contender.stop();
    live.stop = null;
    trial.wallMs = performance.now() - started;
  }
  return trial;
}
