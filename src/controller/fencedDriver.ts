/**
 * A driver that checks leadership before every side effect: starting or stopping a process cannot
 * be undone by a later check, so the controller's own clock (`LeaderElection.assertLeading`) and
 * the store (`LeadershipStore.assertCurrent`, the store's clock) must both say this controller
 * still leads with its token. A deposed leader's order is refused with HS_FENCED and never reaches
 * the processes.
 */

import type { Driver, ExitInfo, InstanceLaunch, RuntimeHandle, RuntimeStatus } from "../drivers/driver.ts";
import { canCheckPortIdentity, type PortIdentityChecker } from "../observe/portIdentity.ts";

/** What the fence checks: throws HS_FENCED when the order must not run. */
export type Fence = (what: string) => void;

/** Wraps `driver` so that `start`, `stop` and `stopAll` pass `fence` first. */
export function fencedDriver(driver: Driver, fence: Fence): Driver {
  const fenced: Driver = {
    name: driver.name,
    start(launch: InstanceLaunch): Promise<RuntimeHandle> {
      fence(`start ${launch.instance}`);
      return driver.start(launch);
    },
    stop(instance: string, graceMs: number): Promise<ExitInfo | null> {
      fence(`stop ${instance}`);
      return driver.stop(instance, graceMs);
    },
    status(instance: string): RuntimeStatus {
      return driver.status(instance);
    },
    adopt(instance: string, handle: RuntimeHandle): Promise<"adopted" | "gone"> {
      return driver.adopt(instance, handle);
    },
    onExit(listener: (instance: string, exit: ExitInfo) => void): void {
      driver.onExit(listener);
    },
    stopAll(graceMs: number): Promise<void> {
      fence("stop every instance");
      return driver.stopAll(graceMs);
    },
  };
  // Read-only members pass through, bound to the driver (its private state is its own).
  const strays = driver.strays?.bind(driver);
  if (strays !== undefined) fenced.strays = strays;
  // So does the port-identity check a driver may offer (src/observe/portIdentity.ts): clearing an
  // instance's own leftovers off its port is part of starting it, so it passes the fence first.
  if (canCheckPortIdentity(driver)) {
    const checker: PortIdentityChecker = {
      portIdentity: (instance, port) => driver.portIdentity(instance, port),
      ensurePortFree: (instance, port) => {
        fence(`free the port of ${instance}`);
        return driver.ensurePortFree(instance, port);
      },
    };
    return Object.assign(fenced, checker);
  }
  return fenced;
}
