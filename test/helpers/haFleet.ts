/**
 * Several controllers of one fleet on a real PostgreSQL store (issue 15, items 1–3): the HA tests
 * (test/e2e/ha*.test.ts) and the takeover bench (bench/ha/) start them with `homeostat up FILE
 * --store postgres://…?schema=… --lease-ttl T --api-port N --state-dir DIR` — one state directory
 * shared by all (the data plane's socket and the instance logs live there, as on one machine), an
 * API port each — kill or stop the leader, and read what happened from the store itself (the
 * lease, the journal with its fencing tokens, the events every leader wrote), from the data plane
 * (asked through its own feed socket) and from the processes (/proc and the instance logs the
 * driver writes). Everything it started is killed and the schema dropped by `cleanup`, even when a
 * test fails half-way.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { inspectDataPlane } from "../../src/dataplane/inspect.ts";
import { BIN, freePort, freePortRange, NODE, processesUnder, type Sandbox, sandbox } from "./e2e.ts";
import { TEST_PG_URL } from "./postgres.ts";
import { waitFor } from "./waitFor.ts";

/** One `homeostat up` of the fleet. */
export interface HaController {
  /** 0, 1, 2… in the order they were started. */
  index: number;
  apiPort: number;
  child: ChildProcess;
  pid: number;
  /** What it printed (stdout and stderr). */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Still running (not exited; a SIGSTOPped one is running). */
  running(): boolean;
}

/** The lease row (src/store/leadership.ts) as the store holds it. */
export interface LeaseRow {
  holder: string;
  token: number;
  expiresAt: number;
  acquiredAt: number;
  renewedAt: number;
  pid: number;
  apiUrl: string | null;
}

/** A journal entry as the store holds it, with the fencing token of the leader that wrote it. */
export interface JournalRow {
  id: number;
  at: number;
  action: string;
  target: string;
  reason: string;
  data: Record<string, unknown> | null;
  result: { at: number; ok: boolean; detail: string } | null;
  token: number | null;
}

/** An event as the store holds it. */
export interface EventRow {
  seq: number;
  at: number;
  type: string;
  service: string | null;
  instance: string | null;
  reason: string;
  message: string;
  data: Record<string, unknown> | null;
}

/** A line the local driver wrote to an instance's log: a process it started, adopted, or saw end. */
export interface DriverLine {
  at: number;
  kind: "start" | "adopted" | "exit";
  instance: string;
  pid: number;
}

/** What a takeover took, every instant in epoch ms on this machine's clock (the store's is the same). */
export interface Takeover {
  /** The leader that was killed or stopped, and its token. */
  from: HaController;
  fromToken: number;
  /** The controller that leads now, and its token. */
  to: HaController;
  token: number;
  /** When the signal was sent. */
  faultAt: number;
  /** The old lease as read right after the fault (its last renewal). */
  oldLease: LeaseRow;
  /** The new lease as granted: `acquiredAt` is the store's clock at the claim. */
  newLease: LeaseRow;
  /** The new leader's `leader.elected` event. */
  electedAt: number;
  /** When the data plane first said it takes orders from the new token (polled through its socket). */
  attachedAt: number | null;
}

export interface HaFleetOptions {
  /** Fleet file for the instance ports from `basePort` and the front port `port`. */
  yaml: (basePort: number, port: number) => string;
  /** Instance ports to reserve (2 × replicas: both banks). */
  slots: number;
  /** Lease TTL (`--lease-ttl`); renewals every TTL/5. */
  ttlMs: number;
}

/** Statuses through the API: the fields read here. */
export interface HaStatus {
  controller: { pid: number };
  leadership?: {
    role: string;
    token: number;
    holder: string;
    expiresAt: number | null;
    ttlMs: number | null;
  };
  dataPlane?: { pid: number | null; connected: boolean; appliedVersion: number };
  services: {
    name: string;
    instances: { name: string; state: string; pid: number | null; release: string | null }[];
  }[];
}

export class HaFleet {
  readonly box: Sandbox;
  readonly file: string;
  /** The service's front port (the data plane's). */
  readonly port: number;
  readonly storeUrl: string;
  readonly schema: string;
  readonly ttlMs: number;
  readonly controllers: HaController[] = [];
  readonly #db: pg.Client;

