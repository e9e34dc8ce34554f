/**
 * The embedded default driver: every instance is a local process leading its own process group,
 * identified by (pid, kernel start time), with stdout/stderr appended to `<logDir>/<instance>.log`.
 * See `docs/drivers.md`.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { HomeostatError } from "../../errors.ts";
import { isProcessAlive, processStartTime } from "../../lib/procStat.ts";
import {
  describeHolders,
  judgePortIdentity,
  type PortIdentity,
  type PortIdentityChecker,
} from "../../observe/portIdentity.ts";
import type { Driver, ExitInfo, InstanceLaunch, RuntimeHandle, RuntimeStatus } from "../driver.ts";
import { launchVariables, renderArgs } from "./argTemplate.ts";
import {
  appendLogLine,
  closeQuietly,
  instanceLogPath,
  openInstanceLog,
  writeLogLine,
} from "./instanceLog.ts";
import { buildLaunchEnv } from "./launchEnv.ts";
import { findPortOwners } from "./portOwner.ts";
import { groupHasMembers, killProcessGroup } from "./processGroup.ts";
import { findStrays, type Stray } from "./strays.ts";
import { terminateGroup } from "./terminateGroup.ts";

/** How often adopted processes (not our children, so no `exit` event) are checked in /proc. */
const ADOPTED_POLL_MS = 250;
/** How often a stop checks whether the process group is empty yet. */
const STOP_POLL_MS = 50;

export interface LocalProcessDriverOptions {
  /** Directory for the per-instance log files (created if missing). */
  logDir: string;
  /** Clock for exit timestamps and log headers (epoch ms). */
  now?: () => number;
  /** How long processes may survive SIGKILL before `stop` gives up with HS_DRIVER_STOP_FAILED. */
  killTimeoutMs?: number;
}

/** One run of one instance: a spawned child of ours, or a process adopted from an earlier controller. */
interface Run {
  instance: string;
  handle: RuntimeHandle;
  /** The leader's pid is its group id: instances are spawned detached. */
  pgid: number;
  /** Null for adopted processes: they are not our children, so only /proc tells when they exit. */
  child: ChildProcess | null;
  exit: ExitInfo | null;
  stopping: Promise<ExitInfo | null> | null;
  poller: NodeJS.Timeout | null;
}

/**
 * Runs instances as local processes.
 *
 * The driver never keeps the event loop alive by itself: children and the adoption poller are
 * unref'd, so a controller can exit after `stopAll` (or crash) and leave nothing blocking. Exit
 * notifications still arrive for as long as the controller runs, because libuv keeps watching
 * unref'd children; pending `start`/`stop` calls hold ref'd timers, so awaiting them is safe.
 */
export class LocalProcessDriver implements Driver, PortIdentityChecker {
  readonly name = "local";
  readonly #logDir: string;
  readonly #now: () => number;
  readonly #killTimeoutMs: number;
  readonly #runs = new Map<string, Run>();
  readonly #listeners: Array<(instance: string, exit: ExitInfo) => void> = [];

  constructor(options: LocalProcessDriverOptions) {
    this.#logDir = options.logDir;
    this.#now = options.now ?? Date.now;
    this.#killTimeoutMs = options.killTimeoutMs ?? 10_000;
  }

  /**
   * Whose socket answers on `instance`'s port: `ours` only when every listener belongs to the
   * instance's process group (so a wrapper that forks or execs the server is still itself).
   */
  portIdentity(instance: string, port: number): PortIdentity {
    const run = this.#runs.get(instance);
    // Not running (its exit is on its way): nothing of it can listen.
    if (!run || run.exit !== null) return { verdict: "no-listener" };
    return judgePortIdentity(findPortOwners(port, { preferGroup: run.pgid }), run.pgid);
  }

