/**
 * The baseline of the zone bench: HAProxy (Debian's 2.6) in front of the same instances Homeostat
 * runs — the demo app with the same `WORKERS` × `WORK_MS` capacity, on the same ports, in the same
 * zones (slot i on basePort + i, zone placement[i % zones]), so the same network partition cuts
 * the same servers — in its best configuration for this fault that we know of:
 *
 * - active HTTP checks with the budget of Homeostat's readiness probe (which is also its zone
 *   probe's): `GET /ready` every 250 ms, 250 ms timeout, DOWN after 3 failures, UP after 1 success;
 * - passive checks on live traffic (`observe layer7 error-limit 5 on-error mark-down`: 5
 *   consecutive failed connections, timeouts or 5xx mark a server DOWN at once; Homeostat's outlier
 *   detection ejects after 5 consecutive failures);
 * - Homeostat's deadlines: 750 ms per try (`timeout connect` and `timeout server`), 3 attempts
 *   (`retries 2`), each retry to another server (`option redispatch 1`, `retry-on conn-failure
 *   empty-response response-timeout`), 400 ms in the queue (`timeout queue`);
 * - overload: `maxconn 10` per server (the instance's 10 slots: excess requests wait in HAProxy's
 *   queue, not in the app's), `balance leastconn` (Homeostat balances by in-flight requests), and
 *   priority classes by the criticality header (`http-request set-priority-class`: critical is
 *   dequeued first, sheddable last, so sheddable is the first to hit the queue timeout).
 *
 * What HAProxy cannot do here: add capacity (it has no way to start an instance), refuse by
 * criticality before the queue times out (its only shedding is the queue timeout, ordered by
 * class), or hold a zone back after it heals (a server is back in full rotation after `rise`
 * checks). It has no whole-request deadline either: three 750 ms tries can outlast the client's
 * 2 s timeout, where Homeostat gives up at 1.5 s (both count as failed).
 *
 * Its own 503s (queue timeout, no server) carry `x-homeostat-shed: haproxy-503` through an
 * errorfile, so that the bench counts them as shed, as it counts Homeostat's queue-timeout 503s.
 */

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { APP } from "../../test/helpers/e2e.ts";
import { waitFor } from "../../test/helpers/waitFor.ts";
import { haproxyServerStates, haproxyShowStat } from "../failover/haproxyFleet.ts";
import type { ProcessLedger } from "../foundation/processes.ts";
import { Child } from "../proxy/child.ts";
import { FRONT_PORT, READINESS, type Scenario, SERVICE, TRAFFIC, WORK_MS, WORKERS } from "./fleet.ts";
import { CRITICALITY_HEADER, epochNow } from "./load.ts";

export const HAPROXY_SHED_REASON = "haproxy-503";

/** Server `api-K` is slot K, as Homeostat names its instances. */
export function serverName(slot: number): string {
  return `${SERVICE}-${slot}`;
}

export function haproxyConfig(options: {
  scenario: Scenario;
  port: number;
  socket: string;
  errorfile503: string;
}): string {
  const r = READINESS;
  const t = TRAFFIC;
  const servers = Array.from({ length: options.scenario.replicas }, (_, slot) => slot).map(
    (slot) => `  server ${serverName(slot)} 127.0.0.1:${options.scenario.basePort + slot} check`,
  );
  return [
    "global",
    "  nbthread 1",
    "  maxconn 8000",
    `  stats socket ${options.socket} mode 600 level admin`,
    "",
    "defaults",
    "  mode http",
    "  option http-keep-alive",
    "  timeout client 30s",
    `  timeout connect ${t.perTryTimeoutMs}ms`,
    `  timeout server ${t.perTryTimeoutMs}ms`,
    `  timeout queue ${t.queueTimeoutMs}ms`,
    `  timeout check ${r.timeoutMs}ms`,
    `  retries ${t.attempts - 1}`,
    "  option redispatch 1",
    "  retry-on conn-failure empty-response response-timeout",
    "",
    "frontend zones",
    `  bind 127.0.0.1:${options.port}`,
    // Lower classes are dequeued first; the default class is 0.
    `  http-request set-priority-class int(-1) if { req.hdr(${CRITICALITY_HEADER}) -m str critical }`,
    `  http-request set-priority-class int(1) if { req.hdr(${CRITICALITY_HEADER}) -m str sheddable }`,
    "  default_backend api",
    "",
    "backend api",
    "  balance leastconn",
    "  option httpchk GET /ready",
    "  http-check expect status 200",
    `  errorfile 503 ${options.errorfile503}`,
    `  default-server inter ${r.intervalMs}ms fastinter ${r.intervalMs}ms downinter ${r.intervalMs}ms fall ${r.failureThreshold} rise ${r.successThreshold} maxconn ${WORKERS} observe layer7 error-limit ${t.outlierConsecutiveFailures} on-error mark-down`,
    ...servers,
    "",
  ].join("\n");
}

const ERRORFILE_BODY = "no server answered within the queue timeout\n";
export const ERRORFILE_503 = [
  "HTTP/1.1 503 Service Unavailable",
  "content-type: text/plain",
  "cache-control: no-cache",
  `x-homeostat-shed: ${HAPROXY_SHED_REASON}`,
  `content-length: ${Buffer.byteLength(ERRORFILE_BODY)}`,
  "",
  ERRORFILE_BODY,
].join("\r\n");

