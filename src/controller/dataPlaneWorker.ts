/**
 * The controller's link to one data-plane worker process: start it or adopt the one a previous
 * controller left, attach over its feed socket, send it snapshots, keep what it reports (listener
 * state, decision windows, events), restart it when it dies (an incident, timed like any other),
 * and ask it to hand over to a successor on a planned restart.
 */

import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import {
  type ControllerMessage,
  type DataPlaneIdentity,
  type DataPlaneMessage,
  dataPlaneMessageSchema,
  FEED_PROTOCOL_VERSION,
  type FeedEvent,
  type Snapshot,
} from "../dataplane/feedProtocol.ts";
import { LineChannel } from "../dataplane/lineChannel.ts";
import { type DataPlanePaths, dataPlanePaths, ensureDataPlaneDir } from "../dataplane/paths.ts";
import { type DataPlaneProcessRecord, liveDataPlane } from "../dataplane/processRecord.ts";
import { killProcessGroup } from "../drivers/local/processGroup.ts";
import { HomeostatError } from "../errors.ts";
import { modulePath } from "../lib/modulePath.ts";
import { isProcessAlive, processStartTime } from "../lib/procStat.ts";
import { connectUnix } from "../lib/sockets.ts";
import type { StateStore } from "../store/index.ts";
import { TrafficStats } from "../traffic/stats/index.ts";

/** How long a data plane may take from spawn to accepting on its feed socket. */
export const DATA_PLANE_START_BOUND_MS = 10_000;
/** After a crash restart, the data plane must stay up this long for its incident to close. */
export const DATA_PLANE_STABILIZATION_MS = 10_000;
/** How long a worker that was told to stop may take beyond its drain before it is killed. */
const STOP_MARGIN_MS = 5_000;

type Channel = LineChannel<DataPlaneMessage, ControllerMessage>;

export interface DataPlaneWorkerOptions {
  index: number;
  stateDir: string;
  store: StateStore;
  reusePort: boolean;
  controller: { pid: number; startedAt: number };
  /** The snapshot this worker should serve now, with a fresh version. */
  snapshot: (worker: DataPlaneWorker) => Snapshot;
  onEvent: (event: FeedEvent) => void;
  now: () => number;
  /**
   * Checked before this worker starts, kills or stops a data-plane process: throws (HS_FENCED)
   * when this controller no longer leads. A deposed leader must not replace the data plane the
   * new leader feeds.
   */
  fence?: (what: string) => void;
}

export class DataPlaneWorker {
  readonly index: number;
  /** The decision windows this worker reported (a mirror of its own). */
  readonly stats = new TrafficStats();
  readonly #options: DataPlaneWorkerOptions;
  readonly #paths: DataPlanePaths;
  #channel: Channel | null = null;
  #process: Pick<DataPlaneProcessRecord, "pid" | "startTime"> | null = null;
  #identity: DataPlaneIdentity | null = null;
  #sentVersion = 0;
  #ackedVersion = 0;
  #ackWaiters: { version: number; resolve: (error: string | null) => void }[] = [];
  #reported: Record<string, Record<string, unknown>> = {};
  #lastReportAt: number | null = null;
  #restarts = 0;
  #openIncident: number | null = null;
  #stabilizeTimer: NodeJS.Timeout | null = null;
  #handover: { resolve: () => void; successorPid: number | null } | null = null;
  #reconnecting: Promise<void> | null = null;
  readonly #metricsWaiters = new Map<string, (m: { contentType: string; text: string }) => void>();
  #nextRequestId = 1;
  #closed = false;
  #watch: NodeJS.Timeout | null = null;
  /** Why this worker stopped acting on the data plane (a newer leader feeds it), or null. */
  #fenced: string | null = null;

  constructor(options: DataPlaneWorkerOptions) {
    this.index = options.index;
    this.#options = options;
    this.#paths = dataPlanePaths(options.stateDir, options.index);
  }