  private constructor(o: {
    box: Sandbox;
    file: string;
    port: number;
    storeUrl: string;
    schema: string;
    ttlMs: number;
    db: pg.Client;
  }) {
    this.box = o.box;
    this.file = o.file;
    this.port = o.port;
    this.storeUrl = o.storeUrl;
    this.schema = o.schema;
    this.ttlMs = o.ttlMs;
    this.#db = o.db;
  }

  /** A fleet file in a new sandbox and a fresh schema; no controller yet (see `spawn`). */
  static async create(o: HaFleetOptions, prefix = "homeostat-ha-"): Promise<HaFleet> {
    const box = await sandbox(prefix);
    const schema = `hs_ha_${randomBytes(6).toString("hex")}`;
    const url = new URL(TEST_PG_URL);
    url.searchParams.set("schema", schema);
    const db = new pg.Client({ connectionString: TEST_PG_URL });
    await db.connect();
    const port = await freePort();
    const basePort = await freePortRange(o.slots);
    const file = box.file("fleet.yaml", o.yaml(basePort, port));
    return new HaFleet({ box, file, port, storeUrl: url.toString(), schema, ttlMs: o.ttlMs, db });
  }

  /** TTL/5: how often the leader renews and followers claim (src/cli/commands/up.ts). */
  get renewEveryMs(): number {
    return this.ttlMs / 5;
  }

  /** Start one more controller (`env` adds to its environment). It leads or follows, as the lease says. */
  async spawn(env: Record<string, string> = {}): Promise<HaController> {
    let apiPort = this.box.apiPort;
    while (this.controllers.some((c) => c.apiPort === apiPort)) apiPort = await freePort();
    const index = this.controllers.length;
    const child = spawn(
      NODE,
      [
        BIN,
        "up",
        this.file,
        "--store",
        this.storeUrl,
        "--lease-ttl",
        `${this.ttlMs}ms`,
        "--api-port",
        String(apiPort),
        "--state-dir",
        this.box.stateDir,
        "--quiet",
      ],
      {
        cwd: this.box.dir,
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, HOMEOSTAT_CONFIG_DIR: this.box.configDir, ...env },
      },
    );
    let output = "";
    child.stdout?.on("data", (d: Buffer) => {
      output += d.toString();
    });
    child.stderr?.on("data", (d: Buffer) => {
      output += d.toString();
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on("exit", (code, signal) => resolve({ code, signal })),
    );
    const controller: HaController = {
      index,
      apiPort,
      child,
      pid: child.pid ?? -1,
      output: () => output,
      exited,
      running: () => child.exitCode === null && child.signalCode === null,
    };
    this.controllers.push(controller);
    return controller;
  }

  /** Wait until `controller` holds the lease and its API answers as the leader. */
  async leading(controller: HaController, timeoutMs = 60_000): Promise<LeaseRow> {
    return await this.telling(() =>
      waitFor(
        async () => {
          if (!controller.running()) throw new Error(`controller #${controller.index} exited`);
          const lease = await this.lease();
          if (lease?.pid !== controller.pid) return null;
          const status = await this.get<HaStatus>(controller, "/v1/status");
          return status.leadership?.role === "leader" ? lease : null;
        },
        { timeoutMs, what: `controller #${controller.index} leading` },
      ),
    );
  }

  /** Wait until `controller` follows: its API answers `GET /v1/leader` as a follower of the lease's holder. */
  async following(controller: HaController, timeoutMs = 60_000): Promise<void> {
    await this.telling(() =>
      waitFor(
        async () => {
          if (!controller.running()) throw new Error(`controller #${controller.index} exited`);
          const answer = await this.get<{ role: string; leader: { pid: number } | null }>(
            controller,
            "/v1/leader",
          );
          const lease = await this.lease();
          return answer.role === "follower" && answer.leader?.pid === lease?.pid;
        },
        { timeoutMs, what: `controller #${controller.index} following` },
      ),
    );
  }

  /** The controller holding the lease (by pid), or null. */
  async leader(): Promise<HaController | null> {
    const lease = await this.lease();
    return this.controllers.find((c) => c.pid === lease?.pid && c.running()) ?? null;
  }

