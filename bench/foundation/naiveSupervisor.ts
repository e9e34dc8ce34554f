/**
 * The baseline: what a plain process supervisor does (systemd `Restart=always`, `RestartSec=100ms`).
 * It starts N copies of a command, restarts each one 100 ms after it exits, and knows nothing
 * else: no probes, so a process that is alive but hung looks fine to it forever.
 *
 * Run as its own process by the bench:
 *
 *   node bench/foundation/naiveSupervisor.ts --app examples/app/server.ts --ports 21000,21001,21002
 *
 * It prints one JSON line per lifecycle event on stdout (`spawned`, `exited`), stops its
 * children and exits on SIGTERM/SIGINT or when its stdin closes (the bench died).
 */

import { type ChildProcess, spawn } from "node:child_process";
import { parseArgs } from "node:util";

/** A lifecycle event, one JSON line on stdout. `at` is epoch ms. */
export type NaiveEvent =
  | { event: "spawned"; slot: number; port: number; pid: number; at: number }
  | {
      event: "exited";
      slot: number;
      port: number;
      pid: number;
      at: number;
      code: number | null;
      signal: string | null;
    };

export interface NaiveSupervisorOptions {
  /** Node executable that runs the app. */
  node: string;
  /** Path of the demo app's server.ts. */
  app: string;
  /** One instance per port, on 127.0.0.1. */
  ports: number[];
  /** Delay between an exit and the restart (systemd's RestartSec). */
  restartDelayMs: number;
  onEvent: (event: NaiveEvent) => void;
}

/** Keeps one process per port running by restarting it after it exits. */
export class NaiveSupervisor {
  readonly #options: NaiveSupervisorOptions;
  readonly #children = new Map<number, ChildProcess>();
  readonly #pendingRestarts = new Set<NodeJS.Timeout>();
  #stopping = false;

  constructor(options: NaiveSupervisorOptions) {
    this.#options = options;
  }

  start(): void {
    this.#options.ports.forEach((port, slot) => {
      this.#spawn(slot, port);
    });
  }

  /** Stop restarting, SIGKILL every child, resolve once they have all exited. */
  async stop(): Promise<void> {
    this.#stopping = true;
    for (const timer of this.#pendingRestarts) clearTimeout(timer);
    this.#pendingRestarts.clear();
    const exits = [...this.#children.values()].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once("exit", () => resolve());
          child.kill("SIGKILL");
        }),
    );
    await Promise.all(exits);
  }

  #spawn(slot: number, port: number): void {
    const { node, app } = this.#options;
    const child = spawn(node, [app, "--port", String(port), "--name", `naive-${slot}`], {
      stdio: "ignore",
    });
    this.#children.set(slot, child);
    const pid = child.pid;
    if (pid !== undefined) this.#options.onEvent({ event: "spawned", slot, port, pid, at: Date.now() });
    child.once("exit", (code, signal) => {
      this.#options.onEvent({ event: "exited", slot, port, pid: pid ?? -1, at: Date.now(), code, signal });
      if (this.#stopping) return;
      const timer = setTimeout(() => {
        this.#pendingRestarts.delete(timer);
        if (!this.#stopping) this.#spawn(slot, port);
      }, this.#options.restartDelayMs);
      this.#pendingRestarts.add(timer);
    });
    // A spawn failure is followed by `exit` only sometimes; without a listener it would throw.
    child.once("error", () => undefined);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      app: { type: "string" },
      ports: { type: "string" },
      "restart-ms": { type: "string", default: "100" },
    },
    strict: true,
  });
  const ports = (values.ports ?? "").split(",").filter(Boolean).map(Number);
  const restartDelayMs = Number(values["restart-ms"]);
  if (values.app === undefined || ports.length === 0 || ports.some((p) => !Number.isInteger(p))) {
    process.stderr.write("usage: naiveSupervisor.ts --app SERVER_TS --ports P1,P2,... [--restart-ms N]\n");
    process.exit(2);
  }
  const supervisor = new NaiveSupervisor({
    node: process.execPath,
    app: values.app,
    ports,
    restartDelayMs,
    onEvent: (event) => process.stdout.write(`${JSON.stringify(event)}\n`),
  });
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void supervisor.stop().then(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  // The bench holds our stdin open; its end means the bench is gone and nobody will stop us.
  process.stdin.on("end", stop);
  process.stdin.resume();
  supervisor.start();
}

if (import.meta.main) await main();
