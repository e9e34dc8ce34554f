/**
 * Watches the role of every data node during a trial: `ROLE` every few milliseconds on a
 * connection of its own per node (one question in flight at a time), recording each change with
 * the last sighting of the old role and the first of the new one. That brackets the moment a
 * replica was promoted and the moment a returning old primary was demoted, whichever system did
 * it, without reading any system's own account.
 */

import { Redis } from "ioredis";
import type { NodeRole, RoleChange } from "./analysis.ts";

function now(): number {
  return performance.timeOrigin + performance.now();
}

export class RoleWatch {
  readonly changes: RoleChange[] = [];
  readonly #clients: Redis[] = [];
  #running = true;
  readonly #loops: Promise<void>[] = [];

  /**
   * @param intervalMs pause between one answer and the next question
   * @param timeoutMs a node that does not answer within this is "unreachable" (SIGSTOP, dead)
   */
  constructor(ports: readonly number[], intervalMs = 5, timeoutMs = 200) {
    for (const port of ports) {
      const client = new Redis({
        host: "127.0.0.1",
        port,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        retryStrategy: () => 20,
        connectTimeout: timeoutMs,
        commandTimeout: timeoutMs,
        connectionName: "hs-bench-rolewatch",
      });
      client.on("error", () => undefined);
      this.#clients.push(client);
      this.#loops.push(this.#watch(port, client, intervalMs));
    }
  }

  async #watch(port: number, client: Redis, intervalMs: number): Promise<void> {
    let role: NodeRole | null = null;
    let lastAt: number | null = null;
    while (this.#running) {
      let seen: NodeRole;
      try {
        const reply = (await client.call("ROLE")) as unknown[];
        seen = reply[0] === "master" ? "master" : "slave";
      } catch {
        seen = "unreachable";
      }
      const at = now();
      if (seen !== role) this.changes.push({ port, from: role, to: seen, lastBeforeAt: lastAt, firstAt: at });
      role = seen;
      lastAt = at;
      // Pacing between polls: the point is to let time pass.
      await new Promise((resolve) => setTimeout(resolve, seen === "unreachable" ? 20 : intervalMs));
    }
  }

  async stop(): Promise<RoleChange[]> {
    this.#running = false;
    await Promise.all(this.#loops);
    for (const client of this.#clients) client.disconnect();
    return this.changes;
  }
}
