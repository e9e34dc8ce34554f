/**
 * HTTP probe: one GET on a fresh connection; the status code decides.
 */

import { request } from "node:http";
import type { ProbeCheck } from "../spec/model.ts";
import { describeIoError, type ProbeOutcome, type ProbeTarget, timeoutDetail } from "./probeTarget.ts";

type HttpCheck = Extract<ProbeCheck, { kind: "http" }>;

/**
 * GET `check.path` and pass when the status is within `check.expectStatus` (inclusive). Only the
 * status line and headers are awaited; the body is discarded and the connection destroyed, so a
 * server that stalls mid-body cannot hold the probe. Resolves within `timeoutMs` (plus timer
 * latency), never rejects.
 */
export function httpProbe(check: HttpCheck, target: ProbeTarget, timeoutMs: number): Promise<ProbeOutcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const finish = (ok: boolean, detail?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // No connection reuse: a probe must see the instance as a new client would.
      req.destroy();
      const durationMs = performance.now() - started;
      resolve(detail === undefined ? { ok, durationMs } : { ok, durationMs, detail });
    };

    // agent: false means a dedicated socket, closed afterwards: no pooled connection to a dead peer.
    const req = request({
      host: target.host,
      port: check.port ?? target.port,
      path: check.path,
      method: "GET",
      agent: false,
      headers: { "user-agent": "homeostat-probe", connection: "close" },
    });
    const timer = setTimeout(() => finish(false, timeoutDetail(timeoutMs)), timeoutMs);

    req.on("response", (res) => {
      const status = res.statusCode ?? 0;
      res.on("error", () => {});
      res.destroy();
      const [min, max] = check.expectStatus;
      finish(status >= min && status <= max, status >= min && status <= max ? undefined : `status ${status}`);
    });
    // Errors after settling (the destroy above) are expected and irrelevant.
    req.on("error", (error) => finish(false, describeIoError(error)));
    req.end();
  });
}
