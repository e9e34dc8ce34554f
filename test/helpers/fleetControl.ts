/**
 * Driving a fleet an e2e test started with `homeostat up`: the CLI against its controller, what
 * `up` printed when the fleet did not come up, and a new controller re-attaching to the data plane.
 */

import { type CliResult, type Controller, freePort, freePortRange, type Sandbox } from "./e2e.ts";
import { waitFor } from "./waitFor.ts";

/** `homeostat ARGS… --api-port <box's>`: the CLI run in `box` against the controller it started. */
export function apiCli(box: Sandbox, ...args: string[]): Promise<CliResult> {
  return box.cli([...args, "--api-port", String(box.apiPort)]);
}

/** `work`; when it fails, the error carries what `homeostat up` printed (why a fleet did not come up). */
export async function telling<T>(controller: Controller, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw new Error(
      `${(error as Error).message}\n--- homeostat up said ---\n${controller.output().slice(-6_000)}`,
      { cause: error },
    );
  }
}

/** The part of `/v1/status` that says whether the data plane is attached and what it applied. */
interface AttachedStatus {
  dataPlane?: { connected: boolean; appliedVersion: number };
}

/**
 * The status once a (new) controller is attached to the data plane and the data plane applied a
 * snapshot newer than `appliedVersion` (the last one before the old controller went away).
 */
export async function dataPlaneReattached<T extends AttachedStatus>(
  box: Sandbox,
  appliedVersion: number,
  what: string,
): Promise<T> {
  return await waitFor(
    async () => {
      const status = await box.get<T>("/v1/status").catch(() => null);
      return status?.dataPlane?.connected === true && status.dataPlane.appliedVersion > appliedVersion
        ? status
        : null;
    },
    { timeoutMs: 30_000, what },
  );
}

/**
 * `homeostat up` in `box` of the fleet `yaml(basePort, port)` written to `fleet.yaml`, on free
 * ports: `port` for the front, `slots` consecutive ones from `basePort` for the instances (both
 * banks: 2 × replicas). Returns at once, with the fleet file to start it again.
 */
export async function upOnFreePorts(
  box: Sandbox,
  slots: number,
  yaml: (basePort: number, port: number) => string,
): Promise<{ controller: Controller; port: number; file: string }> {
  const port = await freePort();
  const basePort = await freePortRange(slots);
  const file = box.file("fleet.yaml", yaml(basePort, port));
  return { controller: box.up(file), port, file };
}
