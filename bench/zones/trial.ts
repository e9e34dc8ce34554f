/**
 * One trial: a fresh controller on the scenario's fleet (NAIVE or HOMEOSTAT), open-loop load at
 * the set share of the fleet's capacity, zone-a blackholed through the controller's fault API
 * after the warm-up, the fault removed after the outage, the load kept on for the tail; then the
 * controller and every instance are stopped.
 */

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { apiClient } from "../../src/cli/apiClient.ts";
import type { EventRecord } from "../../src/store/index.ts";
import type { FaultRule } from "../../src/traffic/faults.ts";
import { waitFor } from "../../test/helpers/waitFor.ts";
import { HomeostatUnderTest } from "../foundation/homeostat.ts";
import type { ProcessLedger } from "../foundation/processes.ts";
import { type QuietReading, waitQuiet } from "../proxy/quiet.ts";
import { busyPorts } from "../rollback/fleetCopy.ts";
import { analyzeTrial, type TrialFigures } from "./analysis.ts";
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
} from "./fleet.ts";
import { epochNow, OpenLoad } from "./load.ts";
import type { Mode, ScenarioName, ZonesBenchOptions } from "./options.ts";
import { Sampler } from "./sampler.ts";

export interface Trial {
  scenario: ScenarioName;
  mode: Mode;
  /** 0-based. */
  repeat: number;
  ratePerSecond: number;
  /** How busy the machine was just before the trial (the bench idle). */
  before: QuietReading | null;
  /** ms from `homeostat up` to every instance ready. */
  readyAfterMs: number | null;
  fault: FaultRule | null;
  requests: number;
  /** The load generator's own worst lateness (a late generator would under-load the fleet). */
  maxLatenessMs: number | null;
  figures: TrialFigures | null;
  /** `GET /v1/failover` at the end of the tail (null where the controller has no such endpoint). */
  failoverAtEnd: unknown;
  ok: boolean;
  error?: string;
}

/** Sleep until the epoch time `at`: pacing of the experiment's schedule, the load runs meanwhile. */
async function until(at: number): Promise<void> {
  const wait = at - epochNow();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
}

async function allEvents(apiPort: number): Promise<EventRecord[]> {
  const api = apiClient(apiPort, 10_000);
  const all: EventRecord[] = [];
  let after = 0;
  for (;;) {
    const page = (await api.get<{ events: EventRecord[] }>(`/v1/events?after=${after}&limit=10000`)).events;
    all.push(...page);
    if (page.length < 10_000) return all;
    after = page.at(-1)!.seq;
  }
}

export function offeredRate(s: Scenario, options: ZonesBenchOptions): number {
  return Math.round(options.loadFraction * s.replicas * s.instanceCapacityRps);
}

export async function runTrial(context: {
  name: ScenarioName;
  mode: Mode;
  repeat: number;
  options: ZonesBenchOptions;
  scratch: string;
  ledger: ProcessLedger;
  /** Told about the running controller (and null once it is stopped), so an interrupt can stop it. */
  onController: (homeostat: HomeostatUnderTest | null) => void;
  log: (message: string) => void;
}): Promise<Trial> {
  const { name, mode, repeat, options, ledger } = context;
  const s = scenarioOf(name);
  const rate = offeredRate(s, options);
  const trial: Trial = {
    scenario: name,
    mode,
    repeat,
    ratePerSecond: rate,
    before: null,
    readyAfterMs: null,
    fault: null,
    requests: 0,
    maxLatenessMs: null,
    figures: null,
    failoverAtEnd: null,
    ok: false,
  };
  const dir = join(context.scratch, `${name}-${mode}-${repeat + 1}`);
  mkdirSync(dir, { recursive: true });
  const fleetFile = join(dir, "fleet.yaml");
  writeFileSync(fleetFile, fleetYaml(s, mode));

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

  const { homeostat, readyAfterMs } = await HomeostatUnderTest.start({
    fleetFile,
    apiPort: API_PORT,
    stateDir: join(dir, "state"),
    total: s.replicas,
    ledger,
  });
  context.onController(homeostat);
  trial.readyAfterMs = readyAfterMs;
  const api = apiClient(API_PORT, 5_000);
  let load: OpenLoad | null = null;
  let sampler: Sampler | null = null;
  try {
    load = new OpenLoad({
      port: FRONT_PORT,
      path: "/",
      ratePerSecond: rate,
      timeoutMs: options.clientTimeoutMs,
    });
    const t0 = load.start();
    sampler = new Sampler(
      {
        apiPort: API_PORT,
        slots: instancePorts(s).map((port, slot) => ({
          slot,
          port,
          zone: s.zoneOfSlot(slot),
          instance: `${SERVICE}-${slot}`,
        })),
      },
      t0,
    );
    sampler.start();

    await until(t0 + options.warmupMs);
    homeostat.assertRunning();
    const { fault } = await api.post<{ fault: FaultRule }>("/v1/faults", {
      zone: FAILED_ZONE,
      fault: { kind: "blackhole" },
    });
    trial.fault = fault;
    const faultAt = fault.createdAt;
    context.log(`    ${FAILED_ZONE} blackholed (${fault.id}); outage for ${options.outageMs / 1000} s…`);

    await until(faultAt + options.outageMs);
    const removing = epochNow();
    await api.delete(`/v1/faults/${encodeURIComponent(fault.id)}`);
    const clearedAt = (removing + epochNow()) / 2;
    context.log(`    fault removed; ${options.tailMs / 1000} s more…`);

    await until(clearedAt + options.tailMs);
    homeostat.assertRunning();
    trial.failoverAtEnd = await api.get<unknown>("/v1/failover").catch(() => null);
    const result = await load.stop();
    load = null;
    const samples = await sampler.stop();
    sampler = null;
    const events = await allEvents(API_PORT);
    trial.requests = result.records.length;
    trial.maxLatenessMs = result.maxLatenessMs;
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
    await load?.stop().catch(() => undefined);
    await sampler?.stop().catch(() => undefined);
    await homeostat.stop();
    context.onController(null);
  }
  return trial;
}