  /** The other running controllers. */
  followersOf(leader: HaController): HaController[] {
    return this.controllers.filter((c) => c !== leader && c.running());
  }

  // ── The store, read directly ────────────────────────────────────────────

  async lease(): Promise<LeaseRow | null> {
    const rows = await this.#query("SELECT * FROM leadership WHERE id = 1");
    const row = rows[0];
    if (row === undefined) return null;
    return {
      holder: String(row.holder),
      token: Number(row.token),
      expiresAt: Number(row.expires_at),
      acquiredAt: Number(row.acquired_at),
      renewedAt: Number(row.renewed_at),
      pid: Number(row.pid),
      apiUrl: row.api_url === null ? null : String(row.api_url),
    };
  }

  /** Every journal entry, oldest first. */
  async journal(): Promise<JournalRow[]> {
    return (await this.#query("SELECT * FROM journal ORDER BY id")).map((row) => ({
      id: Number(row.id),
      at: Number(row.at),
      action: String(row.action),
      target: String(row.target),
      reason: String(row.reason),
      data: row.data === null ? null : (JSON.parse(String(row.data)) as Record<string, unknown>),
      result:
        row.result_at === null
          ? null
          : { at: Number(row.result_at), ok: Number(row.result_ok) === 1, detail: String(row.result_detail) },
      token: row.token === null ? null : Number(row.token),
    }));
  }

  /** Events at or after `since` (epoch ms), oldest first; of `types` only when given. */
  async events(since = 0, types?: string[]): Promise<EventRow[]> {
    const rows =
      types === undefined
        ? await this.#query("SELECT * FROM events WHERE at >= $1 ORDER BY seq", [since])
        : await this.#query("SELECT * FROM events WHERE at >= $1 AND type = ANY($2) ORDER BY seq", [
            since,
            types,
          ]);
    return rows.map((row) => ({
      seq: Number(row.seq),
      at: Number(row.at),
      type: String(row.type),
      service: row.service === null ? null : String(row.service),
      instance: row.instance === null ? null : String(row.instance),
      reason: String(row.reason),
      message: String(row.message),
      data: row.data === null ? null : (JSON.parse(String(row.data)) as Record<string, unknown>),
    }));
  }

  /** The instances the store records with a live pid: name → pid. */
  async recordedPids(): Promise<Map<string, number>> {
    const rows = await this.#query("SELECT name, pid FROM instances WHERE pid IS NOT NULL");
    return new Map(rows.map((row) => [String(row.name), Number(row.pid)]));
  }

  async #query(sql: string, values: unknown[] = []): Promise<Record<string, unknown>[]> {
    // The schema is made by the first controller's migrations: nothing to read before.
    const exists = await this.#db.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [this.schema]);
    if (exists.rowCount === 0) return [];
    await this.#db.query(`SET search_path TO "${this.schema}"`);
    try {
      return (await this.#db.query(sql, values)).rows as Record<string, unknown>[];
    } catch (error) {
      // The table comes with a migration not run yet.
      if ((error as { code?: string }).code === "42P01") return [];
      throw error;
    }
  }

  // ── The API ───────────────────────────────────────────────────────────

  /** The admin token the first leader wrote to the shared state directory. */
  token(): string {
    return readFileSync(join(this.box.stateDir, "admin-token"), "utf8").trim();
  }

  /** A request to `controller`'s API with the admin token (a JSON body for changes). */
  api(controller: HaController, method: string, path: string, body?: unknown): Promise<Response> {
    const change = method !== "GET" && method !== "HEAD";
    return fetch(`http://127.0.0.1:${controller.apiPort}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.token()}`,
        ...(change ? { "content-type": "application/json" } : {}),
      },
      ...(change ? { body: JSON.stringify(body ?? {}) } : {}),
      signal: AbortSignal.timeout(10_000),
    });
  }

  /** GET through `controller`'s API; throws unless 2xx. */
  async get<T>(controller: HaController, path: string): Promise<T> {
    const response = await this.api(controller, "GET", path);
    if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
    return (await response.json()) as T;
  }

  /** The status from whoever leads now (through the leader's own API). */
  async status(): Promise<HaStatus> {
    const leader = await this.leader();
    if (leader === null) throw new Error("no controller leads");
    return await this.get<HaStatus>(leader, "/v1/status");
  }

  /**
   * Wait until exactly `count` instances are ready, the data plane is attached to the leader and
   * `also` holds of the status; with what the controllers printed when it does not come.
   */
  async steady(
    count: number,
    what: string,
    also: (status: HaStatus) => boolean | Promise<boolean> = () => true,
    timeoutMs = 60_000,
  ): Promise<HaStatus> {
    return await this.telling(() =>
      waitFor(
        async () => {
          const status = await this.status().catch(() => null);
          if (status === null) return null;
          const instances = status.services.flatMap((s) => s.instances);
          if (instances.length !== count || !instances.every((i) => i.state === "ready")) return null;
          if (status.dataPlane !== undefined && !status.dataPlane.connected) return null;
          return (await also(status)) ? status : null;
        },
        { timeoutMs, what },
      ),
    );
  }

  // ── Faults and takeovers ──────────────────────────────────────────────────

  /**
   * Send `signal` to the leader (SIGKILL, or SIGSTOP: it stays stopped until the caller continues
   * it) and wait until another controller leads: a new lease, its `leader.elected`, the data plane
   * taking its orders.
   */
  async faultLeader(signal: "SIGKILL" | "SIGSTOP", timeoutMs = 60_000): Promise<Takeover> {
    const from = await this.leader();
    if (from === null) throw new Error("no controller leads");
    const before = await this.lease();
    if (before === null) throw new Error("no lease");
    const faultAt = Date.now();
    process.kill(from.pid, signal);
    // Its last renewal: nothing it sent after the signal can land (SIGKILL) or be sent (SIGSTOP)
    // but one already on its way; read now, it is the lease the next one must wait out.
    const oldLease = (await this.lease()) ?? before;
    // What the data plane says, polled through its socket: the first instant it takes the new token.
    let attachedAt: number | null = null;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const identity = await inspectDataPlane(this.box.stateDir, 2_000)
          .then((i) => i.identity)
          .catch(() => null);
        if (identity !== null && (identity.fencingToken ?? 0) > before.token) {
          attachedAt = Date.now();
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    try {
      const newLease = await this.telling(() =>
        waitFor(
          async () => {
            const lease = await this.lease();
            return lease !== null && lease.token > before.token ? lease : null;
          },
          { timeoutMs, intervalMs: 20, what: `a new lease after ${signal} of controller #${from.index}` },
        ),
      );
      const to = this.controllers.find((c) => c.pid === newLease.pid);
      if (to === undefined)
        throw new Error(`the lease went to pid ${newLease.pid}, not a controller of this fleet`);
      const elected = await this.telling(() =>
        waitFor(
          async () =>
            (await this.events(faultAt, ["leader.elected"])).find((e) => e.data?.token === newLease.token),
          { timeoutMs, what: `leader.elected of token ${newLease.token}` },
        ),
      );
      await waitFor(() => attachedAt !== null, {
        timeoutMs,
        what: `the data plane taking token ${newLease.token}`,
      });
      return {
        from,
        fromToken: before.token,
        to,
        token: newLease.token,
        faultAt,
        oldLease,
        newLease,
        electedAt: elected.at,
        attachedAt,
      };
    } finally {
      watching = false;
      await watcher;
    }
  }

  // ── The processes ──────────────────────────────────────────────────────

  /**
   * The driver's own record: every line it wrote to the instance logs of the shared state
   * directory (`--- <time> start <instance> release <v> pid <n> ---`, `--- … adopted <instance> pid
   * <n> ---`, `--- … exit <instance> pid <n> … ---`; src/drivers/local/instanceLog.ts), by instance.
   */
  driverRecord(): Map<string, DriverLine[]> {
    const dir = join(this.box.stateDir, "logs");
    const out = new Map<string, DriverLine[]>();
    if (!existsSync(dir)) return out;
    const pattern =
      /^--- (\S+Z) (?:(start) (\S+) release \S+ pid (\d+)|(adopted) (\S+) pid (\d+)|(exit) (\S+) pid (\d+) )/;
    for (const name of readdirSync(dir)) {
      if (!name.endsWith(".log")) continue;
      const lines: DriverLine[] = [];
      for (const line of readFileSync(join(dir, name), "utf8").split("\n")) {
        const m = pattern.exec(line);
        if (m === null) continue;
        const kind = (m[2] ?? m[5] ?? m[8]) as DriverLine["kind"];
        const instance = (m[3] ?? m[6] ?? m[9]) as string;
        lines.push({ at: Date.parse(m[1] as string), kind, instance, pid: Number(m[4] ?? m[7] ?? m[10]) });
      }
      out.set(name.slice(0, -".log".length), lines);
    }
    return out;
  }

  /**
   * The instances' live processes, from /proc: every live process whose stdout is an instance
   * log of the shared state directory, grouped by instance and by process group (an instance is
   * one group, led by the process the driver started).
   */
  liveInstanceGroups(): Map<string, Set<number>> {
    const logs = `${join(this.box.stateDir, "logs")}/`;
    const groups = new Map<string, Set<number>>();
    for (const entry of readdirSync("/proc")) {
      const pid = Number(entry);
      if (!Number.isInteger(pid)) continue;
      let target: string;
      let stat: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/1`);
        stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      } catch {
        continue;
      }
      if (!target.startsWith(logs) || !target.endsWith(".log")) continue;
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] === "Z") continue;
      const instance = target.slice(logs.length, -".log".length);
      groups.set(instance, new Set([...(groups.get(instance) ?? []), Number(fields[2])]));
    }
    return groups;
  }

  /**
   * Instance → pid of its process (the leader of its one process group), from /proc; an instance
   * with no live process or more than one group is left out (the checks of haChecks.ts say why).
   */
  livePids(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [instance, groups] of this.liveInstanceGroups()) {
      if (groups.size === 1) out.set(instance, [...groups][0] as number);
    }
    return out;
  }

  /** Live processes whose working directory is in the sandbox that are no controller, data plane or instance. */
  strangers(dataPlanePid: number | null): string[] {
    const known = new Set<number>([
      ...this.controllers.filter((c) => c.running()).map((c) => c.pid),
      ...(dataPlanePid === null ? [] : [dataPlanePid]),
    ]);
    for (const pgids of this.liveInstanceGroups().values()) for (const pgid of pgids) known.add(pgid);
    return processesUnder(this.box.dir)
      .filter((pid) => !known.has(pid) && alive(pid) && !known.has(processGroup(pid) ?? -1))
      .map(describePid);
  }

  /** What the data plane serves and its identity, asked through its own feed socket. */
  async dataPlane(): Promise<Awaited<ReturnType<typeof inspectDataPlane>>> {
    return await inspectDataPlane(this.box.stateDir);
  }

  /** `work`; when it fails, the error says what every controller printed. */
  async telling<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${this.describeControllers()}`, { cause: error });
    }
  }

  describeControllers(): string {
    return this.controllers
      .map((c) => {
        const { exitCode, signalCode } = c.child;
        const state =
          exitCode === null && signalCode === null ? "running" : `exited ${exitCode ?? signalCode}`;
        return `--- controller #${c.index} (pid ${c.pid}, port ${c.apiPort}, ${state}) said:\n${c.output().slice(-3_000)}`;
      })
      .join("\n");
  }

  /** Kill every controller (continued first if stopped), the fleet and the data plane; drop the schema. */
  async cleanup(): Promise<void> {
    try {
      // SIGKILL ends a SIGSTOPped process too.
      for (const c of this.controllers) if (c.running()) c.child.kill("SIGKILL");
      await Promise.all(this.controllers.map((c) => c.exited));
      // No controller answers: down reads the instances from the store and stops them (and the data plane).
      await this.box
        .cli([
          "down",
          this.file,
          "--store",
          this.storeUrl,
          "--state-dir",
          this.box.stateDir,
          "--api-port",
          "1",
        ])
        .catch(() => undefined);
      await this.box.cleanup();
    } finally {
      await this.#db.query(`DROP SCHEMA IF EXISTS "${this.schema}" CASCADE`).catch(() => undefined);
      await this.#db.end().catch(() => undefined);
    }
  }
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

function processGroup(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
  } catch {
    return null;
  }
}

function describePid(pid: number): string {
  try {
    return `${pid} (${readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim()})`;
  } catch {
    return String(pid);
  }
}