/** A server's counters and state from `show stat`. */
export interface ServerStat {
  name: string;
  status: string;
  /** Sessions assigned to the server, cumulative (HAProxy's `stot`). */
  sessions: number;
  connectErrors: number;
  retries: number;
  redispatches: number;
  queued: number;
}

/** A server state change HAProxy printed. */
export interface ServerEvent {
  server: string;
  state: "UP" | "DOWN";
  at: number;
  reason: string | null;
}

/** The servers of backend `api` from `show stat` CSV. */
export function parseServerStats(csv: string): ServerStat[] {
  const [header, ...rows] = csv.trim().split("\n");
  const columns = (header ?? "").replace(/^# /, "").split(",");
  const at = (name: string) => columns.indexOf(name);
  const num = (cells: string[], name: string) => Number(cells[at(name)] ?? "") || 0;
  const out: ServerStat[] = [];
  for (const row of rows) {
    const cells = row.split(",");
    if (cells[0] !== "api" || cells[at("svname")] === "BACKEND") continue;
    out.push({
      name: cells[at("svname")]!,
      status: cells[at("status")] ?? "",
      sessions: num(cells, "stot"),
      connectErrors: num(cells, "econ"),
      retries: num(cells, "wretr"),
      redispatches: num(cells, "wredis"),
      queued: num(cells, "qcur"),
    });
  }
  return out;
}

/** The instances HAProxy balances: the demo app, started by the bench, not supervised. */
async function startInstances(s: Scenario, ledger: ProcessLedger): Promise<Child[]> {
  const children: Child[] = [];
  try {
    for (let slot = 0; slot < s.replicas; slot++) {
      const port = s.basePort + slot;
      const child = new Child(
        serverName(slot),
        process.execPath,
        [APP, "--port", String(port), "--name", serverName(slot)],
        {
          ledger,
          env: { ...process.env, WORKERS: String(WORKERS), WORK_MS: String(WORK_MS) },
        },
      );
      children.push(child);
    }
    await Promise.all(children.map((c, slot) => c.waitListening(s.basePort + slot)));
  } catch (error) {
    await Promise.all(children.map((c) => c.stop()));
    throw error;
  }
  return children;
}

export class HaproxyFleet {
  readonly config: string;
  readonly events: ServerEvent[] = [];
  readonly #socket: string;
  readonly #haproxy: Child;
  readonly #instances: Child[];

  private constructor(config: string, socket: string, haproxy: Child, instances: Child[]) {
    this.config = config;
    this.#socket = socket;
    this.#haproxy = haproxy;
    this.#instances = instances;
    haproxy.onLine((line) => {
      const match = /Server api\/(\S+) is (UP|DOWN)/.exec(line);
      // Each change is printed twice (the warning, then the log line): keep the first.
      if (match === null || line.startsWith("Server ")) return;
      const reason = /reason: ([^,]+)/.exec(line)?.[1]?.trim() ?? null;
      this.events.push({ server: match[1]!, state: match[2] as "UP" | "DOWN", at: epochNow(), reason });
    });
  }

  /** The config HAProxy would run for `scenario` (for the report), with placeholder paths. */
  static configFor(s: Scenario): string {
    return haproxyConfig({
      scenario: s,
      port: FRONT_PORT,
      socket: "<dir>/haproxy.sock",
      errorfile503: "<dir>/503.http",
    });
  }

  /** Start the instances, then HAProxy, and wait until every server is UP. */
  static async start(options: {
    scenario: Scenario;
    dir: string;
    ledger: ProcessLedger;
  }): Promise<HaproxyFleet> {
    const s = options.scenario;
    mkdirSync(options.dir, { recursive: true });
    const socket = join(options.dir, "haproxy.sock");
    const errorfile503 = join(options.dir, "503.http");
    writeFileSync(errorfile503, ERRORFILE_503);
    const config = haproxyConfig({ scenario: s, port: FRONT_PORT, socket, errorfile503 });
    const file = join(options.dir, "haproxy.cfg");
    writeFileSync(file, config);
    const instances = await startInstances(s, options.ledger);
    const haproxy = new Child("haproxy", "haproxy", ["-db", "-f", file], { ledger: options.ledger });
    const fleet = new HaproxyFleet(config, socket, haproxy, instances);
    try {
      await haproxy.waitListening(FRONT_PORT);
      const names = instances.map((c) => c.name);
      await waitFor(
        async () => {
          const states = await haproxyServerStates(socket);
          return names.every((n) => states[n] === "UP");
        },
        { timeoutMs: 30_000, intervalMs: 50, what: "HAProxy: every server UP" },
      );
    } catch (error) {
      await fleet.stop();
      throw new Error(`HAProxy did not start:\n${haproxy.output()}`, { cause: error });
    }
    return fleet;
  }

  assertRunning(): void {
    if (!this.#haproxy.running) throw new Error(`HAProxy exited:\n${this.#haproxy.output()}`);
  }

  /** The servers' counters and states, or null when the stats socket did not answer. */
  async serverStats(): Promise<ServerStat[] | null> {
    try {
      return parseServerStats(await haproxyShowStat(this.#socket));
    } catch {
      return null;
    }
  }

  async stop(): Promise<void> {
    await this.#haproxy.stop();
    await Promise.all(this.#instances.map((c) => c.stop()));
  }
}
