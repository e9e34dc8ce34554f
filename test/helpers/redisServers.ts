/**
 * Real redis-server processes for tests: each on a free port with a temporary directory, stopped
 * (SIGKILL to its process group) and removed by `stopAll`, which tests call in `after`/`finally`
 * so nothing survives a failure.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { exchange } from "../../src/stateful/redis/redisClient.ts";
import { freePort } from "./e2e.ts";
import { waitFor } from "./waitFor.ts";

export interface RedisServer {
  port: number;
  process: ChildProcess;
  dir: string;
}

export class RedisServers {
  readonly #servers: RedisServer[] = [];

  /** Starts `redis-server` on a free port (extra `--key value` args after) and waits for PONG. */
  async start(extra: string[] = []): Promise<RedisServer> {
    const port = await freePort();
    const dir = mkdtempSync(path.join(tmpdir(), "hs-redis-"));
    const child = spawn(
      "redis-server",
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        dir,
        "--save",
        "",
        "--appendonly",
        "no",
        ...extra,
      ],
      { detached: true, stdio: "ignore" },
    );
    const server = { port, process: child, dir };
    this.#servers.push(server);
    await waitFor(async () => (await exchange(port, [["PING"]], 500))[0] === "PONG", {
      what: `redis-server on ${port}`,
    });
    return server;
  }

  /** SIGKILL every server's process group and remove its directory. */
  stopAll(): void {
    for (const server of this.#servers.splice(0)) {
      try {
        if (server.process.pid !== undefined) process.kill(-server.process.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
      rmSync(server.dir, { recursive: true, force: true });
    }
  }
}
