/**
 * The `haproxy` engine of the data plane: one managed HAProxy for every service of the fleet whose
 * `traffic.engine` is `haproxy`. The data-plane process applies each snapshot here as it applies
 * the others to its embedded listeners: the configuration is rendered (a frontend per service
 * port, a backend with a server per instance slot), HAProxy is started, adopted or seamlessly
 * reloaded only when that configuration changes, and everything else (members, weights, drains,
 * ejections, shedding) goes through the Runtime API without a reload. Request figures come back
 * as HAProxy's log lines (a ring forwarded over loopback TCP) into the same statistics the embedded engine keeps.
 *
 * HAProxy runs detached from the data-plane process: when the data plane or the controller dies,
 * it keeps serving with what it was last told (static stability), and the next data plane adopts
 * it and reads its live state back before it changes anything.
 */

import { readFileSync, writeFileSync } from "node:fs";
import { HomeostatError } from "../../errors.ts";
import type { TrafficStats } from "../../traffic/stats/index.ts";
import type { ServiceSnapshot } from "../feedProtocol.ts";
import { LOG_ALL, logMapText, renderHaproxyConfig, shedMapText } from "./haproxyConfig.ts";
import { ensureHaproxyDir, type HaproxyPaths, haproxyPaths } from "./haproxyPaths.ts";
import { findHaproxy, HaproxyProcess } from "./haproxyProcess.ts";
import { HaproxyService, type ServerReadback, type ServiceEvent } from "./haproxyService.ts";
import { HaproxyLogReceiver } from "./logReceiver.ts";
import { nextLogShare } from "./logSampling.ts";
import { RuntimeApi } from "./runtimeApi.ts";

/** The window a service's request rate is read over, to choose its log sampling. */
const LOG_RATE_WINDOW_MS = 2_000;

/** How often HAProxy's live figures are read back (the data plane reports every 250 ms). */
const READBACK_INTERVAL_MS = 250;

export interface HaproxyEngineOptions {
  stateDir: string;
  /** The data plane's statistics: HAProxy's log lines are recorded there. */
  stats: TrafficStats;
  onEvent: (service: string | undefined, event: ServiceEvent) => void;
  log: (entry: Record<string, unknown>) => void;
  /** The binary; default: {@link findHaproxy}. */
  binary?: string | null;
  now?: () => number;
}

export class HaproxyEngine {
  readonly #paths: HaproxyPaths;
  readonly #stats: TrafficStats;
  readonly #onEvent: HaproxyEngineOptions["onEvent"];
  readonly #log: HaproxyEngineOptions["log"];
  readonly #binary: string | null;
  readonly #now: () => number;
  readonly #services = new Map<string, HaproxyService>();
  #process: HaproxyProcess | null = null;
  #api: RuntimeApi | null = null;
  #receiver: HaproxyLogReceiver | null = null;
  #logPort = 0;
  #config = "";
  #timer: NodeJS.Timeout | null = null;
  /** One Runtime API conversation at a time, in order. */
  #chain: Promise<unknown> = Promise.resolve();
  #lastError: string | null = null;
  #commandsSent = 0;
  #closed = false;

  constructor(options: HaproxyEngineOptions) {
    this.#paths = haproxyPaths(options.stateDir);
    this.#stats = options.stats;
    this.#onEvent = options.onEvent;
    this.#log = options.log;
    this.#binary = options.binary === undefined ? findHaproxy() : options.binary;
    this.#now = options.now ?? Date.now;
  }

  /** True while HAProxy serves at least one service. */
  get active(): boolean {
    return this.#process !== null;
  }

