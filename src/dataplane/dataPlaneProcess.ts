/**
 * The data-plane process: serves every service port of one fleet, independently of the
 * controller. It starts from the last persisted snapshot (if any), listens on the feed socket for
 * a controller, applies the snapshots it is sent, acknowledges them, and reports its state,
 * decision windows and events. When no controller is connected it keeps serving with what it has,
 * passive outlier detection included (static stability). A planned restart hands the listening
 * sockets to a successor process, so no connection is refused and no request is cut.
 */

import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { modulePath } from "../lib/modulePath.ts";
import { processStartTime } from "../lib/procStat.ts";
import { connectUnix, listeningFd } from "../lib/sockets.ts";
import type { WindowsExport } from "../traffic/stats/index.ts";
import {
  type ControllerMessage,
  controllerMessageSchema,
  type DataPlaneIdentity,
  type DataPlaneMessage,
  FEED_PROTOCOL_VERSION,
  type FeedEvent,
  type Snapshot,
} from "./feedProtocol.ts";
import { HaproxyEngine } from "./haproxy/haproxyEngine.ts";
import { LineChannel } from "./lineChannel.ts";
import { type DataPlanePaths, dataPlanePaths, ensureDataPlaneDir } from "./paths.ts";
import { StoreEndpoints } from "./redisEndpoint.ts";
import { ServingSet } from "./servingSet.ts";
import { persistSnapshot, readPersistedSnapshot } from "./snapshotFile.ts";

/** How often a connected controller gets a report. */
export const REPORT_INTERVAL_MS = 250;
/**
 * How often it gets one when nothing changed since the last: no event, no traffic in the windows,
 * the same listener and store state and identity. A report of an idle fleet (19 KB for 60
 * endpoints) was a sixth of the controller's CPU at rest (issue 15). Below the controller's
 * tolerance for late figures (STATS_LAG_TOLERANCE_MS, 750 ms), so an idle fleet's figures never
 * read as late; anything new goes out on the next 250 ms tick as before.
 */
export const IDLE_REPORT_INTERVAL_MS = 500;
/** Events kept for a controller that is not connected; older ones are dropped (and counted). */
const MAX_PENDING_EVENTS = 1_000;

/** Descriptors a predecessor handed over (planned restart). */
export interface Inheritance {
  /** The feed socket's listening descriptor. */
  feedFd: number;
  /** Listening descriptors by service port. */
  listeners: Map<number, number>;
  /** Write end of a pipe: "ready\n" once this process serves, so the predecessor may stop. */
  readyFd: number;
  generation: number;
}

export interface DataPlaneProcessOptions {
  stateDir: string;
  /** Which worker of the fleet's data plane this is (0 unless `workers` > 1). */
  worker?: number;
  /** Bind the service ports with SO_REUSEPORT, shared with the other workers. */
  reusePort?: boolean;
  inheritance?: Inheritance;
  log: (entry: Record<string, unknown>) => void;
}

