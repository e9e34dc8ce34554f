/**
 * The bench's side of the writer process (writer.ts): spawn it, start and stop its writes, read
 * its records.
 */

import { type ChildProcess, fork } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ProcessLedger } from "../foundation/processes.ts";
import type { WriteRecord } from "./analysis.ts";
import type { WriterConfig, WriterMessage, WriterReply } from "./writerProtocol.ts";

const WRITER = join(import.meta.dirname, "writer.ts");

export interface WriterRun {
  startedAt: number;
  stoppedAt: number;
  unresolvedAtStop: number;
  eventLoopDelayMs: { p50: number; p99: number; max: number };
  connectionEvents: { at: number; event: string; detail?: string }[];
  records: WriteRecord[];
}

export class WriterProcess {
  readonly #child: ChildProcess;
  readonly #config: WriterConfig;
  readonly #exited: Promise<void>;
  #stderr = "";

  private constructor(config: WriterConfig, ledger: ProcessLedger) {
    this.#config = config;
    this.#child = fork(WRITER, [], {
      env: { ...process.env, HS_REDIS_WRITER: JSON.stringify(config) },
      stdio: ["ignore", "ignore", "pipe", "ipc"],
    });
    if (this.#child.pid !== undefined) ledger.note(this.#child.pid);
    this.#child.stderr?.on("data", (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString()).slice(-4_000);
    });
    this.#exited = new Promise((resolve) => this.#child.once("exit", () => resolve()));
  }

  /** Spawn a writer and wait until its client is connected (ready). */
  static async start(
    config: WriterConfig,
    ledger: ProcessLedger,
    timeoutMs = 15_000,
  ): Promise<WriterProcess> {
    const writer = new WriterProcess(config, ledger);
    try {
      await writer.#reply("ready", timeoutMs);
    } catch (error) {
      writer.kill();
      throw error;
    }
    return writer;
  }

  #reply<T extends WriterReply["type"]>(
    type: T,
    timeoutMs: number,
  ): Promise<Extract<WriterReply, { type: T }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`the writer did not say ${type} within ${timeoutMs} ms: ${this.#stderr}`));
      }, timeoutMs);
      const onMessage = (message: WriterReply) => {
        if (message.type !== type) return;
        cleanup();
        resolve(message as Extract<WriterReply, { type: T }>);
      };
      const onExit = () => {
        cleanup();
        reject(new Error(`the writer exited before saying ${type}: ${this.#stderr}`));
      };
      const cleanup = () => {
        clearTimeout(timer);
        this.#child.off("message", onMessage);
        this.#child.off("exit", onExit);
      };
      this.#child.on("message", onMessage);
      this.#child.once("exit", onExit);
    });
  }

  #send(message: WriterMessage): void {
    this.#child.send(message);
  }

  /** Start writing; returns the epoch ms of the first write's due time. */
  async begin(): Promise<number> {
    const reply = this.#reply("started", 5_000);
    this.#send({ type: "start" });
    return (await reply).startedAt;
  }

  /** Stop writing, wait for the writes in flight (up to `settleMs`), and read every record. */
  async end(settleMs: number): Promise<WriterRun> {
    const reply = this.#reply("stopped", settleMs + 15_000);
    this.#send({ type: "stop", settleMs });
    await reply;
    const run = JSON.parse(readFileSync(this.#config.recordsFile, "utf8")) as WriterRun;
    this.#child.disconnect();
    await Promise.race([this.#exited, new Promise((r) => setTimeout(r, 2_000))]);
    this.kill();
    return run;
  }

  kill(): void {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill("SIGKILL");
  }
}
