/**
 * One-shot HTTP checks against an instance, as a load balancer would do them.
 */

import { request } from "node:http";

/**
 * Status code of `GET path` on 127.0.0.1:`port`, or null when nothing answered within
 * `timeoutMs` (refused, reset or silent). A fresh connection every time (`agent: false`): a
 * kept-alive socket to a process that has since died or hung must not colour the answer.
 */
export function httpStatus(port: number, path: string, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (status: number | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(status);
    };
    const req = request({ host: "127.0.0.1", port, path, method: "GET", agent: false }, (res) => {
      res.resume();
      done(res.statusCode ?? null);
    });
    const timer = setTimeout(() => {
      req.destroy();
      done(null);
    }, timeoutMs);
    req.on("error", () => done(null));
    req.end();
  });
}

/** True when `GET /ready` answers 200 within `timeoutMs`. */
export async function answersReady(port: number, timeoutMs = 500): Promise<boolean> {
  return (await httpStatus(port, "/ready", timeoutMs)) === 200;
}