  get pid(): number | null {
    return this.#process?.pid ?? null;
  }
  get connected(): boolean {
    return this.#channel !== null;
  }
  get identity(): DataPlaneIdentity | null {
    return this.#identity;
  }
  get sentVersion(): number {
    return this.#sentVersion;
  }
  get ackedVersion(): number {
    return this.#ackedVersion;
  }
  get reported(): Record<string, Record<string, unknown>> {
    return this.#reported;
  }
  get lastReportAt(): number | null {
    return this.#lastReportAt;
  }
  get restarts(): number {
    return this.#restarts;
  }

  /**
   * Adopt the running worker or start one, attach, and have it serve the current snapshot.
   * @throws HomeostatError HS_PORT_IN_USE when a service port is taken, HS_INTERNAL otherwise
   */
  async start(): Promise<void> {
    ensureDataPlaneDir(this.#paths);
    const adopted = liveDataPlane(this.#options.stateDir, this.index);
    if (adopted !== null) {
      this.#process = adopted;
      await this.#connect();
      this.#note(
        "dataplane.adopted",
        "data-plane-adopted",
        `adopted ${this.#name()} (pid ${adopted.pid}) serving snapshot v${this.#identity?.appliedVersion ?? 0}`,
      );
    } else {
      await this.#spawnAndConnect();
      this.#note(
        "dataplane.started",
        "data-plane-started",
        `${this.#name()} started (pid ${this.#process?.pid})`,
      );
    }
    const error = await this.push();
    if (error !== null) {
      await this.close(0);
      if (error.startsWith("HS_PORT_IN_USE")) {
        throw new HomeostatError("HS_PORT_IN_USE", error.replace(/^HS_PORT_IN_USE: /, ""));
      }
      throw new HomeostatError("HS_INTERNAL", `${this.#name()} refused its configuration: ${error}`);
    }
    // A worker that died while connected closes the feed; this also catches one killed between
    // two reads, or whose close went unnoticed.
    this.#watch = setInterval(() => this.#checkAlive(), 500);
    this.#watch.unref();
  }

