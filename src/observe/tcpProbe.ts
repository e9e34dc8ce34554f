/**
 * TCP probe: passes when a connection is accepted.
 */

import { connect } from "node:net";
import type { ProbeCheck } from "../spec/model.ts";
import { describeIoError, type ProbeOutcome, type ProbeTarget, settleOnce } from "./probeTarget.ts";

type TcpCheck = Extract<ProbeCheck, { kind: "tcp" }>;

/**
 * Connect to the port and close at once. Note the kernel completes the handshake for a listening
 * socket even when its process is frozen, so this probe cannot detect a hung process: use HTTP
 * or exec for liveness when that matters. Resolves within `timeoutMs`, never rejects.
 */
export function tcpProbe(check: TcpCheck, target: ProbeTarget, timeoutMs: number): Promise<ProbeOutcome> {
  return settleOnce(timeoutMs, (finish) => {
    const socket = connect({ host: target.host, port: check.port ?? target.port });
    socket.on("connect", () => finish(true));
    socket.on("error", (error) => finish(false, describeIoError(error)));
    return { cleanup: () => socket.destroy() };
  });
}
