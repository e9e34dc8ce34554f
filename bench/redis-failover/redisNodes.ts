/**
 * Real redis-server processes for the bench (Debian's /usr/bin/redis-server), each on a free
 * loopback port with its config, data and log in the bench's temp dir, remembered by the ledger so
 * that none outlives the bench. Also the small Redis conversations the bench itself has with a
 * node: its role, its replication offsets, the highest sequence number a replica holds.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Redis } from "ioredis";
import { waitFor } from "../../test/helpers/waitFor.ts";
import {
  identify,
  type ProcessIdentity,
  type ProcessLedger,
  signalIfRunning,
} from "../foundation/processes.ts";

export const REDIS_SERVER = "/usr/bin/redis-server";

/** A redis-server (or `redis-server --sentinel`) the bench started. */
export class RedisProcess {
  readonly name: string;
  readonly port: number;
  readonly dir: string;
  readonly configFile: string;
  readonly logFile: string;
  readonly #sentinel: boolean;
  readonly #ledger: ProcessLedger;
  #child: ChildProcess | null = null;
  #id: ProcessIdentity | null = null;

  constructor(options: {
    name: string;
    port: number;
    dir: string;
    config: string;
    sentinel?: boolean;
    ledger: ProcessLedger;
  }) {
    this.name = options.name;
    this.port = options.port;
    this.dir = options.dir;
    this.#sentinel = options.sentinel ?? false;
    this.#ledger = options.ledger;
    mkdirSync(this.dir, { recursive: true });
    this.configFile = join(this.dir, this.#sentinel ? "sentinel.conf" : "redis.conf");
    this.logFile = join(this.dir, "server.log");
    writeFileSync(this.configFile, options.config);
  }

  get pid(): number | null {
    return this.#id?.pid ?? null;
  }

  /** Start it (its config as last written, or rewritten by Sentinel) and wait until it answers PING. */
  async start(): Promise<void> {
    const args = this.#sentinel ? [this.configFile, "--sentinel"] : [this.configFile];
    const child = spawn(REDIS_SERVER, args, { cwd: this.dir, stdio: "ignore" });
    this.#child = child;
    if (child.pid === undefined) throw new Error(`${this.name}: redis-server did not start`);
    this.#ledger.note(child.pid);
    this.#id = identify(child.pid);
    await waitFor(
      async () => (await ping(this.port)) || (this.exited() ? Promise.reject(this.#died()) : null),
      {
        timeoutMs: 15_000,
        intervalMs: 20,
        what: `${this.name} answering PING on ${this.port}`,
      },
    );
  }

  #died(): Error {
    return new Error(`${this.name} exited: ${this.logTail()}`);
  }

  exited(): boolean {
    return this.#child === null || this.#child.exitCode !== null || this.#child.signalCode !== null;
  }

  running(): boolean {
    return this.#id !== null && !this.exited();
  }

  logTail(lines = 20): string {
    if (!existsSync(this.logFile)) return "(no log)";
    return readFileSync(this.logFile, "utf8").trim().split("\n").slice(-lines).join("\n");
  }

  /** Send `signal` if it is still the process started. */
  signal(signal: NodeJS.Signals): boolean {
    return this.#id !== null && signalIfRunning(this.#id, signal);
  }

  /** SIGKILL and wait for the exit. */
  async kill(): Promise<void> {
    if (this.#child === null || this.exited()) return;
    const exited = new Promise((resolve) => this.#child!.once("exit", resolve));
    this.signal("SIGCONT");
    this.signal("SIGKILL");
    await exited;
  }
}

/** A short-lived connection for the bench's own questions: never queues, never retries. */
export function probeClient(port: number, timeoutMs = 1_000): Redis {
  const client = new Redis({
    host: "127.0.0.1",
    port,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    connectionName: "hs-bench-probe",
  });
  client.on("error", () => undefined);
  return client;
}

/** Run `ask` on a fresh connection to `port`, then close it. */
export async function withClient<T>(
  port: number,
  ask: (client: Redis) => Promise<T>,
  timeoutMs = 1_000,
): Promise<T> {
  const client = probeClient(port, timeoutMs);
  try {
    await client.connect();
    return await ask(client);
  } finally {
    client.disconnect();
  }
}

export async function ping(port: number): Promise<boolean> {
  try {
    return (await withClient(port, (c) => c.ping(), 500)) === "PONG";
  } catch {
    return false;
  }
}

/** `INFO replication` as key → value. */
export async function replicationInfo(port: number): Promise<Record<string, string>> {
  return parseInfo(await withClient(port, (c) => c.info("replication")));
}

export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const k = line.indexOf(":");
    if (k > 0 && !line.startsWith("#")) out[line.slice(0, k)] = line.slice(k + 1);
  }
  return out;
}

/** The node's replication state, as `ROLE` says. */
export interface NodeState {
  port: number;
  role: "master" | "slave";
  /** A replica: the primary it follows (port) and whether its link is up. */
  masterPort: number | null;
  linkUp: boolean;
  /** Its replication offset. */
  offset: number;
}

export async function nodeState(port: number): Promise<NodeState> {
  const info = await replicationInfo(port);
  const role = info.role === "master" ? "master" : "slave";
  return {
    port,
    role,
    masterPort: role === "slave" ? Number(info.master_port) : null,
    linkUp: role === "slave" && info.master_link_status === "up",
    offset: Number(info.master_repl_offset ?? Number.NaN),
  };
}

/**
 * One primary and every other node a replica of it, link up, at the primary's offset: the state
 * each trial starts from and every trial's end waits for. Null while it does not hold.
 */
export async function settledTopology(
  ports: readonly number[],
): Promise<{ primary: number; states: NodeState[] } | null> {
  const states = await Promise.all(ports.map((p) => nodeState(p).catch(() => null)));
  if (states.some((s) => s === null)) return null;
  const all = states as NodeState[];
  const masters = all.filter((s) => s.role === "master");
  if (masters.length !== 1) return null;
  const primary = masters[0]!;
  const replicas = all.filter((s) => s.role === "slave");
  const followAll = replicas.every(
    (r) => r.masterPort === primary.port && r.linkUp && r.offset === primary.offset,
  );
  return followAll ? { primary: primary.port, states: all } : null;
}

/**
 * The highest sequence number `port` holds under `prefix`, by binary search over EXISTS between 0
 * and `upTo`: replication applies one client's writes in order, so a node holds every write up to
 * its highest. Null when it holds none (or cannot be asked).
 */
export async function highestSeq(port: number, prefix: string, upTo: number): Promise<number | null> {
  try {
    return await withClient(
      port,
      async (c) => {
        if ((await c.exists(`${prefix}0`)) === 0) return null;
        let lo = 0; // held
        let hi = upTo + 1; // not held (or past the end)
        while (hi - lo > 1) {
          const mid = Math.floor((lo + hi) / 2);
          if ((await c.exists(`${prefix}${mid}`)) === 1) lo = mid;
          else hi = mid;
        }
        return lo;
      },
      500,
    );
  } catch {
    return null;
  }
}

/**
 * Which of `seqs` are on the node behind `client`, with the value the writer wrote (MGET in
 * batches).
 */
export async function presentSeqs(
  client: Redis,
  prefix: string,
  seqs: readonly number[],
): Promise<Set<number>> {
  const present = new Set<number>();
  for (let i = 0; i < seqs.length; i += 1_000) {
    const batch = seqs.slice(i, i + 1_000);
    const values = await client.mget(batch.map((s) => `${prefix}${s}`));
    batch.forEach((seq, k) => {
      if (values[k] === String(seq)) present.add(seq);
    });
  }
  return present;
}