  /**
   * Called before `start` by a controller whose instances serve on their port: resolves when
   * nothing but (dying leftovers of) this instance's previous run listens on `port`, else
   * rejects with HS_INSTANCE_PORT_HELD naming the holders. A new process could not bind the
   * port, and the probes would reach the holder instead.
   */
  async ensurePortFree(instance: string, port: number): Promise<void> {
    const previous = this.#runs.get(instance);
    // Already running: #spawn refuses it with its own error.
    if (previous && previous.exit === null) return;
    let owners = findPortOwners(port);
    if (owners.kind !== "held") return;
    // Leftovers of this instance's previous run were SIGKILLed when it ended and may still be dying.
    if (previous && owners.holders.some((h) => h.pgid === previous.pgid)) {
      await this.#clearLeftovers(previous);
      owners = findPortOwners(port);
      if (owners.kind !== "held") return;
    }
    const holders = describeHolders(owners.holders, owners.unattributed);
    appendLogLine(
      instanceLogPath(this.#logDir, instance),
      `${this.#isoNow()} start ${instance} blocked: port ${port} is held by ${holders}`,
    );
    throw new HomeostatError(
      "HS_INSTANCE_PORT_HELD",
      `cannot start ${instance}: port ${port} is already held by ${holders}`,
      { details: { instance, port, holders: owners.holders, unattributed: owners.unattributed } },
    );
  }

  start(launch: InstanceLaunch): Promise<RuntimeHandle> {
    const { instance, release } = launch;
    const current = this.#runs.get(instance);
    if (current && current.exit === null) {
      return Promise.reject(
        new HomeostatError(
          "HS_DRIVER_START_FAILED",
          `cannot start ${instance}: it is already running (pid ${current.handle.pid})`,
          { details: { instance, pid: current.handle.pid } },
        ),
      );
    }

    const args = renderArgs(release.args, launchVariables(launch));
    const logPath = instanceLogPath(this.#logDir, instance);
    const details = { instance, command: release.command, args, cwd: release.cwd, logPath };
    const startFailed = (reason: string, cause: unknown): HomeostatError => {
      appendLogLine(
        logPath,
        `${this.#isoNow()} start ${instance} release ${release.version} failed: ${reason}`,
      );
      return new HomeostatError(
        "HS_DRIVER_START_FAILED",
        `cannot start ${instance}: "${release.command}" in ${release.cwd}: ${reason}`,
        { details: { ...details, errno: (cause as NodeJS.ErrnoException | undefined)?.code }, cause },
      );
    };

    let logFd: number;
    try {
      logFd = openInstanceLog(logPath, this.#logDir);
    } catch (error) {
      return Promise.reject(
        new HomeostatError(
          "HS_DRIVER_START_FAILED",
          `cannot start ${instance}: cannot open its log ${logPath}: ${(error as Error).message}`,
          { details, cause: error },
        ),
      );
    }

    let child: ChildProcess;
    try {
      child = spawn(release.command, args, {
        cwd: release.cwd,
        env: buildLaunchEnv(launch),
        // Own process group (and session): stop can signal everything the instance forks, and a
        // terminal's Ctrl-C aimed at the controller does not reach the fleet.
        detached: true,
        // The child writes to the log through its own descriptor, not through our pipes.
        stdio: ["ignore", logFd, logFd],
      });
    } catch (error) {
      closeQuietly(logFd);
      return Promise.reject(startFailed(describeSpawnError(error, release.cwd), error));
    }

    const pid = child.pid;
    if (pid === undefined) {
      // Spawn failed (ENOENT, EACCES…): the error event follows on the next tick.
      closeQuietly(logFd);
      return new Promise((_resolve, reject) => {
        child.once("error", (error) => reject(startFailed(describeSpawnError(error, release.cwd), error)));
      });
    }

    // Read now, before the event loop can reap the child: a zombie still has its start time.
    const startTime = processStartTime(pid);
    writeLogLine(logFd, `${this.#isoNow()} start ${instance} release ${release.version} pid ${pid}`);
    closeQuietly(logFd);
    if (startTime === null) {
      child.on("error", () => {});
      killProcessGroup(pid, "SIGKILL");
      return Promise.reject(startFailed(`cannot read /proc/${pid}/stat`, undefined));
    }

    const handle: RuntimeHandle = { pid, startTime, logPath };
    const run: Run = { instance, handle, pgid: pid, child, exit: null, stopping: null, poller: null };
    this.#runs.set(instance, run);
    child.on("exit", (code, signal) => this.#finish(run, { code, signal, at: this.#now() }));
    // After a successful spawn, 'error' only reports failed kill()/send(), which we do not use;
    // a listener must exist all the same or an error event would crash the controller.
    child.on("error", () => {});
    child.unref();

    return new Promise((resolve) => {
      child.once("spawn", () => resolve(handle));
    });
  }

  stop(instance: string, graceMs: number): Promise<ExitInfo | null> {
    const run = this.#runs.get(instance);
    if (!run) return Promise.resolve(null);
    if (run.stopping) return run.stopping;
    if (run.exit !== null) return this.#clearLeftovers(run).then(() => null);

    const stopping = terminateGroup(run.pgid, {
      graceMs,
      killTimeoutMs: this.#killTimeoutMs,
      pollMs: STOP_POLL_MS,
      // A child of ours is only done once its exit status has been collected.
      isSettled: () => run.child === null || run.exit !== null,
    }).then(
      () => {
        this.#finish(run, { code: null, signal: null, at: this.#now() });
        // Later calls find nothing running and answer null, like any stop of an exited run.
        run.stopping = null;
        return run.exit;
      },
      (error: unknown) => {
        // Let a later stop try again.
        run.stopping = null;
        throw error;
      },
    );
    run.stopping = stopping;
    return stopping;
  }

  status(instance: string): RuntimeStatus {
    const run = this.#runs.get(instance);
    if (!run) return { state: "missing" };
    if (run.exit !== null) return { state: "exited", handle: run.handle, exit: run.exit };
    return { state: "running", handle: run.handle };
  }

  async adopt(instance: string, handle: RuntimeHandle): Promise<"adopted" | "gone"> {
    const current = this.#runs.get(instance);
    if (current && current.exit === null) {
      if (current.handle.pid === handle.pid && current.handle.startTime === handle.startTime)
        return "adopted";
      throw new HomeostatError(
        "HS_INTERNAL",
        `cannot adopt pid ${handle.pid} as ${instance}: pid ${current.handle.pid} already runs it`,
        { details: { instance, running: current.handle, offered: handle } },
      );
    }

    if (isProcessAlive(handle.pid, handle.startTime)) {
      const run: Run = {
        instance,
        handle: { ...handle },
        pgid: handle.pid,
        child: null,
        exit: null,
        stopping: null,
        poller: null,
      };
      run.poller = setInterval(() => {
        if (!isProcessAlive(run.handle.pid, run.handle.startTime)) {
          this.#finish(run, { code: null, signal: null, at: this.#now() });
        }
      }, ADOPTED_POLL_MS);
      run.poller.unref();
      this.#runs.set(instance, run);
      appendLogLine(handle.logPath, `${this.#isoNow()} adopted ${instance} pid ${handle.pid}`);
      return "adopted";
    }

    // The leader is gone. Its group may still hold processes it forked, and they may hold the
    // port. While any of them lives the kernel cannot hand the pgid number to anyone else, so
    // the group is still ours, unless the pid now names a different process: then the number
    // was free, our group was empty, and that group belongs to somebody else.
    const pidNow = processStartTime(handle.pid);
    if (pidNow === null || pidNow === handle.startTime) {
      await terminateGroup(handle.pid, {
        graceMs: 0,
        killTimeoutMs: this.#killTimeoutMs,
        pollMs: STOP_POLL_MS,
      });
    }
    return "gone";
  }

  /** Live instance processes found by their log file in `logDir` (see strays.ts). */
  strays(): Stray[] {
    return findStrays(this.#logDir);
  }

  onExit(listener: (instance: string, exit: ExitInfo) => void): void {
    this.#listeners.push(listener);
  }

  async stopAll(graceMs: number): Promise<void> {
    const running = [...this.#runs.values()].filter((run) => run.exit === null);
    const results = await Promise.allSettled(running.map((run) => this.stop(run.instance, graceMs)));
    const failure = results.find((result) => result.status === "rejected");
    if (failure) throw failure.reason;
  }

  /** Wait until an exited run's group is empty (its leftovers were SIGKILLed when it exited). */
  async #clearLeftovers(run: Run): Promise<void> {
    if (!groupHasMembers(run.pgid)) return;
    await terminateGroup(run.pgid, { graceMs: 0, killTimeoutMs: this.#killTimeoutMs, pollMs: STOP_POLL_MS });
  }

  /** Record the end of a run, exactly once, and tell the listeners. */
  #finish(run: Run, exit: ExitInfo): void {
    if (run.exit !== null) return;
    run.exit = exit;
    if (run.poller) clearInterval(run.poller);
    run.poller = null;
    appendLogLine(
      run.handle.logPath,
      `${this.#isoNow()} exit ${run.instance} pid ${run.handle.pid} code ${exit.code} signal ${exit.signal}`,
    );
    if (!run.stopping && groupHasMembers(run.pgid)) {
      // The leader died on its own and left processes behind: the instance is over, and its
      // leftovers must not keep the port or the CPU from the next run.
      killProcessGroup(run.pgid, "SIGKILL");
    }
    for (const listener of this.#listeners) {
      try {
        listener(run.instance, exit);
      } catch (error) {
        // One broken listener must not hide the exit from the others; still surface the bug.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  #isoNow(): string {
    return new Date(this.#now()).toISOString();
  }
}

function describeSpawnError(error: unknown, cwd: string): string {
  const errno = error as NodeJS.ErrnoException;
  if (errno.code === "ENOENT") {
    return existsSync(cwd) ? "command not found (ENOENT)" : "working directory does not exist (ENOENT)";
  }
  if (errno.code === "EACCES") return "permission denied (EACCES)";
  return errno.message ?? String(error);
}
