/**
 * A simulated driver: instances are records in memory, their "processes" live in virtual time
 * ({@link VirtualClock}), and their probes are answered from the same records, so the real
 * controller, decision core and store can be run against 10,000 instances with no process, port
 * or socket. Failures are injected by name: a crash (the process exits), a hang (every probe times
 * out, the process stays), unready (the readiness check fails, liveness passes), a slow start (the
 * instance listens only some time after it started), and starts that crash again right away.
 *
 * Probe semantics, as a real instance behind http/tcp checks would answer:
 * - not running, or not listening yet (slow start): `connect ECONNREFUSED`, at once;
 * - hung: `timeout after Nms`, N virtual ms later;
 * - unready: an http check answers `status 503`, a tcp or exec check passes;
 * - otherwise: pass.
 */

import { HomeostatError } from "../../errors.ts";
import { sleep } from "../../lib/scheduler.ts";
import type { ProbeFn } from "../../observe/prober.ts";
import type { ProbeOutcome } from "../../observe/probeTarget.ts";
import type { Driver, ExitInfo, InstanceLaunch, RuntimeHandle, RuntimeStatus } from "../driver.ts";
import type { VirtualClock } from "./virtualClock.ts";

interface SimInstance {
  launch: InstanceLaunch;
  handle: RuntimeHandle;
  startedAt: number;
  /** Epoch ms from which it accepts connections. */
  listensAt: number;
  exit: ExitInfo | null;
  hung: boolean;
  unready: boolean;
}

export interface SimDriverOptions {
  clock: VirtualClock;
  /** How long after its start an instance listens (default 0: at once). */
  startupMs?: number;
}

/** What the driver did, for tests and the bench (operation counts, not times). */
export interface SimDriverCounts {
  starts: number;
  stops: number;
  probes: number;
}

export class SimDriver implements Driver {
  readonly name = "sim";
  readonly #clock: VirtualClock;
  readonly #startupMs: number;
  readonly #instances = new Map<string, SimInstance>();
  readonly #listeners: ((instance: string, exit: ExitInfo) => void)[] = [];
  /** Per instance: how many of its next starts crash right after starting, and when. */
  readonly #crashingStarts = new Map<string, { left: number; afterMs: number }>();
  /** Per instance or service: its start-up time, beyond the default. */
  readonly #slowStarts = new Map<string, number>();
  #nextPid = 100_000;
  readonly counts: SimDriverCounts = { starts: 0, stops: 0, probes: 0 };
  /** Every start, in order: instance name and virtual time. */
  readonly startLog: { instance: string; at: number }[] = [];

  constructor(options: SimDriverOptions) {
    this.#clock = options.clock;
    this.#startupMs = options.startupMs ?? 0;
  }