  services(): string[] {
    return [...this.#services.keys()];
  }

  /**
   * Serve `snapshots` (the services whose engine is haproxy; none stops HAProxy). Starts or
   * adopts HAProxy on first use, reloads it when the rendered configuration changed, then sends
   * the Runtime API commands. Throws (serving what it served before) when HAProxy cannot start or
   * refuses the new configuration.
   */
  async apply(snapshots: readonly ServiceSnapshot[]): Promise<void> {
    await this.#serialized(async () => {
      const now = this.#now();
      if (snapshots.length === 0) {
        if (this.#services.size > 0 || this.#process !== null) await this.#stopAll(10_000);
        return;
      }
      const wanted = new Set(snapshots.map((s) => s.name));
      for (const name of this.#services.keys()) if (!wanted.has(name)) this.#services.delete(name);
      for (const snapshot of snapshots) {
        let service = this.#services.get(snapshot.name);
        if (service === undefined) {
          service = new HaproxyService({
            snapshot,
            stats: this.#stats,
            onEvent: (e) => this.#onEvent(snapshot.name, e),
          });
          this.#services.set(snapshot.name, service);
        }
        service.update(snapshot, now);
      }
      await this.#ensureReceiver();
      await this.#ensureProcess();
      await this.#sendCommands();
    });
    this.#startTimer();
  }

  /** `service` as served (for persisting): the fields a snapshot left out get what is kept. */
  effective(service: ServiceSnapshot): ServiceSnapshot {
    const served = this.#services.get(service.name);
    if (served === undefined) return service;
    return {
      ...service,
      endpoints: service.endpoints ?? served.endpoints,
      weights: service.weights === undefined ? (served.weights ?? null) : service.weights,
      zoneShares: service.zoneShares === undefined ? served.zoneShares : service.zoneShares,
      shedding: service.shedding === undefined ? served.shedding : service.shedding,
    };
  }

  /** Per service, its state as the API shows it. */
  state(): Record<string, Record<string, unknown>> {
    const now = this.#now();
    const out: Record<string, Record<string, unknown>> = {};
    for (const [name, service] of this.#services) {
      out[name] = {
        ...service.state(now),
        haproxy: {
          pid: this.#process?.pid ?? null,
          reloads: this.#process?.reloads ?? 0,
          logPort: this.#logPort,
          logLines: this.#receiver?.received ?? 0,
          unparsedLogLines: this.#receiver?.unparsed ?? 0,
          commandsSent: this.#commandsSent,
          lastError: this.#lastError,
        },
      };
    }
    return out;
  }

  /**
   * Let go without stopping HAProxy (a planned data-plane restart: the successor adopts it).
   */
  async release(): Promise<void> {
    this.#closed = true;
    this.#stopTimer();
    await this.#chain.catch(() => {});
    await this.#receiver?.close();
    this.#receiver = null;
  }

  /** Stop HAProxy, letting requests in flight finish up to `deadlineMs` (the fleet is stopped). */
  async close(deadlineMs = 10_000): Promise<void> {
    this.#closed = true;
    this.#stopTimer();
    await this.#serialized(() => this.#stopAll(deadlineMs));
    await this.#receiver?.close();
    this.#receiver = null;
  }

  async #stopAll(deadlineMs: number): Promise<void> {
    this.#services.clear();
    const process =
      this.#process ??
      (this.#binary === null
        ? null
        : await HaproxyProcess.adopt({ binary: this.#binary, paths: this.#paths }));
    this.#process = null;
    this.#api = null;
    this.#config = "";
    if (process !== null) {
      await process.stop(deadlineMs);
      this.#log({ msg: "haproxy stopped", pid: process.pid });
    }
  }

  async #ensureReceiver(): Promise<void> {
    if (this.#receiver !== null) return;
    // An adopted HAProxy sends its log lines to the port its configuration names: bind that one.
    const previous = portInConfig(this.#paths.config);
    let receiver = this.#newReceiver(previous);
    try {
      this.#logPort = await receiver.start();
    } catch (error) {
      if (previous === null) throw error;
      // Taken by someone else since: a new port, and the configuration (so HAProxy) follows.
      receiver = this.#newReceiver(null);
      this.#logPort = await receiver.start();
    }
    this.#receiver = receiver;
  }

  #newReceiver(port: number | null): HaproxyLogReceiver {
    return new HaproxyLogReceiver({
      stats: this.#stats,
      lookup: (service, instance) => this.#services.get(service)?.lookup(instance) ?? null,
      onOutcome: (service, instance, outcome, now) => {
        if (this.#services.get(service)?.recordOutcome(instance, outcome, now)) this.#poke();
      },
      ...(port === null ? {} : { port }),
    });
  }

  /** Render the configuration; start, adopt or reload HAProxy so that it runs exactly that. */
  async #ensureProcess(): Promise<void> {
    if (this.#binary === null) {
      throw new HomeostatError(
        "HS_HAPROXY_MISSING",
        "the haproxy engine needs the haproxy binary: install it (apt-get install haproxy) or set HOMEOSTAT_HAPROXY",
      );
    }
    const services = [...this.#services.values()].map((service) => {
      service.servers = service.serverNames();
      return { name: service.name, port: service.port, traffic: service.traffic, servers: service.servers };
    });
    services.sort((a, b) => a.name.localeCompare(b.name));
    const config = renderHaproxyConfig({ services, paths: this.#paths, logPort: this.#logPort });
    ensureHaproxyDir(this.#paths);
    this.#writeShedMaps();
    if (this.#process === null) {
      const adopted = await HaproxyProcess.adopt({ binary: this.#binary, paths: this.#paths });
      if (adopted !== null) {
        this.#process = adopted;
        this.#api = new RuntimeApi(this.#paths.adminSocket);
        this.#config = readText(this.#paths.config);
        this.#onEvent(undefined, {
          type: "dataplane.haproxy-adopted",
          reason: "haproxy-engine",
          message: `adopted the running HAProxy (pid ${adopted.pid}); its live server state is read back before anything changes`,
          data: { pid: adopted.pid },
        });
        await this.#readBack();
      }
    }
    if (this.#process === null) {
      this.#process = await HaproxyProcess.start({ binary: this.#binary, paths: this.#paths, config });
      this.#api = new RuntimeApi(this.#paths.adminSocket);
      this.#config = config;
      for (const service of this.#services.values()) service.forgetApplied();
      this.#onEvent(undefined, {
        type: "dataplane.haproxy-started",
        reason: "haproxy-engine",
        message: `started HAProxy (pid ${this.#process.pid}) for ${services.map((s) => `${s.name} :${s.port}`).join(", ")}`,
        data: { pid: this.#process.pid },
      });
      return;
    }
    if (config !== this.#config) {
      const before = this.#process.reloads;
      await this.#process.reload(config);
      this.#config = config;
      for (const service of this.#services.values()) service.forgetApplied();
      this.#onEvent(undefined, {
        type: "dataplane.haproxy-reloaded",
        reason: "haproxy-engine",
        message: `HAProxy reloaded seamlessly (reload ${before + 1}): its frontends or server slots changed`,
        data: { pid: this.#process.pid },
      });
    }
  }

  /** The shedding maps as files, so a start or reload begins with today's shares. */
  #writeShedMaps(): void {
    for (const service of this.#services.values()) {
      writeFileSync(this.#paths.shedMap(service.name), shedMapText(service.shedding), { mode: 0o600 });
      writeFileSync(this.#paths.logMap(service.name), logMapText(service.logShare), { mode: 0o600 });
    }
  }

  /** Busy services log a share of their answered requests (see logSampling.ts); say when it changes. */
  #adjustLogSampling(): void {
    let changed = false;
    for (const [name, service] of this.#services) {
      const rate =
        this.#stats.window({ service: name, windowMs: LOG_RATE_WINDOW_MS }).requests /
        (LOG_RATE_WINDOW_MS / 1000);
      const next = nextLogShare(service.logShare, rate);
      if (next === service.logShare) continue;
      service.logShare = next;
      changed = true;
      this.#onEvent(name, {
        type: "dataplane.haproxy-log-sampling",
        reason: "haproxy-engine",
        message:
          next === LOG_ALL
            ? `${name}: every answered request logged again (${Math.round(rate)} req/s)`
            : `${name}: 1 in ${Math.round(LOG_ALL / next)} answered requests logged (${Math.round(rate)} req/s), each counted for ${Math.round(LOG_ALL / next)}; shed, unanswered and failed-to-connect requests are all logged`,
        data: { share: next / LOG_ALL, requestsPerSecond: Math.round(rate) },
      });
    }
    // A reload starts from the files: they hold today's shares.
    if (changed) this.#writeShedMaps();
  }

  async #sendCommands(): Promise<void> {
    const api = this.#api;
    if (api === null) return;
    const now = this.#now();
    for (const service of this.#services.values()) {
      for (const command of service.commands(
        now,
        this.#paths.shedMap(service.name),
        this.#paths.logMap(service.name),
      )) {
        try {
          await api.command(command);
          this.#commandsSent++;
        } catch (error) {
          // Told again on the next pass: what HAProxy was told is forgotten.
          service.forgetApplied();
          this.#lastError = `${command}: ${(error as Error).message}`;
          throw error;
        }
      }
    }
  }

  /** Read HAProxy's live figures per server; drains that finished and ejections that ended apply. */
  async #readBack(): Promise<void> {
    const api = this.#api;
    if (api === null) return;
    const text = await api.command("show stat -1 4 -1");
    const byService = parseServerStats(text);
    const now = this.#now();
    for (const [name, service] of this.#services) {
      service.setReadback(byService.get(name) ?? new Map(), now);
    }
  }

  #startTimer(): void {
    if (this.#timer !== null || this.#closed) return;
    this.#timer = setInterval(() => this.#poke(), READBACK_INTERVAL_MS);
    this.#timer.unref();
  }

  #stopTimer(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Read back and send what changed (ejections, drains ending), off the snapshot path. */
  #poke(): void {
    if (this.#closed || this.#process === null) return;
    void this.#serialized(async () => {
      if (this.#process !== null && !this.#process.alive()) {
        this.#lastError = `HAProxy (pid ${this.#process.pid}) is gone`;
        this.#onEvent(undefined, {
          type: "dataplane.haproxy-exited",
          reason: "haproxy-engine",
          message: `HAProxy (pid ${this.#process.pid}) exited; starting it again`,
        });
        this.#process = null;
        this.#config = "";
        await this.#ensureProcess();
      }
      await this.#readBack();
      this.#adjustLogSampling();
      await this.#sendCommands();
    }).catch((error: unknown) => {
      this.#lastError = (error as Error).message;
      this.#log({ msg: "haproxy pass failed", error: this.#lastError });
    });
  }

  #serialized<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#chain.then(work, work);
    this.#chain = next.catch(() => {});
    return next;
  }
}

