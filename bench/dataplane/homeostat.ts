/**
 * Homeostat as the data-plane bench runs it: a real `homeostat up` of a generated fleet file
 * (three instances of the demo app behind the service's front port, the e2e tests' demo fleet,
 * default traffic settings), optionally with `--data-plane=MODE`, driven through its API and CLI.
 * It can name every process the controller started (from /proc), so that they are all stopped at
 * the end even after the controller itself was SIGKILLed.
 */

import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { type ApiClient, apiClient } from "../../src/cli/apiClient.ts";
import type { StatusDocument } from "../../src/server/statusView.ts";
import { BIN, cli, demoFleetYaml, freePort, freePortRange, REPO } from "../../test/helpers/e2e.ts";
import { waitFor } from "../../test/helpers/waitFor.ts";
import {
  identify,
  type ProcessIdentity,
  type ProcessLedger,
  signalIfRunning,
  stillRunning,
} from "../foundation/processes.ts";
import { Child } from "../proxy/child.ts";
import type { DataPlaneMode } from "./options.ts";
import { epochNow } from "./upstreams.ts";

export const SERVICE = "api";
export const REPLICAS = 3;

/** True when `homeostat up --help` documents `--data-plane` (the flag exists in this code). */
export function hasDataPlaneFlag(): boolean {
  const help = spawnSync(process.execPath, [BIN, "up", "--help"], { cwd: REPO, encoding: "utf8" });
  return `${help.stdout}${help.stderr}`.includes("--data-plane");
}

/** Pids whose parent is `pid`, read from /proc. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    const child = Number(entry);
    if (!Number.isInteger(child)) continue;
    try {
      const stat = readFileSync(`/proc/${child}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(child);
    } catch {
      // gone
    }
  }
  return out;
}

/** Every descendant of `pid`. */
export function descendantsOf(pid: number): number[] {
  const out: number[] = [];
  const todo = [pid];
  while (todo.length > 0) {
    for (const child of childrenOf(todo.pop()!)) {
      out.push(child);
      todo.push(child);
    }
  }
  return out;
}

/** Pids listening on 127.0.0.1:`port` (from `ss -ltnp`), to tell which process serves it. */
export function listenerPids(port: number): number[] {
  try {
    const text = execFileSync("ss", ["-ltnpH", `sport = :${port}`], { encoding: "utf8" });
    return [...new Set([...text.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1])))];
  } catch {
    return [];
  }
}

export class HomeostatFleet {
  readonly port: number;
  readonly apiPort: number;
  readonly stateDir: string;
  readonly fleetYaml: string;
  readonly mode: DataPlaneMode | null;
  readonly #child: Child;
  readonly #api: ApiClient;
  readonly #ledger: ProcessLedger;
  /** Every process of this fleet seen so far: the controller's descendants and what the API showed. */
  readonly #own = new Map<string, ProcessIdentity>();

