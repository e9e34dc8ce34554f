/**
 * One controller on the copied fleet, for one scenario: started on a fresh state directory and a
 * free API port, read through its public API and driven through the real CLI.
 */

import { join } from "node:path";
import { type ApiClient, apiClient } from "../../src/cli/apiClient.ts";
import type { ReleaseHistoryEntry, RollbackPlan } from "../../src/decide/rollback/types.ts";
import type { RolloutState } from "../../src/decide/rollout/types.ts";
import type { FleetSpec } from "../../src/spec/index.ts";
import type { EventRecord } from "../../src/store/index.ts";
import { type CliResult, cli, freePort } from "../../test/helpers/e2e.ts";
import { waitFor } from "../../test/helpers/waitFor.ts";
import { HomeostatUnderTest } from "../foundation/homeostat.ts";
import type { ProcessLedger } from "../foundation/processes.ts";
import { busyPorts, fleetPorts } from "./fleetCopy.ts";

export interface RolloutSummary {
  id: number;
  kind: string;
  finished: boolean;
  state: RolloutState;
}

export interface ReleasesDocument {
  active: string;
  history: ReleaseHistoryEntry[];
  rollouts: RolloutSummary[];
}

export class ControllerRun {
  readonly homeostat: HomeostatUnderTest;
  readonly api: ApiClient;
  readonly apiPort: number;

  private constructor(homeostat: HomeostatUnderTest) {
    this.homeostat = homeostat;
    this.apiPort = homeostat.apiPort;
    this.api = apiClient(homeostat.apiPort, { timeoutMs: 10_000, stateDir: homeostat.stateDir });
  }

  /**
   * Wait (briefly) for the fleet's fixed ports to be free — a previous controller's instances may
   * still be letting go — then start `homeostat up` and wait for every instance to be ready.
   */
  static async start(options: {
    fleetFile: string;
    fleet: FleetSpec;
    stateDir: string;
    ledger: ProcessLedger;
  }): Promise<ControllerRun> {
    const ports = fleetPorts(options.fleet);
    await waitFor(async () => (await busyPorts(ports)).length === 0, {
      timeoutMs: 20_000,
      intervalMs: 200,
      what: "the fleet's ports to be free",
    }).catch(async () => {
      throw new Error(`ports ${(await busyPorts(ports)).join(", ")} are still in use`);
    });
    const { homeostat } = await HomeostatUnderTest.start({
      fleetFile: options.fleetFile,
      apiPort: await freePort(),
      stateDir: options.stateDir,
      total: options.fleet.services.reduce((n, s) => n + s.replicas, 0),
      ledger: options.ledger,
    });
    return new ControllerRun(homeostat);
  }

  get stateDir(): string {
    return this.homeostat.stateDir;
  }

  get logDir(): string {
    return join(this.homeostat.stateDir, "logs");
  }

  /** `homeostat ARGS --api-port N` through the real CLI. */
  async cli(args: string[]): Promise<CliResult> {
    return await cli([...args, "--api-port", String(this.apiPort)], { timeoutMs: 30_000 });
  }

  /** Every event so far, oldest first. */
  async events(): Promise<EventRecord[]> {
    const all: EventRecord[] = [];
    let after = 0;
    for (;;) {
      const page = (await this.api.get<{ events: EventRecord[] }>(`/v1/events?after=${after}&limit=10000`))
        .events;
      all.push(...page);
      if (page.length < 10_000) return all;
      after = page.at(-1)!.seq;
    }
  }

  async releases(service: string): Promise<ReleasesDocument> {
    return await this.api.get<ReleasesDocument>(`/v1/services/${encodeURIComponent(service)}/releases`);
  }

  async plan(service: string): Promise<RollbackPlan> {
    return await this.api.get<RollbackPlan>(`/v1/services/${encodeURIComponent(service)}/rollback-plan`);
  }

  /** Wait until rollout `id` of `service` is finished; returns it. */
  async finishedRollout(service: string, id: number, timeoutMs: number): Promise<RolloutSummary> {
    return await waitFor(
      async () => {
        this.homeostat.assertRunning();
        const rollout = (await this.releases(service)).rollouts.find((r) => r.id === id);
        return rollout?.finished === true ? rollout : null;
      },
      { timeoutMs, intervalMs: 100, what: `rollout ${id} of ${service} to finish` },
    );
  }

  /**
   * Wait until rollout `id` of `service` is finished, or held (its automatic rollback was refused
   * by the safety checks: nothing moves until an operator decides); returns it.
   */
  async settledRollout(service: string, id: number, timeoutMs: number): Promise<RolloutSummary> {
    return await waitFor(
      async () => {
        this.homeostat.assertRunning();
        const rollout = (await this.releases(service)).rollouts.find((r) => r.id === id);
        return rollout?.finished === true || rollout?.state.held !== undefined ? rollout : null;
      },
      { timeoutMs, intervalMs: 100, what: `rollout ${id} of ${service} to finish or be held` },
    );
  }

  /** Wait until no instance of `service` runs `release` any more. */
  async noInstanceOf(service: string, release: string, timeoutMs: number): Promise<void> {
    await waitFor(
      async () => {
        const status = await this.homeostat.status();
        const s = status.services.find((x) => x.name === service);
        return s?.instances.every((i) => i.release !== release) === true;
      },
      { timeoutMs, intervalMs: 100, what: `no ${service} instance running ${release}` },
    );
  }

  async stop(): Promise<void> {
    await this.homeostat.stop();
  }
}
