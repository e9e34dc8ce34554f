/**
 * The driver interface: the only way Homeostat touches the things it runs. The local process
 * driver is the embedded default; later drivers (Redis, HAProxy, Kubernetes) implement the same
 * small surface. See `docs/drivers.md`.
 */

import type { ReleaseSpec, ZoneHost } from "../spec/model.ts";

/** What to run: one instance of one release in one slot. */
export interface InstanceLaunch {
  /** Stable instance name, `${service}-${slot}`. */
  instance: string;
  service: string;
  slot: number;
  port: number;
  release: ReleaseSpec;
  placement: ZoneHost;
}

/**
 * Identity of something a driver started, durable across controller restarts. For local
 * processes `startTime` is the kernel's start time of the pid (clock ticks since boot), which
 * is what tells a recycled pid from ours.
 */
export interface RuntimeHandle {
  pid: number;
  startTime: string;
  /** Where the instance's stdout/stderr go. */
  logPath: string;
}

export type ExitInfo = {
  code: number | null;
  signal: string | null;
  at: number;
  /** Set by the controller when a start failed before any process ran (e.g. its port is held). */
  detail?: string;
};

/** What the driver can see of an instance right now. */
export type RuntimeStatus =
  | { state: "running"; handle: RuntimeHandle }
  | { state: "exited"; handle: RuntimeHandle; exit: ExitInfo }
  | { state: "missing" };

export interface Driver {
  readonly name: string;
  /** Start an instance. Resolves once the process exists (not once it is healthy). */
  start(launch: InstanceLaunch): Promise<RuntimeHandle>;
  /**
   * Stop an instance: SIGTERM to its process group, SIGKILL after `graceMs`. Resolves when the
   * whole group is gone. Stopping something already gone is not an error.
   */
  stop(instance: string, graceMs: number): Promise<ExitInfo | null>;
  /** Current status of an instance known to this driver. */
  status(instance: string): RuntimeStatus;
  /**
   * After a controller restart: take back an instance started by an earlier controller.
   * Returns "adopted" if `handle` still names a live process of ours, else "gone" (and makes
   * sure nothing of it is left).
   */
  adopt(instance: string, handle: RuntimeHandle): Promise<"adopted" | "gone">;
  /** Called whenever an instance this driver owns exits, with what is known of the exit. */
  onExit(listener: (instance: string, exit: ExitInfo) => void): void;
  /** Stop everything this driver owns (used by `down` and on shutdown). */
  stopAll(graceMs: number): Promise<void>;
  /**
   * Every live instance process this driver (or an earlier controller's) started, found from the
   * driver's own record rather than the store's: what a controller killed between spawning a
   * process and recording its handle left running. Optional: a driver that cannot tell omits it.
   */
  strays?(): { instance: string; handle: RuntimeHandle }[];
}