  private constructor(options: {
    dir: string;
    port: number;
    apiPort: number;
    fleetYaml: string;
    mode: DataPlaneMode | null;
    ledger: ProcessLedger;
  }) {
    this.port = options.port;
    this.apiPort = options.apiPort;
    this.stateDir = join(options.dir, "state");
    this.fleetYaml = options.fleetYaml;
    this.mode = options.mode;
    this.#ledger = options.ledger;
    this.#api = apiClient(options.apiPort, { stateDir: this.stateDir });
    const fleetFile = join(options.dir, "fleet.yaml");
    writeFileSync(fleetFile, options.fleetYaml);
    // The fleet says `command: <this Node>`; PATH first on it all the same, as the other benches do.
    const path = [dirname(process.execPath), process.env.PATH ?? ""].join(delimiter);
    const args = [BIN, "up", fleetFile, "--state-dir", this.stateDir, "--api-port", String(this.apiPort)];
    if (options.mode !== null) args.push(`--data-plane=${options.mode}`);
    this.#child = new Child(
      `homeostat up (${options.mode ?? "default data plane"})`,
      process.execPath,
      args,
      {
        ledger: options.ledger,
        cwd: REPO,
        env: { ...process.env, PATH: path },
      },
    );
  }

  /** Write the fleet file into `dir`, run `homeostat up`, wait until all instances are ready. */
  static async start(
    dir: string,
    mode: DataPlaneMode | null,
    ledger: ProcessLedger,
  ): Promise<HomeostatFleet> {
    mkdirSync(dir, { recursive: true });
    const port = await freePort();
    const basePort = await freePortRange(REPLICAS);
    const fleetYaml = demoFleetYaml({ services: [{ name: SERVICE, replicas: REPLICAS, basePort, port }] });
    const fleet = new HomeostatFleet({ dir, port, apiPort: await freePort(), fleetYaml, mode, ledger });
    try {
      await fleet.waitAllReady(60_000);
    } catch (error) {
      throw new Error(`the fleet did not become ready:\n${fleet.output()}`, { cause: error });
    }
    fleet.noteDescendants();
    return fleet;
  }

  output(): string {
    return this.#child.output();
  }

  get controllerProcessRunning(): boolean {
    return this.#child.running;
  }

  /** Remember `pid` as this fleet's (and in the bench's ledger). */
  #note(pid: number): void {
    this.#ledger.note(pid);
    const id = identify(pid);
    if (id.startTime !== null) this.#own.set(`${id.pid}:${id.startTime}`, id);
  }

  /** `GET /v1/status`; every pid it shows is remembered for the final sweep. */
  async status(): Promise<StatusDocument> {
    if (!this.#child.running) throw new Error(`the controller exited:\n${this.output()}`);
    const status = await this.#api.get<StatusDocument>("/v1/status");
    this.#note(status.controller.pid);
    for (const instance of status.services.flatMap((s) => s.instances)) {
      if (instance.pid !== null) this.#note(instance.pid);
    }
    return status;
  }

  async waitAllReady(timeoutMs = 30_000): Promise<StatusDocument> {
    return await waitFor(
      async () => {
        const status = await this.status();
        const instances = status.services.flatMap((s) => s.instances);
        return instances.length === REPLICAS && instances.every((i) => i.state === "ready") ? status : null;
      },
      { timeoutMs, intervalMs: 50, what: `${REPLICAS} ready instances` },
    );
  }

  /**
   * Wait until every instance is ready and `name` is rested (no failure on record, no open
   * incident), so a trial does not measure restart backoff; returns its process.
   */
  async readyVictim(name: string): Promise<ProcessIdentity> {
    const victim = await waitFor(
      async () => {
        const instances = (await this.status()).services.flatMap((s) => s.instances);
        if (instances.length !== REPLICAS || instances.some((i) => i.state !== "ready")) return null;
        const v = instances.find((i) => i.name === name);
        return v?.pid != null && v.consecutiveFailures === 0 && v.openIncident === null ? v : null;
      },
      { timeoutMs: 60_000, intervalMs: 100, what: `${name} ready and rested` },
    );
    return identify(victim.pid!);
  }

  /** Remember every process the controller has started (instances, a data-plane process). */
  noteDescendants(): number[] {
    const pids = this.#child.running ? descendantsOf(this.#child.pid) : [];
    for (const pid of pids) this.#note(pid);
    return pids;
  }

  /** The controller's own process, as its API reports it (`controller.pid`). */
  async controllerProcess(): Promise<ProcessIdentity> {
    return identify((await this.status()).controller.pid);
  }

  /** SIGKILL the controller process only; returns the epoch ms. */
  static killController(controller: ProcessIdentity): number {
    const at = epochNow();
    if (!signalIfRunning(controller, "SIGKILL"))
      throw new Error(`controller pid ${controller.pid} was already gone`);
    return at;
  }

  /**
   * `homeostat down` (graceful) while the controller answers; then `down --state-dir`, which
   * stops what a killed controller left. Then SIGKILL whatever of this fleet still runs (other
   * fleets and proxies the bench runs are left alone).
   */
  async stop(): Promise<void> {
    this.noteDescendants();
    if (this.#child.running) {
      const down = await cli(["down", "--api-port", String(this.apiPort), "--timeout", "30"], {
        timeoutMs: 40_000,
      }).catch(() => null);
      if (down?.code !== 0) this.#child.child.kill("SIGKILL");
      await this.#child.exited;
    }
    await cli(["down", "--state-dir", this.stateDir, "--api-port", String(this.apiPort)], {
      timeoutMs: 40_000,
    }).catch(() => null);
    for (const id of this.#own.values()) signalIfRunning(id, "SIGKILL");
  }

  /** This fleet's processes still running (after `stop`: none, or the bench left one behind). */
  leftovers(): number[] {
    return [...this.#own.values()].filter(stillRunning).map((id) => id.pid);
  }
}
