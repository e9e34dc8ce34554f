/**
 * The bench's handle on the naive supervisor process: starts it, follows its event lines to know
 * which pid serves which slot, and stops it (and every process it ever started).
 */

import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { APP } from "../../test/helpers/e2e.ts";
import { waitFor } from "../../test/helpers/waitFor.ts";
import { answersReady } from "./httpCheck.ts";
import type { NaiveEvent } from "./naiveSupervisor.ts";
import { identify, type ProcessIdentity, type ProcessLedger } from "./processes.ts";

const SUPERVISOR = join(dirname(fileURLToPath(import.meta.url)), "naiveSupervisor.ts");

/** Slot `slot`'s current process as the supervisor reported it. */
export interface NaiveInstance {
  slot: number;
  port: number;
  process: ProcessIdentity;
  spawnedAt: number;
}

export class NaiveFleet {
  readonly ports: number[];
  readonly events: NaiveEvent[] = [];
  readonly #child: ChildProcess;
  readonly #ledger: ProcessLedger;
  readonly #current = new Map<number, NaiveInstance>();
  readonly #exited: Promise<void>;

  private constructor(ports: number[], restartDelayMs: number, ledger: ProcessLedger) {
    this.ports = ports;
    this.#ledger = ledger;
    this.#child = spawn(
      process.execPath,
      [SUPERVISOR, "--app", APP, "--ports", ports.join(","), "--restart-ms", String(restartDelayMs)],
      { stdio: ["pipe", "pipe", "inherit"] },
    );
    if (this.#child.pid !== undefined) ledger.note(this.#child.pid);
    this.#exited = new Promise((resolve) => this.#child.once("exit", () => resolve()));
    createInterface({ input: this.#child.stdout! }).on("line", (line) => this.#onLine(line));
  }

  /** Start the supervisor with one instance per port and wait until each answers `/ready`. */
  static async start(options: {
    ports: number[];
    restartDelayMs: number;
    ledger: ProcessLedger;
  }): Promise<NaiveFleet> {
    const fleet = new NaiveFleet(options.ports, options.restartDelayMs, options.ledger);
    await fleet.waitAllReady(30_000);
    return fleet;
  }

  /** The process currently serving `slot`, or null before its first spawn. */
  instance(slot: number): NaiveInstance | null {
    return this.#current.get(slot) ?? null;
  }

  /** Wait until every slot has a process that answers `GET /ready` with 200. */
  async waitAllReady(timeoutMs: number): Promise<void> {
    await waitFor(
      async () => {
        for (let slot = 0; slot < this.ports.length; slot++) {
          const instance = this.#current.get(slot);
          if (instance === undefined || !(await answersReady(instance.port))) return false;
        }
        return true;
      },
      { timeoutMs, intervalMs: 20, what: "every naive instance answering /ready" },
    );
  }

  /** Stop the supervisor (it SIGKILLs its children), then sweep anything it left behind. */
  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.kill("SIGTERM");
      const gone = await Promise.race([
        this.#exited.then(() => true),
        new Promise<false>((resolve) => setTimeout(() => resolve(false), 5_000).unref()),
      ]);
      if (!gone) this.#child.kill("SIGKILL");
    }
    this.#ledger.sweep();
  }

  #onLine(line: string): void {
    let event: NaiveEvent;
    try {
      event = JSON.parse(line) as NaiveEvent;
    } catch {
      return;
    }
    this.events.push(event);
    if (event.event === "spawned") {
      this.#ledger.note(event.pid);
      this.#current.set(event.slot, {
        slot: event.slot,
        port: event.port,
        process: identify(event.pid),
        spawnedAt: event.at,
      });
    }
  }
}