export class DataPlaneProcess {
  readonly #paths: DataPlanePaths;
  readonly #stateDir: string;
  readonly #worker: number;
  readonly #reusePort: boolean;
  readonly #serving: ServingSet;
  /** Services whose engine is haproxy (worker 0 only: one HAProxy serves the fleet). */
  readonly #haproxy: HaproxyEngine | null;
  /** Replicated stores' stable endpoints and Sentinel-compatible ports (docs/redis.md). */
  readonly #stores = new StoreEndpoints((type, message, data) =>
    this.#event({ type, reason: "redis-endpoint", message, data }),
  );
  readonly #log: (entry: Record<string, unknown>) => void;
  readonly #startedAt = Date.now();
  /** Read once: every report carries it, and it cannot change. */
  readonly #startTime = processStartTime(process.pid);
  readonly #generation: number;
  readonly #inheritance: Inheritance | undefined;
  #feedServer: Server | null = null;
  #controller: LineChannel<ControllerMessage, DataPlaneMessage> | null = null;
  #controllerLostAt: number | null = Date.now();
  #applied: Snapshot | null = null;
  /**
   * The highest fencing token a controller attached or sent a snapshot with (persisted with the
   * snapshot): orders carrying a lower one come from a deposed leader and are refused.
   */
  #highestToken: number | null = null;
  #source: DataPlaneIdentity["source"] = "none";
  #pending: Snapshot | null = null;
  #applying: Promise<void> | null = null;
  #events: FeedEvent[] = [];
  #droppedEvents = 0;
  /** The first second the next report's windows start from (0: everything kept). */
  #reportFromSecond = 0;
  /** When the last report went and what it said but its windows and events (see IDLE_REPORT_INTERVAL_MS). */
  #lastReport: { at: number; state: string } | null = null;
  #reportTimer: NodeJS.Timeout | null = null;
  #stopping: Promise<void> | null = null;
  #onStopped: () => void = () => {};
  readonly stopped: Promise<void>;

  constructor(options: DataPlaneProcessOptions) {
    this.#stateDir = options.stateDir;
    this.#worker = options.worker ?? 0;
    this.#reusePort = options.reusePort ?? false;
    this.#paths = dataPlanePaths(options.stateDir, this.#worker);
    this.#log = options.log;
    this.#inheritance = options.inheritance;
    this.#generation = options.inheritance?.generation ?? 0;
    this.#serving = new ServingSet({
      onEvent: (service, e) =>
        this.#event({
          type: e.type,
          reason: e.reason,
          message: e.message,
          service,
          ...(e.data ? { data: e.data as Record<string, unknown> } : {}),
        }),
      ...(options.inheritance ? { inheritedListeners: options.inheritance.listeners } : {}),
      reusePort: this.#reusePort,
    });
    this.#haproxy =
      this.#worker === 0
        ? new HaproxyEngine({
            stateDir: options.stateDir,
            stats: this.#serving.stats,
            onEvent: (service, e) =>
              this.#event({
                type: e.type,
                reason: e.reason,
                message: e.message,
                ...(service === undefined ? {} : { service }),
                ...(e.data ? { data: e.data as Record<string, unknown> } : {}),
              }),
            log: options.log,
          })
        : null;
    this.stopped = new Promise((resolve) => {
      this.#onStopped = resolve;
    });
  }

  /**
   * Serve: the persisted snapshot first (so traffic flows even before a controller connects),
   * then the feed socket. Throws when the feed socket belongs to a live data plane.
   */
  async start(): Promise<void> {
    ensureDataPlaneDir(this.#paths);
    const persisted = readPersistedSnapshot(this.#paths.snapshot);
    if (persisted.problem !== null) {
      this.#event({
        type: "dataplane.snapshot-unreadable",
        reason: "data-plane-snapshot",
        message: persisted.problem,
      });
    }
    if (persisted.snapshot !== null) {
      try {
        await this.#apply(persisted.snapshot);
        this.#applied = persisted.snapshot;
        this.#highestToken = persisted.snapshot.fencingToken ?? null;
        this.#source = "persisted";
        this.#log({ msg: "serving the persisted snapshot", version: persisted.snapshot.version });
      } catch (error) {
        this.#event({
          type: "dataplane.snapshot-failed",
          reason: "data-plane-snapshot",
          message: `the persisted snapshot could not be served: ${(error as Error).message}`,
        });
      }
    }
    await this.#listenFeed();
    this.#writeProcessFile();
    if (this.#inheritance !== undefined) {
      // Tell the predecessor we serve: it may stop accepting now.
      try {
        writeFileSync(this.#inheritance.readyFd, "ready\n");
        closeSync(this.#inheritance.readyFd);
      } catch {
        // The predecessor is gone: nothing to tell.
      }
    }
    this.#reportTimer = setInterval(() => this.#report(), REPORT_INTERVAL_MS);
  }

  /** Stop listening and drain (the fleet is being stopped, or SIGTERM). */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#log({ msg: "stopping" });
      if (this.#reportTimer) clearInterval(this.#reportTimer);
      this.#feedServer?.close();
      await Promise.all([this.#serving.close(), this.#haproxy?.close(), this.#stores.close()]);
      this.#controller?.end("data plane stopped");
      this.#removeOwnFiles();
      this.#onStopped();
    })();
    return this.#stopping;
  }

  identity(): DataPlaneIdentity {
    return {
      pid: process.pid,
      startTime: this.#startTime,
      startedAt: this.#startedAt,
      protocol: FEED_PROTOCOL_VERSION,
      appliedVersion: this.#applied?.version ?? 0,
      appliedIssuedAt: this.#applied?.issuedAt ?? null,
      source: this.#source,
      controllerLostAt: this.#controllerLostAt,
      generation: this.#generation,
      worker: this.#worker,
      fencingToken: this.#highestToken,
    };
  }

  async #listenFeed(): Promise<void> {
    const server = createServer((socket) => this.#accept(socket));
    this.#feedServer = server;
    if (this.#inheritance !== undefined) {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen({ fd: this.#inheritance!.feedFd }, () => resolve());
      });
      return;
    }
    if (await feedAnswers(this.#paths.feed)) {
      throw new Error(`another data plane already serves the feed at ${this.#paths.feed}`);
    }
    // Bound under a temporary name, then renamed into place: libuv unlinks the path a socket was
    // bound to when it closes, and after a handover that path belongs to the successor.
    const bound = `${this.#paths.feed}.${process.pid}`;
    rmSync(bound, { force: true });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      // Created with umask 077 semantics: only the owner may connect (the directory is 0700 too).
      const umask = process.umask(0o077);
      server.listen({ path: bound }, () => {
        process.umask(umask);
        resolve();
      });
    });
    renameSync(bound, this.#paths.feed);
  }

  #accept(socket: Socket): void {
    if (this.#stopping !== null) {
      socket.destroy();
      return;
    }
    const channel = new LineChannel<ControllerMessage, DataPlaneMessage>(
      socket,
      controllerMessageSchema,
      (m) => this.#onMessage(channel, m),
    );
  }

  /** A connection that said `attach` becomes the controller; the previous one is cut. */
  #attach(
    channel: LineChannel<ControllerMessage, DataPlaneMessage>,
    controllerPid: number,
    protocol: number,
    fencingToken?: number,
  ): void {
    if (this.#isStale(fencingToken, `controller pid ${controllerPid} tried to attach`)) {
      // The leader attached now keeps the feed: a deposed one must not cut it.
      channel.send({ type: "hello", identity: this.identity() });
      channel.close(
        `fencing token ${fencingToken} is below ${this.#highestToken}: this controller was deposed`,
      );
      return;
    }
    if (fencingToken !== undefined) this.#highestToken = fencingToken;
    if (protocol !== FEED_PROTOCOL_VERSION) {
      channel.send({ type: "hello", identity: this.identity() });
      channel.close(
        `the controller speaks feed protocol ${protocol}, this data plane ${FEED_PROTOCOL_VERSION}`,
      );
      return;
    }
    const previous = this.#controller;
    this.#controller = channel;
    if (previous !== null && previous !== channel) previous.close("a newer controller attached");
    if (this.#controllerLostAt !== null) {
      this.#event({
        type: "dataplane.controller-connected",
        reason: "data-plane-feed",
        message: `controller (pid ${controllerPid}) attached after ${((Date.now() - this.#controllerLostAt) / 1000).toFixed(1)}s without one`,
      });
    }
    this.#controllerLostAt = null;
    this.#reportFromSecond = 0;
    this.#lastReport = null;
    channel.send({ type: "hello", identity: this.identity() });
    channel.onClose((why) => {
      if (this.#controller !== channel) return;
      this.#controller = null;
      this.#controllerLostAt = Date.now();
      // Faults are an experiment: it stops when its experimenter is gone.
      const hadFaults = this.#serving.faults.list().length;
      this.#serving.clearFaults();
      this.#event({
        type: "dataplane.controller-lost",
        reason: "data-plane-feed",
        message: `controller disconnected at ${new Date().toISOString()} (${why}); serving with snapshot v${this.#applied?.version ?? 0}${hadFaults > 0 ? `; ${hadFaults} fault(s) cleared` : ""}`,
      });
    });
  }

  /** True (and an event says so) when `token` is below the highest seen: the order is a deposed leader's. */
  #isStale(token: number | undefined, what: string): boolean {
    if (token === undefined || this.#highestToken === null || token >= this.#highestToken) return false;
    this.#event({
      type: "dataplane.fenced",
      reason: "fenced",
      message: `${what} with fencing token ${token}, below ${this.#highestToken}: refused (it comes from a deposed leader)`,
      data: { token, highest: this.#highestToken },
    });
    return true;
  }

  #onMessage(channel: LineChannel<ControllerMessage, DataPlaneMessage>, message: ControllerMessage): void {
    if (message.type === "attach") {
      this.#attach(channel, message.controller.pid, message.protocol, message.fencingToken);
      return;
    }
    if (message.type === "inspect") {
      channel.send({
        type: "inspection",
        identity: this.identity(),
        services: this.#state(),
        stores: this.#stores.state(),
      });
      if (channel !== this.#controller) channel.end("inspected");
      return;
    }
    // Only the attached controller gives orders.
    if (channel !== this.#controller) {
      channel.close("not attached");
      return;
    }
    switch (message.type) {
      case "snapshot":
        if (this.#isStale(message.snapshot.fencingToken, `snapshot v${message.snapshot.version}`)) {
          channel.send({
            type: "ack",
            version: message.snapshot.version,
            ok: false,
            error: `HS_FENCED: fencing token ${message.snapshot.fencingToken} is below ${this.#highestToken}`,
          });
          return;
        }
        if (message.snapshot.fencingToken !== undefined) {
          this.#highestToken = Math.max(this.#highestToken ?? 0, message.snapshot.fencingToken);
        }
        this.#pending = message.snapshot;
        this.#applyPending(channel);
        return;
      case "stop":
        void this.stop();
        return;
      case "handover":
        void this.#handOver(channel, message.id);
        return;
      case "metrics":
        void this.#serving.stats.metricsText().then((text) =>
          channel.send({
            type: "metrics",
            id: message.id,
            contentType: this.#serving.stats.contentType,
            text,
          }),
        );
        return;
    }
  }

  /** Apply the newest pending snapshot; snapshots that arrive meanwhile coalesce into the next run. */
  #applyPending(channel: LineChannel<ControllerMessage, DataPlaneMessage>): void {
    if (this.#applying !== null) return;
    const snapshot = this.#pending;
    if (snapshot === null) return;
    this.#pending = null;
    this.#applying = this.#apply(snapshot).then(
      () => {
        this.#applied = this.#effective(snapshot);
        this.#source = "feed";
        try {
          persistSnapshot(this.#paths.snapshot, this.#applied);
        } catch (error) {
          this.#event({
            type: "dataplane.persist-failed",
            reason: "data-plane-snapshot",
            message: `snapshot v${snapshot.version} not persisted: ${(error as Error).message}`,
          });
        }
        channel.send({ type: "ack", version: snapshot.version, ok: true });
      },
      (error: unknown) => {
        channel.send({
          type: "ack",
          version: snapshot.version,
          ok: false,
          error:
            error instanceof Error
              ? `${(error as { code?: string }).code ?? "error"}: ${error.message}`
              : String(error),
        });
      },
    );
    void this.#applying.finally(() => {
      this.#applying = null;
      if (this.#pending !== null) this.#applyPending(this.#controller ?? channel);
    });
  }

  /**
   * Serve as `snapshot` says: each service on its engine. The embedded listeners first, so a
   * service moving to HAProxy has released its port before HAProxy binds it.
   */
  async #apply(snapshot: Snapshot): Promise<void> {
    const haproxy = snapshot.services.filter((s) => engineOf(s) === "haproxy");
    const embedded = snapshot.services.filter((s) => engineOf(s) !== "haproxy");
    await this.#serving.apply({ ...snapshot, services: embedded });
    // Other workers leave haproxy services alone: worker 0's HAProxy serves them.
    if (this.#haproxy !== null) await this.#haproxy.apply(haproxy);
    // Absent: a controller that has not loaded its stores' topology yet; keep what is served.
    if (snapshot.stores !== undefined) await this.#stores.apply(snapshot.stores);
  }

  #effective(snapshot: Snapshot): Snapshot {
    const embedded = this.#serving.effective(snapshot);
    const stores = snapshot.stores ?? this.#applied?.stores;
    return {
      ...embedded,
      ...(stores === undefined ? {} : { stores }),
      services: snapshot.services.map((s, i) =>
        engineOf(s) === "haproxy" && this.#haproxy !== null
          ? this.#haproxy.effective(s)
          : embedded.services[i]!,
      ),
    };
  }

  #state(): Record<string, Record<string, unknown>> {
    return { ...this.#serving.state(), ...(this.#haproxy?.state() ?? {}) };
  }

  #report(): void {
    const channel = this.#controller;
    if (channel === null) return;
    // A controller that does not read is not fed without bound; it gets a full report later.
    if (channel.pendingBytes > 8 * 1024 * 1024) return;
    const now = Date.now();
    const nowSecond = Math.floor(now / 1000);
    const fromSecond = this.#reportFromSecond === 0 ? nowSecond - 300 : this.#reportFromSecond;
    const identity = this.identity();
    const services = this.#state();
    const stores = this.#stores.state();
    const windows = this.#serving.stats.exportWindows(fromSecond, nowSecond);
    const state = JSON.stringify([identity, services, stores]);
    const last = this.#lastReport;
    if (
      last !== null &&
      last.state === state &&
      this.#events.length === 0 &&
      this.#droppedEvents === 0 &&
      windowsAreEmpty(windows) &&
      // Half a tick of slack: timers fire late, never early, so the tick after the interval sends.
      now - last.at < IDLE_REPORT_INTERVAL_MS - REPORT_INTERVAL_MS / 2
    ) {
      return;
    }
    this.#lastReport = { at: now, state };
    const events = this.#events;
    this.#events = [];
    if (this.#droppedEvents > 0) {
      events.unshift({
        at: now,
        type: "dataplane.events-dropped",
        reason: "data-plane-feed",
        message: `${this.#droppedEvents} event(s) dropped while no controller was connected`,
      });
      this.#droppedEvents = 0;
    }
    channel.send({ type: "report", at: now, identity, services, stores, windows, events });
    // The previous second may still get late samples recorded with its timestamp: send it again.
    this.#reportFromSecond = nowSecond - 1;
  }

  #event(e: Omit<FeedEvent, "at">): void {
    const event: FeedEvent = { at: Date.now(), ...e };
    this.#log({ msg: "event", event });
    if (this.#events.length >= MAX_PENDING_EVENTS) {
      this.#events.shift();
      this.#droppedEvents++;
    }
    this.#events.push(event);
  }

  /**
   * Planned restart: start a successor with the listening sockets (feed included), wait until it
   * serves, then stop accepting here and drain. The successor runs the code on disk now, so this
   * is also how a new Homeostat version takes over the traffic.
   */
  async #handOver(channel: LineChannel<ControllerMessage, DataPlaneMessage>, id: string): Promise<void> {
    if (this.#stopping !== null || this.#feedServer === null) return;
    const feedFd = listeningFd(this.#feedServer);
    if (feedFd === null) {
      channel.send({ type: "handover-failed", id, error: "the feed socket has no descriptor" });
      return;
    }
    if (this.#applied !== null) persistSnapshot(this.#paths.snapshot, this.#applied);
    const listeners = [...this.#serving.listeningFds()];
    // Child descriptors: 3 = feed, 4 = ready pipe, 5… = listeners in the order given.
    const stdio: (number | "ignore" | "pipe")[] = ["ignore", "ignore", "ignore", feedFd, "pipe"];
    for (const [, fd] of listeners) stdio.push(fd);
    const logFd = openSync(this.#paths.log, "a");
    stdio[1] = logFd;
    stdio[2] = logFd;
    const args = [
      ...process.execArgv,
      modulePath("./main.ts", import.meta.url),
      "--state-dir",
      this.#stateDir,
      "--worker",
      String(this.#worker),
      ...(this.#reusePort ? ["--reuse-port"] : []),
      "--inherit",
      JSON.stringify({
        feedFd: 3,
        readyFd: 4,
        generation: this.#generation + 1,
        listeners: listeners.map(([port], index) => [port, 5 + index]),
      }),
    ];
    const child = spawn(process.execPath, args, { stdio, detached: true });
    closeSync(logFd);
    const ready = await new Promise<boolean>((resolve) => {
      const pipe = child.stdio[4];
      let text = "";
      const timer = setTimeout(() => resolve(false), 15_000);
      pipe?.on("data", (chunk: Buffer) => {
        text += chunk.toString();
        if (text.includes("ready")) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      child.once("exit", () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    child.stdio[4]?.destroy();
    if (!ready || child.pid === undefined) {
      child.kill("SIGKILL");
      channel.send({ type: "handover-failed", id, error: "the successor did not start serving within 15s" });
      this.#event({
        type: "dataplane.handover-failed",
        reason: "data-plane-handover",
        message: "successor did not start",
      });
      return;
    }
    child.unref();
    this.#log({ msg: "handed over", successor: child.pid });
    channel.send({ type: "handover-started", id, successorPid: child.pid });
    this.#stopping = (async () => {
      if (this.#reportTimer) clearInterval(this.#reportTimer);
      // The successor holds the same sockets: closing ours refuses nothing.
      this.#feedServer?.close();
      this.#controller?.end("handed over to a successor");
      // The successor adopts HAProxy as it is: it keeps serving through the handover.
      // Store ports are bound with SO_REUSEPORT: the successor has bound them beside ours.
      await Promise.all([this.#serving.handOff(), this.#haproxy?.release(), this.#stores.close()]);
      this.#onStopped();
    })();
  }

  #writeProcessFile(): void {
    const identity = this.identity();
    writeFileSync(
      this.#paths.process,
      `${JSON.stringify({ pid: identity.pid, startTime: identity.startTime, startedAt: identity.startedAt, generation: identity.generation, worker: this.#worker, feed: this.#paths.feed })}\n`,
      { mode: 0o600 },
    );
  }

  #removeOwnFiles(): void {
    try {
      const record = JSON.parse(readFileSync(this.#paths.process, "utf8")) as { pid?: number };
      if (record.pid !== process.pid) return; // a successor owns them now
      rmSync(this.#paths.process, { force: true });
      rmSync(this.#paths.feed, { force: true });
      // The fleet is being stopped: a data plane started later must not serve these instances.
      rmSync(this.#paths.snapshot, { force: true });
    } catch {
      // Nothing to remove.
    }
  }
}

/** The engine a service's resolved traffic settings name (embedded when unset). */
function engineOf(service: Snapshot["services"][number]): string {
  return typeof service.traffic.engine === "string" ? service.traffic.engine : "embedded";
}

/** True when something accepts connections on the feed socket at `path`. */
async function feedAnswers(path: string): Promise<boolean> {
  try {
    (await connectUnix(path)).destroy();
    return true;
  } catch {
    return false;
  }
}

/** No second of traffic in an export: nothing for the controller's windows. */
function windowsAreEmpty(windows: WindowsExport): boolean {
  for (const w of Object.values(windows.services)) {
    if (w.requests.length > 0 || w.criticality.length > 0) return false;
    for (const _ in w.releases) return false;
    for (const _ in w.instances) return false;
  }
  return true;
}