  async start(launch: InstanceLaunch): Promise<RuntimeHandle> {
    const now = this.#clock.now();
    const running = this.#instances.get(launch.instance);
    if (running !== undefined && running.exit === null) {
      throw new HomeostatError(
        "HS_DRIVER_START_FAILED",
        `sim: ${launch.instance} is already running (pid ${running.handle.pid})`,
      );
    }
    const pid = this.#nextPid++;
    const handle: RuntimeHandle = { pid, startTime: String(now), logPath: `sim://${launch.instance}` };
    const startupMs =
      this.#slowStarts.get(launch.instance) ?? this.#slowStarts.get(launch.service) ?? this.#startupMs;
    const instance: SimInstance = {
      launch,
      handle,
      startedAt: now,
      listensAt: now + startupMs,
      exit: null,
      hung: false,
      unready: false,
    };
    this.#instances.set(launch.instance, instance);
    this.counts.starts++;
    this.startLog.push({ instance: launch.instance, at: now });
    const crashing = this.#crashingStarts.get(launch.instance);
    if (crashing !== undefined && crashing.left > 0) {
      crashing.left--;
      this.#clock.setTimer(crashing.afterMs, () => {
        if (this.#instances.get(launch.instance) === instance) this.#end(instance, { code: 1, signal: null });
      });
    }
    return handle;
  }

  async stop(name: string, graceMs: number): Promise<ExitInfo | null> {
    const instance = this.#instances.get(name);
    if (instance === undefined || instance.exit !== null) return null;
    this.counts.stops++;
    // A hung process ignores SIGTERM: it is killed when the grace period is over.
    if (instance.hung) {
      await sleep(this.#clock, graceMs);
      if (instance.exit !== null) return instance.exit;
      return this.#end(instance, { code: null, signal: "SIGKILL" });
    }
    return this.#end(instance, { code: null, signal: "SIGTERM" });
  }

  status(name: string): RuntimeStatus {
    const instance = this.#instances.get(name);
    if (instance === undefined) return { state: "missing" };
    if (instance.exit !== null) return { state: "exited", handle: instance.handle, exit: instance.exit };
    return { state: "running", handle: instance.handle };
  }

  async adopt(name: string, handle: RuntimeHandle): Promise<"adopted" | "gone"> {
    const instance = this.#instances.get(name);
    const alive =
      instance !== undefined &&
      instance.exit === null &&
      instance.handle.pid === handle.pid &&
      instance.handle.startTime === handle.startTime;
    return alive ? "adopted" : "gone";
  }

  onExit(listener: (instance: string, exit: ExitInfo) => void): void {
    this.#listeners.push(listener);
  }

  async stopAll(): Promise<void> {
    for (const instance of this.#instances.values()) {
      if (instance.exit === null) this.#end(instance, { code: null, signal: "SIGTERM" });
    }
  }

  // ---- failure injection -------------------------------------------------------------------

  /** The process of `name` exits now (default: killed by SIGKILL). False when it is not running. */
  crash(
    name: string,
    how: { code: number | null; signal: string | null } = { code: null, signal: "SIGKILL" },
  ): boolean {
    const instance = this.#instances.get(name);
    if (instance === undefined || instance.exit !== null) return false;
    this.#end(instance, how);
    return true;
  }

  /** `name` stops answering (its probes time out) while its process stays up. */
  hang(name: string): boolean {
    return this.#mark(name, (i) => {
      i.hung = true;
    });
  }

  /** `name`'s readiness (http) check fails with 503; tcp checks still pass. */
  unready(name: string): boolean {
    return this.#mark(name, (i) => {
      i.unready = true;
    });
  }

  /** Undo {@link hang} and {@link unready} on the running `name`. */
  heal(name: string): boolean {
    return this.#mark(name, (i) => {
      i.hung = false;
      i.unready = false;
    });
  }

  /** The next `count` starts of `name` exit with code 1 `afterMs` after starting (a crash loop). */
  crashOnStart(name: string, count: number, afterMs = 100): void {
    this.#crashingStarts.set(name, { left: count, afterMs });
  }

  /** Instances of `nameOrService` (an instance or a whole service) listen `ms` after each start. */
  slowStart(nameOrService: string, ms: number): void {
    this.#slowStarts.set(nameOrService, ms);
  }

  /** Running instances now. */
  running(): string[] {
    return [...this.#instances.values()].filter((i) => i.exit === null).map((i) => i.launch.instance);
  }

  /** The answers to every probe of every instance, from the records above. */
  readonly probe: ProbeFn = async (name, check, _target, timeoutMs) => {
    this.counts.probes++;
    const instance = this.#instances.get(name);
    if (instance === undefined || instance.exit !== null) return refused();
    if (this.#clock.now() < instance.listensAt) return refused();
    if (instance.hung) {
      await sleep(this.#clock, timeoutMs);
      return { ok: false, durationMs: timeoutMs, detail: `timeout after ${timeoutMs}ms` };
    }
    if (instance.unready && check.kind === "http") return { ok: false, durationMs: 0, detail: "status 503" };
    return { ok: true, durationMs: 0 };
  };

  #mark(name: string, change: (instance: SimInstance) => void): boolean {
    const instance = this.#instances.get(name);
    if (instance === undefined || instance.exit !== null) return false;
    change(instance);
    return true;
  }

  #end(instance: SimInstance, how: { code: number | null; signal: string | null }): ExitInfo {
    const exit: ExitInfo = { code: how.code, signal: how.signal, at: this.#clock.now() };
    instance.exit = exit;
    for (const listener of this.#listeners) listener(instance.launch.instance, exit);
    return exit;
  }
}

function refused(): ProbeOutcome {
  return { ok: false, durationMs: 0, detail: "connect ECONNREFUSED" };
}