  /** Send the current snapshot; resolves with null once applied, or why not (10 s at most). */
  push(): Promise<string | null> {
    const snapshot = this.#options.snapshot(this);
    this.#sentVersion = snapshot.version;
    this.#channel?.send({ type: "snapshot", snapshot });
    return this.#waitForAck(snapshot.version, 10_000).then((r) =>
      r === "timeout" ? "no acknowledgement within 10s" : r,
    );
  }

  /** True once this worker serves every snapshot sent to it so far, false after `timeoutMs`. */
  async settled(timeoutMs: number): Promise<boolean> {
    if (this.#ackedVersion >= this.#sentVersion) return true;
    return (await this.#waitForAck(this.#sentVersion, timeoutMs)) === null;
  }

  /** Requests in flight to `instance` as this worker last reported. */
  inFlight(service: string, instance: string): number {
    const rows = this.#reported[service]?.endpoints;
    if (!Array.isArray(rows)) return 0;
    let total = 0;
    for (const row of rows as { instance?: string; inFlight?: number }[]) {
      if (row.instance === instance && typeof row.inFlight === "number") total += row.inFlight;
    }
    return total;
  }

  /** Instances this worker's outlier detection has ejected (as last reported). */
  ejected(service: string): string[] {
    const rows = this.#reported[service]?.endpoints;
    if (!Array.isArray(rows)) return [];
    return (rows as { instance?: string; ejected?: boolean; draining?: boolean }[])
      .filter((row) => row.ejected === true && row.draining !== true && typeof row.instance === "string")
      .map((row) => row.instance as string);
  }

  metrics(): Promise<{ contentType: string; text: string }> {
    const channel = this.#channel;
    if (channel === null) {
      return Promise.reject(
        new HomeostatError("HS_CONTROLLER_UNREACHABLE", `${this.#name()} is not connected`),
      );
    }
    const id = String(this.#nextRequestId++);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#metricsWaiters.delete(id);
        reject(new HomeostatError("HS_CONTROLLER_UNREACHABLE", `${this.#name()} did not answer within 5s`));
      }, 5_000);
      this.#metricsWaiters.set(id, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      channel.send({ type: "metrics", id });
    });
  }

  /**
   * Planned restart: the worker starts a successor that inherits its listening sockets, then
   * drains and exits. Resolves once the successor is attached and serves the current snapshot.
   */
  async restart(): Promise<{ from: number; to: number }> {
    const channel = this.#channel;
    const from = this.#process?.pid;
    if (channel === null || from === undefined) {
      throw new HomeostatError("HS_CONFLICT", `${this.#name()} is not connected; it cannot hand over now`);
    }
    if (this.#handover !== null)
      throw new HomeostatError("HS_CONFLICT", "a data-plane restart is already under way");
    const done = new Promise<void>((resolve) => {
      this.#handover = { resolve, successorPid: null };
    });
    channel.send({ type: "handover", id: String(this.#nextRequestId++) });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), 30_000);
    });
    const result = await Promise.race([done, timeout]);
    clearTimeout(timer);
    if (result === "timeout") {
      this.#handover = null;
      throw new HomeostatError(
        "HS_INTERNAL",
        `the successor of ${this.#name()} did not take over within 30s`,
      );
    }
    const to = this.#process?.pid ?? 0;
    this.#note(
      "dataplane.restarted",
      "data-plane-handover",
      `${this.#name()} handed over from pid ${from} to pid ${to} (planned restart)`,
    );
    return { from, to };
  }

  /**
   * Let go of the worker and leave it serving (`homeostat down --keep-fleet`): the feed is closed
   * without a stop, so the data plane keeps serving its last snapshot, as after a controller crash,
   * until the next controller adopts it. Nothing is restarted once detached.
   */
  async detach(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#watch) clearInterval(this.#watch);
    if (this.#stabilizeTimer) clearTimeout(this.#stabilizeTimer);
    this.#channel?.close("controller detached: the data plane keeps serving");
    this.#channel = null;
  }

  /** Stop the worker: it stops accepting, drains (up to `drainMs`), exits; killed after that. */
  async close(drainMs: number): Promise<void> {
    if (this.#closed) return;
    if (!this.#mayAct("stop the data plane")) {
      // Deposed: the data plane is the new leader's now; let go of it as on a detach.
      this.detach();
      return;
    }
    this.#closed = true;
    if (this.#watch) clearInterval(this.#watch);
    if (this.#stabilizeTimer) clearTimeout(this.#stabilizeTimer);
    const record = this.#process;
    this.#channel?.send({ type: "stop" });
    if (record !== null) {
      const deadline = Date.now() + drainMs + STOP_MARGIN_MS;
      if (this.#channel === null && isProcessAlive(record.pid, record.startTime))
        process.kill(record.pid, "SIGTERM");
      while (isProcessAlive(record.pid, record.startTime) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      if (isProcessAlive(record.pid, record.startTime)) killProcessGroup(record.pid, "SIGKILL");
    }
    this.#channel?.close("controller stopped the data plane");
    this.#channel = null;
  }

  // --- connection ---

  async #spawnAndConnect(): Promise<void> {
    if (!this.#mayAct("start the data plane")) {
      throw new HomeostatError("HS_FENCED", `${this.#name()}: ${this.#fenced}`);
    }
    const logFd = openSync(this.#paths.log, "a");
    const main = modulePath("../dataplane/main.ts", import.meta.url);
    const args = [main, "--state-dir", this.#options.stateDir, "--worker", String(this.index)];
    if (this.#options.reusePort) args.push("--reuse-port");
    let child: ReturnType<typeof spawn>;
    try {
      // Detached, in its own process group and session: it outlives this controller, and a Ctrl-C
      // aimed at the controller's terminal does not reach it.
      child = spawn(process.execPath, args, { detached: true, stdio: ["ignore", logFd, logFd] });
    } finally {
      closeSync(logFd);
    }
    child.unref();
    const pid = child.pid;
    if (pid === undefined) throw new HomeostatError("HS_INTERNAL", `${this.#name()} could not be started`);
    let exited: string | null = null;
    child.once("exit", (code, signal) => {
      exited = `exited with ${signal ?? `code ${code}`}`;
    });
    this.#process = { pid, startTime: processStartTime(pid) };
    const deadline = Date.now() + DATA_PLANE_START_BOUND_MS;
    for (;;) {
      if (exited !== null) {
        throw new HomeostatError("HS_INTERNAL", `${this.#name()} ${exited} at start; see ${this.#paths.log}`);
      }
      const record = liveDataPlane(this.#options.stateDir, this.index);
      if (record !== null && record.pid === pid) {
        try {
          await this.#connect();
          return;
        } catch {
          // Not accepting yet.
        }
      }
      if (Date.now() > deadline) {
        killProcessGroup(pid, "SIGKILL");
        throw new HomeostatError(
          "HS_INTERNAL",
          `${this.#name()} did not start within ${DATA_PLANE_START_BOUND_MS} ms; see ${this.#paths.log}`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Connect to the feed, attach, and wait for the worker's hello. */
  async #connect(): Promise<void> {
    const socket = await connectUnix(this.#paths.feed);
    let established = false;
    const hello = new Promise<DataPlaneIdentity>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error("no hello within 5s"));
        channel.close("no hello");
      }, 5_000);
      const channel: Channel = new LineChannel<DataPlaneMessage, ControllerMessage>(
        socket,
        dataPlaneMessageSchema,
        (m) => {
          if (m.type === "hello") {
            clearTimeout(timer);
            established = true;
            resolve(m.identity);
          }
          this.#onMessage(channel, m);
        },
      );
      channel.onClose((why) => {
        clearTimeout(timer);
        if (!established) {
          if (this.#channel === channel) this.#channel = null;
          reject(new Error(why));
        } else this.#onDisconnect(channel, why);
      });
      const fencingToken = this.#options.store.fencingToken;
      channel.send({
        type: "attach",
        protocol: FEED_PROTOCOL_VERSION,
        controller: this.#options.controller,
        ...(fencingToken === null ? {} : { fencingToken }),
      });
      this.#channel = channel;
    });
    const identity = await hello;
    if (identity.protocol !== FEED_PROTOCOL_VERSION) {
      throw new HomeostatError(
        "HS_INTERNAL",
        `${this.#name()} speaks feed protocol ${identity.protocol}, this controller ${FEED_PROTOCOL_VERSION}`,
      );
    }
    const own = this.#options.store.fencingToken;
    if (identity.fencingToken != null && own !== null && identity.fencingToken > own) {
      // The data plane takes orders from a newer leader: this controller was deposed.
      this.#fenced = `${this.#name()} takes orders from fencing token ${identity.fencingToken}, above this controller's ${own}`;
      throw new HomeostatError("HS_FENCED", this.#fenced);
    }
    this.#identity = identity;
    this.#process = { pid: identity.pid, startTime: identity.startTime };
    this.#ackedVersion = identity.appliedVersion;
    this.#sentVersion = Math.max(this.#sentVersion, identity.appliedVersion);
  }

  #onMessage(channel: Channel, m: DataPlaneMessage): void {
    if (channel !== this.#channel) return;
    switch (m.type) {
      case "hello":
      case "inspection":
        return;
      case "ack": {
        if (m.ok) this.#ackedVersion = Math.max(this.#ackedVersion, m.version);
        const error = m.ok ? null : (m.error ?? "refused");
        if (!m.ok) {
          this.#note(
            "dataplane.snapshot-refused",
            "data-plane-snapshot",
            `${this.#name()} refused snapshot v${m.version}: ${error}`,
          );
        }
        const waiting = this.#ackWaiters.filter((w) => w.version <= m.version);
        this.#ackWaiters = this.#ackWaiters.filter((w) => w.version > m.version);
        for (const w of waiting) w.resolve(error);
        return;
      }
      case "report":
        this.#identity = m.identity;
        this.#lastReportAt = this.#options.now();
        this.#reported = m.services;
        this.stats.importWindows(m.windows);
        for (const event of m.events) {
          this.#options.onEvent(
            this.index === 0 ? event : { ...event, data: { ...event.data, worker: this.index } },
          );
        }
        return;
      case "handover-started":
        if (this.#handover !== null) this.#handover.successorPid = m.successorPid;
        return;
      case "handover-failed":
        this.#note(
          "dataplane.handover-failed",
          "data-plane-handover",
          `${this.#name()} handover failed: ${m.error}`,
        );
        this.#handover = null;
        return;
      case "metrics": {
        const waiter = this.#metricsWaiters.get(m.id);
        this.#metricsWaiters.delete(m.id);
        waiter?.({ contentType: m.contentType, text: m.text });
        return;
      }
    }
  }

  #waitForAck(version: number, timeoutMs: number): Promise<string | null | "timeout"> {
    if (this.#ackedVersion >= version) return Promise.resolve(null);
    return new Promise((resolve) => {
      const waiter = {
        version,
        resolve: (error: string | null) => {
          clearTimeout(timer);
          resolve(error);
        },
      };
      const timer = setTimeout(() => {
        this.#ackWaiters = this.#ackWaiters.filter((w) => w !== waiter);
        resolve("timeout");
      }, timeoutMs);
      this.#ackWaiters.push(waiter);
    });
  }

  /** False (and this worker stops acting) when the fence says this controller no longer leads. */
  #mayAct(what: string): boolean {
    if (this.#fenced !== null) return false;
    try {
      this.#options.fence?.(`${what} (${this.#name()})`);
      return true;
    } catch (error) {
      this.#fenced = error instanceof Error ? error.message : String(error);
      return false;
    }
  }

  #onDisconnect(channel: Channel, why: string): void {
    if (channel !== this.#channel) return;
    this.#channel = null;
    if (this.#closed) return;
    this.#reconnect(why);
  }

  /** After the feed closed: a handover's successor, the same process (transient), or a restart. */
  #reconnect(why: string): void {
    this.#reconnecting ??= (async () => {
      const detectedAt = this.#options.now();
      const lastGoodAt = this.#lastReportAt;
      const handover = this.#handover;
      const deadline = Date.now() + DATA_PLANE_START_BOUND_MS;
      while (!this.#closed && this.#fenced === null) {
        const record = liveDataPlane(this.#options.stateDir, this.index);
        const previous = this.#process?.pid;
        const ours =
          record !== null &&
          (handover === null ||
            (handover.successorPid !== null
              ? record.pid === handover.successorPid
              : record.pid !== previous));
        if (record !== null && ours) {
          try {
            await this.#connect();
            if ((await this.push()) === null) {
              if (handover !== null) {
                this.#handover = null;
                handover.resolve();
              }
              return;
            }
          } catch {
            // Not accepting yet, or went away again.
          }
        } else if (
          handover === null &&
          (this.#process === null || !isProcessAlive(this.#process.pid, this.#process.startTime))
        ) {
          if (!this.#mayAct("restart the data plane")) return;
          await this.#restartAfterCrash(why, detectedAt, lastGoodAt);
          return;
        }
        if (Date.now() > deadline) {
          if (!this.#mayAct("replace a data plane that does not answer")) return;
          // A successor that never attached, or a process alive but not answering for the whole
          // start bound: wedged. Replace it.
          if (handover !== null) this.#handover = null;
          if (this.#process !== null && isProcessAlive(this.#process.pid, this.#process.startTime)) {
            killProcessGroup(this.#process.pid, "SIGKILL");
          }
          await this.#restartAfterCrash(
            `${why}; alive but not answering on the feed`,
            detectedAt,
            lastGoodAt,
          );
          return;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })().finally(() => {
      this.#reconnecting = null;
    });
  }

  async #restartAfterCrash(why: string, detectedAt: number, lastGoodAt: number | null): Promise<void> {
    const store = this.#options.store;
    const dead = this.#process?.pid;
    const instance = this.index === 0 ? "dataplane" : `dataplane-${this.index}`;
    const incident = store.openIncident({
      service: "dataplane",
      instance,
      kind: "exited",
      reason: "exited",
      detectedAt,
      lastGoodAt,
      ttdMs: lastGoodAt === null ? null : detectedAt - lastGoodAt,
      detail: `${this.#name()} (pid ${dead ?? "?"}) is gone: ${why}`,
    });
    store.addIncidentEvent(incident.id, {
      at: detectedAt,
      phase: "detected",
      detail: `pid ${dead ?? "?"} gone (${why})`,
    });
    this.#note(
      "dataplane.exited",
      "data-plane-exited",
      `${this.#name()} (pid ${dead ?? "?"}) is gone (${why}); restarting it`,
      {
        incident: incident.id,
      },
    );
    const actionAt = this.#options.now();
    store.updateIncident(incident.id, { actionStartedAt: actionAt });
    store.addIncidentEvent(incident.id, {
      at: actionAt,
      phase: "action-started",
      detail: `starting a new ${this.#name()}`,
    });
    for (;;) {
      if (this.#closed) return;
      try {
        await this.#spawnAndConnect();
        const error = await this.push();
        if (error !== null) throw new Error(error);
        break;
      } catch (error) {
        this.#note(
          "dataplane.restart-failed",
          "data-plane-exited",
          `${this.#name()} restart failed: ${(error as Error).message}; trying again`,
        );
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
    this.#restarts++;
    const mitigatedAt = this.#options.now();
    store.updateIncident(incident.id, { mitigatedAt, ttrMs: mitigatedAt - detectedAt });
    store.addIncidentEvent(incident.id, {
      at: mitigatedAt,
      phase: "mitigated",
      detail: `new ${this.#name()} (pid ${this.#process?.pid}) serves snapshot v${this.#ackedVersion}`,
    });
    this.#note(
      "dataplane.restarted",
      "data-plane-restarted",
      `${this.#name()} restarted (pid ${this.#process?.pid}) ${mitigatedAt - detectedAt} ms after it was found gone`,
      { incident: incident.id },
    );
    this.#openIncident = incident.id;
    if (this.#stabilizeTimer) clearTimeout(this.#stabilizeTimer);
    const pid = this.#process?.pid;
    this.#stabilizeTimer = setTimeout(() => {
      const open = this.#openIncident;
      if (open === null || this.#process?.pid !== pid || this.#channel === null) return;
      const at = this.#options.now();
      store.updateIncident(open, { status: "closed", closedAt: at });
      store.addIncidentEvent(open, {
        at,
        phase: "stabilized",
        detail: `${this.#name()} served for ${DATA_PLANE_STABILIZATION_MS / 1000}s after its restart`,
      });
      this.#openIncident = null;
    }, DATA_PLANE_STABILIZATION_MS);
    this.#stabilizeTimer.unref();
  }

  #checkAlive(): void {
    if (this.#closed || this.#reconnecting !== null || this.#handover !== null) return;
    const record = this.#process;
    if (record === null || isProcessAlive(record.pid, record.startTime)) return;
    const channel = this.#channel;
    this.#channel = null;
    channel?.close("the data plane process is gone");
    this.#reconnect("the data plane process is gone");
  }

  #name(): string {
    return this.index === 0 ? "the data plane" : `data-plane worker ${this.index}`;
  }

  #note(type: string, reason: string, message: string, data?: Record<string, unknown>): void {
    this.#options.onEvent({
      at: this.#options.now(),
      type,
      reason,
      message,
      ...(data || this.index > 0
        ? { data: { ...data, ...(this.index > 0 ? { worker: this.index } : {}) } }
        : {}),
    });
  }
}
