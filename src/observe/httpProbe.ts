/**
 * HTTP probe: one GET on a fresh connection; the status code decides.
 */

import { request } from "node:http";
import type { ProbeCheck } from "../spec/model.ts";
import { describeIoError, type ProbeOutcome, type ProbeTarget, settleOnce } from "./probeTarget.ts";

type HttpCheck = Extract<ProbeCheck, { kind: "http" }>;

/**
 * GET `check.path` and pass when the status is within `check.expectStatus` (inclusive). Only the
 * status line and headers are awaited; the body is discarded and the connection destroyed, so a
 * server that stalls mid-body cannot hold the probe. Resolves within `timeoutMs` (plus timer
 * latency), never rejects.
 */
export function httpProbe(check: HttpCheck, target: ProbeTarget, timeoutMs: number): Promise<ProbeOutcome> {
  return settleOnce(timeoutMs, (finish) => {
    // agent: false means a dedicated socket, closed afterwards: no pooled connection to a dead peer.
    const req = request({
      host: target.host,
      port: check.port ?? target.port,
      path: check.path,
      method: "GET",
      agent: false,
      headers: { "user-agent": "homeostat-probe", connection: "close" },
    });
    req.on("response", (res) => {
      const status = res.statusCode ?? 0;
      res.on("error", () => {});
      res.destroy();
      const [min, max] = check.expectStatus;
      finish(status >= min && status <= max, status >= min && status <= max ? undefined : `status ${status}`);
    });
    // Errors after settling (the destroy below) are expected and irrelevant.
    req.on("error", (error) => finish(false, describeIoError(error)));
    req.end();
    // No connection reuse: a probe must see the instance as a new client would.
    return { cleanup: () => req.destroy() };
  });
}
