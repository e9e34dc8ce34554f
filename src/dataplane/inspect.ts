/**
 * A read-only look at a fleet's data plane through its feed socket, without attaching: how
 * `homeostat dataplane status` answers while no controller runs.
 */

import type { Socket } from "node:net";
import { HomeostatError } from "../errors.ts";
import { connectUnix } from "../lib/sockets.ts";
import {
  type ControllerMessage,
  type DataPlaneIdentity,
  type DataPlaneMessage,
  dataPlaneMessageSchema,
} from "./feedProtocol.ts";
import { LineChannel } from "./lineChannel.ts";
import { liveDataPlane } from "./processRecord.ts";

export interface Inspection {
  identity: DataPlaneIdentity;
  services: Record<string, Record<string, unknown>>;
}

/**
 * @throws HomeostatError HS_NOT_FOUND when no data plane runs for `stateDir`,
 * HS_CONTROLLER_UNREACHABLE when it does not answer within `timeoutMs`
 */
export async function inspectDataPlane(stateDir: string, timeoutMs = 5_000): Promise<Inspection> {
  const record = liveDataPlane(stateDir);
  if (record === null) throw new HomeostatError("HS_NOT_FOUND", `no data plane runs for ${stateDir}`);
  let socket: Socket;
  try {
    socket = await connectUnix(record.feed);
  } catch (error) {
    throw new HomeostatError(
      "HS_CONTROLLER_UNREACHABLE",
      `cannot reach the data plane's feed at ${record.feed}: ${(error as Error).message}`,
    );
  }
  return await new Promise<Inspection>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new HomeostatError(
          "HS_CONTROLLER_UNREACHABLE",
          `the data plane (pid ${record.pid}) did not answer within ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
    const channel = new LineChannel<DataPlaneMessage, ControllerMessage>(
      socket,
      dataPlaneMessageSchema,
      (m) => {
        if (m.type !== "inspection") return;
        clearTimeout(timer);
        channel.close("inspected");
        resolve({ identity: m.identity, services: m.services });
      },
    );
    channel.send({ type: "inspect" });
  });
}
