/**
 * The HAProxy side of the failover bench: three instances of the demo app that the bench starts
 * itself (no supervisor: a killed one stays dead until the bench restarts it between trials, so
 * only routing is measured), and one HAProxy process per scenario in front of them.
 */

import { mkdirSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";
import { APP, freePort } from "../../test/helpers/e2e.ts";
import { waitFor } from "../../test/helpers/waitFor.ts";
import { epochNow } from "../common/loadgen/scheduledLoad.ts";
import { identify, type ProcessIdentity, type ProcessLedger } from "../foundation/processes.ts";
import { Child } from "../proxy/child.ts";
import { type HaproxyScenario, haproxyFailoverConfig, type ProbeTuning } from "./haproxyConfig.ts";

export { epochNow };

export class BenchInstances {
  readonly ports: number[];
  readonly #ledger: ProcessLedger;
  readonly #children: (Child | null)[];

  constructor(ports: number[], ledger: ProcessLedger) {
    this.ports = ports;
    this.#ledger = ledger;
    this.#children = ports.map(() => null);
  }

  name(k: number): string {
    return `api-${k}`;
  }

  /** (Re)start every instance that is not running, and wait until each accepts connections. */
  async ensureAll(): Promise<void> {
    for (const [k, port] of this.ports.entries()) {
      if (this.#children[k]?.running) continue;
      const child = new Child(
        this.name(k),
        process.execPath,
        [APP, "--port", String(port), "--name", this.name(k)],
        { ledger: this.#ledger },
      );
      this.#children[k] = child;
      await child.waitListening(port);
    }
  }

  /** Instance `k`'s process (pid and start time), for signals sent from elsewhere. */
  identity(k: number): ProcessIdentity {
    const child = this.#children[k];
    if (!child?.running) throw new Error(`${this.name(k)} is not running`);
    return identify(child.pid);
  }

  /** SIGKILL instance `k`; returns when the signal was sent (epoch ms). */
  kill(k: number): number {
    const child = this.#children[k];
    if (!child?.running) throw new Error(`${this.name(k)} is not running`);
    const at = epochNow();
    child.child.kill("SIGKILL");
    return at;
  }

  async stop(): Promise<void> {
    await Promise.all(this.#children.map((c) => c?.stop()));
  }
}

/** A server state change HAProxy reported on stderr. */
export interface ServerEvent {
  server: string;
  state: "UP" | "DOWN";
  /** When the bench read the line (epoch ms). */
  at: number;
  /**
   * HAProxy's reason: "Layer4 connection problem", "Layer7 timeout"… for an active check,
   * "Health analyze" when passive checks (`observe`) marked it; null when not printed.
   */
  reason: string | null;
}

export class HaproxyUnderTest {
  readonly scenario: HaproxyScenario;
  readonly port: number;
  readonly config: string;
  readonly events: ServerEvent[] = [];
  readonly #socket: string;
  readonly #child: Child;

  private constructor(
    scenario: HaproxyScenario,
    port: number,
    dir: string,
    config: string,
    ledger: ProcessLedger,
  ) {
    this.scenario = scenario;
    this.port = port;
    this.config = config;
    this.#socket = join(dir, "haproxy.sock");
    const file = join(dir, "haproxy.cfg");
    writeFileSync(file, config);
    this.#child = new Child(scenario, "haproxy", ["-db", "-f", file], { ledger });
    this.#child.onLine((line) => {
      const match = /Server api\/(\S+) is (UP|DOWN)/.exec(line);
      // Each change is printed twice (the warning, then the log line): keep the first.
      if (match === null || line.startsWith("Server ")) return;
      const reason = /reason: ([^,]+)/.exec(line)?.[1]?.trim() ?? null;
      this.events.push({ server: match[1]!, state: match[2] as "UP" | "DOWN", at: epochNow(), reason });
    });
  }

  static async start(options: {
    scenario: HaproxyScenario;
    dir: string;
    upstreamPorts: number[];
    tuning: ProbeTuning;
    /** Passive checks' `error-limit` (`haproxy-passive` only). */
    errorLimit: number;
    ledger: ProcessLedger;
  }): Promise<HaproxyUnderTest> {
    const dir = join(options.dir, options.scenario);
    mkdirSync(dir, { recursive: true });
    const port = await freePort();
    const config = haproxyFailoverConfig({
      scenario: options.scenario,
      port,
      upstreamPorts: options.upstreamPorts,
      socket: join(dir, "haproxy.sock"),
      tuning: options.tuning,
      errorLimit: options.errorLimit,
    });
    const haproxy = new HaproxyUnderTest(options.scenario, port, dir, config, options.ledger);
    await haproxy.#child.waitListening(port);
    return haproxy;
  }

  /** Server → status (`UP`, `DOWN`, `UP 1/2`, …) from the runtime API's `show stat`. */
  serverStates(): Promise<Record<string, string>> {
    return haproxyServerStates(this.#socket);
  }

  /** Wait until HAProxy has every server of `names` fully UP. */
  async waitAllUp(names: string[], timeoutMs = 30_000): Promise<void> {
    await waitFor(
      async () => {
        const states = await this.serverStates();
        return names.every((n) => states[n] === "UP");
      },
      { timeoutMs, intervalMs: 50, what: `${this.scenario}: every server UP` },
    );
  }

  /** The first time `server` was reported DOWN at or after `since`, or null. */
  downAt(server: string, since: number): number | null {
    return this.downEvent(server, since)?.at ?? null;
  }

  /** The first DOWN report of `server` at or after `since` (with HAProxy's reason), or null. */
  downEvent(server: string, since: number): ServerEvent | null {
    return this.events.find((e) => e.server === server && e.state === "DOWN" && e.at >= since) ?? null;
  }

  stop(): Promise<void> {
    return this.#child.stop();
  }
}

/** HAProxy's `show stat` CSV, from its runtime API socket. */
export function haproxyShowStat(socketPath: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let text = "";
    const socket = createConnection(socketPath);
    socket.setTimeout(2_000, () => socket.destroy(new Error("stats socket timeout")));
    socket.on("connect", () => socket.write("show stat\n"));
    socket.on("data", (d: Buffer) => {
      text += d.toString();
    });
    socket.on("end", () => resolve(text));
    socket.on("error", reject);
  });
}

/** Server → status (`UP`, `DOWN`, `UP 1/2`, …) of backend `api`, from HAProxy's runtime API (`show stat`). */
export async function haproxyServerStates(socketPath: string): Promise<Record<string, string>> {
  const csv = await haproxyShowStat(socketPath);
  const [header, ...rows] = csv.trim().split("\n");
  const columns = (header ?? "").replace(/^# /, "").split(",");
  const name = columns.indexOf("svname");
  const status = columns.indexOf("status");
  const out: Record<string, string> = {};
  for (const row of rows) {
    const cells = row.split(",");
    if (cells[0] === "api" && cells[name] !== "BACKEND") out[cells[name]!] = cells[status]!;
  }
  return out;
}
