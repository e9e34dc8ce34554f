/**
 * A process the bench starts (upstream, proxy, load generator): its output kept for error
 * messages, its pid in the ledger, and a stop that cannot leave it behind.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { createConnection } from "node:net";
import { createInterface } from "node:readline";
import { waitFor } from "../../test/helpers/waitFor.ts";
import type { ProcessLedger } from "../foundation/processes.ts";

const LINES_KEPT = 100;

export class Child {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly #lines: string[] = [];
  readonly #listeners: ((line: string, stream: "stdout" | "stderr") => void)[] = [];

  constructor(
    name: string,
    command: string,
    args: readonly string[],
    options: { ledger: ProcessLedger; cwd?: string; env?: NodeJS.ProcessEnv },
  ) {
    this.name = name;
    this.child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    if (this.child.pid !== undefined) options.ledger.note(this.child.pid);
    this.exited = new Promise((resolve) =>
      this.child.once("exit", (code, signal) => resolve({ code, signal })),
    );
    // A failed spawn (ENOENT) shows as an exit with no pid.
    this.child.once("error", () => undefined);
    for (const stream of ["stdout", "stderr"] as const) {
      createInterface({ input: this.child[stream]! }).on("line", (line) => {
        this.#lines.push(line);
        if (this.#lines.length > LINES_KEPT) this.#lines.shift();
        for (const listener of this.#listeners) listener(line, stream);
      });
    }
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.name} did not start`);
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Called with every line the process writes from now on. */
  onLine(listener: (line: string, stream: "stdout" | "stderr") => void): void {
    this.#listeners.push(listener);
  }

  /** The next line `match` accepts, or null after `timeoutMs`. */
  nextLine(match: (line: string) => boolean, timeoutMs: number): Promise<string | null> {
    return new Promise((resolve) => {
      const listener = (line: string): void => {
        if (!match(line)) return;
        done(line);
      };
      const done = (line: string | null): void => {
        clearTimeout(timer);
        const at = this.#listeners.indexOf(listener);
        if (at >= 0) this.#listeners.splice(at, 1);
        resolve(line);
      };
      const timer = setTimeout(() => done(null), timeoutMs);
      this.#listeners.push(listener);
    });
  }

  output(): string {
    return this.#lines.join("\n");
  }

  /** Wait until `port` on 127.0.0.1 accepts connections; fails early if the process exits. */
  async waitListening(port: number, timeoutMs = 20_000): Promise<void> {
    await waitFor(
      async () => {
        if (!this.running) throw new Error(`${this.name} exited:\n${this.output()}`);
        return await accepts(port);
      },
      { timeoutMs, intervalMs: 20, what: `${this.name} listening on ${port}` },
    ).catch((error: unknown) => {
      throw new Error(`${this.name} did not listen on ${port}:\n${this.output()}`, { cause: error });
    });
  }

  /** SIGTERM, then SIGKILL if it is still there after `graceMs`. */
  async stop(graceMs = 3_000): Promise<void> {
    if (!this.running) return;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** True when a TCP connection to 127.0.0.1:`port` is accepted. */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
