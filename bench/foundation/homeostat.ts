/**
 * The system under test: a real `homeostat up` controller process running a fleet file, driven
 * through its public API and CLI only, plus every process it starts, so they can all be stopped.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { type ApiClient, apiClient } from "../../src/cli/apiClient.ts";
import type { StatusDocument } from "../../src/server/statusView.ts";
import type { EventRecord, IncidentRecord } from "../../src/store/index.ts";
import { BIN, cli, REPO } from "../../test/helpers/e2e.ts";
import { waitFor } from "../../test/helpers/waitFor.ts";
import type { ProcessLedger } from "./processes.ts";

/** Lines of controller output kept for error messages. */
const OUTPUT_LINES_KEPT = 200;

export class HomeostatUnderTest {
  readonly apiPort: number;
  readonly stateDir: string;
  readonly controller: ChildProcess;
  /** Every event the controller printed (it runs with `--json`), in order. */
  readonly events: EventRecord[] = [];
  #client: ApiClient | null = null;
  readonly #ledger: ProcessLedger;
  readonly #exited: Promise<void>;
  readonly #output: string[] = [];

  private constructor(fleetFile: string, apiPort: number, stateDir: string, ledger: ProcessLedger) {
    this.apiPort = apiPort;
    this.stateDir = stateDir;
    this.#ledger = ledger;
    // The fleet says `command: node`: the Node that runs the bench (24) must come first on PATH,
    // whatever the system's own `node` is.
    const path = [dirname(process.execPath), process.env.PATH ?? ""].join(delimiter);
    this.controller = spawn(
      process.execPath,
      [BIN, "up", fleetFile, "--state-dir", stateDir, "--api-port", String(apiPort), "--json"],
      { cwd: REPO, env: { ...process.env, PATH: path }, stdio: ["ignore", "pipe", "pipe"] },
    );
    if (this.controller.pid !== undefined) ledger.note(this.controller.pid);
    this.#exited = new Promise((resolve) => this.controller.once("exit", () => resolve()));
    createInterface({ input: this.controller.stdout! }).on("line", (line) => this.#onLine(line));
    createInterface({ input: this.controller.stderr! }).on("line", (line) => this.#keep(line));
  }

  /** Start `homeostat up` and wait until `total` instances are ready. Returns ms to all-ready. */
  static async start(options: {
    fleetFile: string;
    apiPort: number;
    stateDir: string;
    total: number;
    ledger: ProcessLedger;
  }): Promise<{ homeostat: HomeostatUnderTest; readyAfterMs: number }> {
    const startedAt = performance.now();
    const homeostat = new HomeostatUnderTest(
      options.fleetFile,
      options.apiPort,
      options.stateDir,
      options.ledger,
    );
    try {
      // A controller that dies at start-up would otherwise only show as a timeout a minute later.
      const died = homeostat.#exited.then(() => {
        throw new Error("the controller exited");
      });
      died.catch(() => undefined);
      await Promise.race([homeostat.waitAllReady(options.total, 60_000), died]);
    } catch (error) {
      throw new Error(`the fleet did not become ready:\n${homeostat.output()}`, { cause: error });
    }
    return { homeostat, readyAfterMs: performance.now() - startedAt };
  }

  /** Throws if the controller process has exited: every later measurement would only time out. */
  assertRunning(): void {
    if (this.controller.exitCode !== null || this.controller.signalCode !== null) {
      throw new Error(`the controller exited:\n${this.output()}`);
    }
  }

  /** The controller's last lines of output. */
  output(): string {
    return this.#output.join("\n");
  }

  /**
   * The API client, made once `up` has written `<stateDir>/admin-token`: the client looks its
   * token up once and keeps what it found, so one made before the file exists never has one.
   */
  get #api(): ApiClient {
    if (this.#client === null) {
      if (!existsSync(join(this.stateDir, "admin-token"))) throw new Error("no admin token written yet");
      this.#client = apiClient(this.apiPort, { stateDir: this.stateDir });
    }
    return this.#client;
  }

  /** `GET /v1/status`; every pid it shows is remembered for the final sweep. */
  async status(): Promise<StatusDocument> {
    const status = await this.#api.get<StatusDocument>("/v1/status");
    for (const service of status.services) {
      for (const instance of service.instances) {
        if (instance.pid !== null) this.#ledger.note(instance.pid);
      }
    }
    return status;
  }

  /** The most recent incidents, newest first. */
  async incidents(limit = 50): Promise<IncidentRecord[]> {
    return (await this.#api.get<{ incidents: IncidentRecord[] }>(`/v1/incidents?limit=${limit}`)).incidents;
  }

  /** Wait until exactly `total` instances exist and all are ready; returns that status. */
  async waitAllReady(total: number, timeoutMs: number): Promise<StatusDocument> {
    return await waitFor(
      async () => {
        const status = await this.status();
        const instances = status.services.flatMap((s) => s.instances);
        return instances.length === total && instances.every((i) => i.state === "ready") ? status : null;
      },
      { timeoutMs, intervalMs: 50, what: `${total} ready instances` },
    );
  }

  /**
   * `homeostat down` (graceful: the controller stops every instance, then exits). If the
   * controller does not answer, it is killed and `down --state-dir` stops what it left; the
   * ledger sweep then SIGKILLs anything still alive.
   */
  async stop(): Promise<void> {
    const running = () => this.controller.exitCode === null && this.controller.signalCode === null;
    if (running()) {
      const down = await cli(["down", "--api-port", String(this.apiPort), "--timeout", "30"], {
        timeoutMs: 40_000,
      }).catch(() => null);
      if (down?.code !== 0 && running()) this.controller.kill("SIGKILL");
      await this.#exited;
    }
    await cli(["down", "--state-dir", this.stateDir, "--api-port", String(this.apiPort)], {
      timeoutMs: 40_000,
    }).catch(() => null);
    this.#ledger.sweep();
  }

  #onLine(line: string): void {
    this.#keep(line);
    try {
      const event = JSON.parse(line) as EventRecord;
      if (typeof event.type !== "string" || typeof event.at !== "number") return;
      this.events.push(event);
      const pid = (event.data as { pid?: unknown } | undefined)?.pid;
      if (event.type === "instance.started" && typeof pid === "number") this.#ledger.note(pid);
    } catch {
      // a banner or message line, not an event
    }
  }

  #keep(line: string): void {
    this.#output.push(line);
    if (this.#output.length > OUTPUT_LINES_KEPT) this.#output.shift();
  }
}