/**
 * `show stat -1 4 -1` (servers only, CSV with a `# pxname,svname,…` header) → per backend, per
 * server: current sessions and status.
 */
export function parseServerStats(text: string): Map<string, Map<string, ServerReadback>> {
  const out = new Map<string, Map<string, ServerReadback>>();
  const lines = text.split("\n");
  const header = lines.find((line) => line.startsWith("# "));
  if (header === undefined) return out;
  const columns = header.slice(2).split(",");
  const at = (name: string) => columns.indexOf(name);
  const [px, sv, scur, status] = [at("pxname"), at("svname"), at("scur"), at("status")];
  for (const line of lines) {
    if (line === "" || line.startsWith("#")) continue;
    const cells = line.split(",");
    const backend = cells[px];
    const server = cells[sv];
    if (backend === undefined || server === undefined || server === "BACKEND" || server === "FRONTEND")
      continue;
    let servers = out.get(backend);
    if (servers === undefined) {
      servers = new Map();
      out.set(backend, servers);
    }
    servers.set(server, { scur: Number(cells[scur]) || 0, status: cells[status] ?? "" });
  }
  return out;
}

/** The port an existing configuration file forwards its log ring to, or null. */
function portInConfig(file: string): number | null {
  const match = /^\s*server dataplane 127\.0\.0\.1:(\d+)/m.exec(readText(file));
  return match === null ? null : Number(match[1]);
}

function readText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}
