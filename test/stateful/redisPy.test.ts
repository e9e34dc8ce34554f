/**
 * redis-py (Debian's python3-redis; `.ci/run` installs it) finds the primary through Homeostat's
 * Sentinel-compatible port unchanged: `Sentinel([...]).master_for(NAME)` writes and reads, and after
 * kill -9 of the primary the same Sentinel object writes again, on the promoted member. Both
 * `announce` modes: the endpoint (the default) and the primary member's own address. The client is
 * a small script (fixtures/redis_py_sentinel.py) driven over stdin/stdout, so the failover meets the
 * objects an application holds. Skipped, saying why, only when python3 or its redis module is
 * missing outside CI; in CI (`CI` set, as `.ci/run` does) a missing one fails the test.
 */

import assert from "node:assert/strict";
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from "node:child_process";
import { createInterface } from "node:readline";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { startStore } from "../helpers/redisStoreHarness.ts";
import { waitFor } from "../helpers/waitFor.ts";

const SCRIPT = fileURLToPath(new URL("./fixtures/redis_py_sentinel.py", import.meta.url));

/**
 * The first python3 that imports redis.sentinel: the one on PATH, else Debian's (a pyenv or venv
 * python3 on PATH does not see Debian's python3-redis). Else why the test cannot run.
 */
function findPython(): { python: string } | { skip: string } {
  const tried: string[] = [];
  for (const python of ["python3", "/usr/bin/python3"]) {
    const probe = spawnSync(python, ["-c", "import redis.sentinel"], { encoding: "utf8" });
    if (probe.status === 0) return { python };
    tried.push(
      probe.error !== undefined
        ? `${python}: not found`
        : `${python}: ${probe.stderr.trim().split("\n").pop() ?? `exit ${probe.status}`}`,
    );
  }
  return { skip: `redis-py is not available (${tried.join("; ")}): apt-get install -y python3-redis` };
}

const found = findPython();
const inCi = process.env.CI !== undefined && process.env.CI !== "" && process.env.CI !== "false";
const skip = "skip" in found && !inCi ? found.skip : false;
const python = "python" in found ? found.python : "python3";

interface Answer {
  ok: boolean;
  error?: string;
  [field: string]: unknown;
}

/** The script, one request and one answer at a time. */
class RedisPy {
  readonly child: ChildProcessWithoutNullStreams;
  readonly #lines: string[] = [];
  #stderr = "";
  #exited = false;

  constructor(sentinelPort: number, name: string) {
    this.child = spawn(python, [SCRIPT, String(sentinelPort), name], { stdio: "pipe" });
    this.child.stderr.on("data", (chunk: Buffer) => {
      this.#stderr += chunk.toString();
    });
    this.child.on("exit", () => {
      this.#exited = true;
    });
    createInterface({ input: this.child.stdout }).on("line", (line) => this.#lines.push(line));
  }

  async #next(what: string): Promise<Answer> {
    const line = await waitFor(() => this.#lines.shift() ?? (this.#exited ? "" : undefined), {
      what: `redis-py: ${what}`,
    });
    if (line === "") throw new Error(`redis-py exited: ${this.#stderr}`);
    return JSON.parse(line) as Answer;
  }

  ready(): Promise<Answer> {
    return this.#next("ready");
  }

  request(request: Record<string, unknown>): Promise<Answer> {
    this.child.stdin.write(`${JSON.stringify(request)}\n`);
    return this.#next(JSON.stringify(request));
  }

  close(): void {
    this.child.stdin.end();
    this.child.kill("SIGKILL");
  }
}

for (const announce of ["endpoint", "primary"] as const) {
  test(`redis-py's Sentinel (announce: ${announce}) writes and reads, then writes again through the same Sentinel object after kill -9 of the primary`, {
    skip,
  }, async () => {
    const h = await startStore("", { announce });
    const py = new RedisPy(h.spec.sentinel!.port, "cache");
    try {
      console.log(`redis-py ${(await py.ready()).redisPy} (${python})`);
      const portOf = (member: string) => (announce === "endpoint" ? h.spec.port : h.portOf(member));
      const before = await py.request({ op: "discover" });
      assert.deepEqual(before.master, ["127.0.0.1", portOf("cache-0")], JSON.stringify(before));
      assert.deepEqual(
        (before.replicas as [string, number][]).map(([, port]) => port).sort(),
        [h.portOf("cache-1"), h.portOf("cache-2")].sort(),
        "the replicas, by their own addresses",
      );
      const written = await py.request({ op: "set", key: "before", value: "1", replicas: 2 });
      assert.deepEqual(written, { ok: true, set: true, replicasAcked: 2 });
      assert.deepEqual(await py.request({ op: "get", key: "before" }), { ok: true, value: "1" });
      assert.deepEqual(
        await waitFor(
          async () => {
            const read = await py.request({ op: "get-replica", key: "before" });
            return read.value === "1" ? read : null;
          },
          { what: "the value read from a replica" },
        ),
        { ok: true, value: "1" },
      );

      process.kill(h.pidOf("cache-0"), "SIGKILL");
      // The first tries fail (a closed connection, no primary while it is promoted): the same
      // Sentinel object is asked again until it writes, as an application's retry would.
      const errors: string[] = [];
      await waitFor(
        async () => {
          const answer = await py.request({ op: "set", key: "after", value: "2" });
          if (!answer.ok) errors.push(String(answer.error));
          return answer.ok;
        },
        { what: "redis-py writing after the failover", timeoutMs: 10_000, intervalMs: 50 },
      );
      const promoted = h.status().primary;
      assert.notEqual(promoted, "cache-0");
      assert.equal(h.status().epoch, 2);
      const after = await py.request({ op: "discover" });
      assert.deepEqual(after.master, ["127.0.0.1", portOf(promoted)], JSON.stringify(after));
      assert.deepEqual(await py.request({ op: "get", key: "before" }), { ok: true, value: "1" });
      assert.deepEqual(await py.request({ op: "get", key: "after" }), { ok: true, value: "2" });
      console.log(
        `announce ${announce}: ${errors.length} failed tries before the write on ${promoted}: ${[...new Set(errors)].join(" | ")}`,
      );
    } finally {
      py.close();
      await h.close();
    }
  });
}
