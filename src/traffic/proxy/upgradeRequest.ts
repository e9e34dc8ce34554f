/**
 * The path of an upgrade request (WebSocket): pick, connect (retrying connect failures elsewhere
 * under the same rules and budget as plain requests), then splice the two connections.
 *
 * Upgrades skip admission control: a tunnel lives for minutes or hours, and holding a permit that
 * long would starve ordinary requests. They do count per endpoint, so a drain waits for them (up
 * to its timeout, then they are cut).
 */

import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import { CRITICALITY_HEADER, parseCriticality } from "./criticality.ts";
import { framingProblem } from "./framing.ts";
import { incomingRequestId, upstreamRequestHeaders } from "./headers.ts";
import type { ProxyRuntime } from "./proxyRuntime.ts";
import { newRequestId } from "./requestId.ts";
import { type AttemptFailure, mayRetry } from "./retryPolicy.ts";
import { connectUpstream, requestHead, spliceTunnel } from "./upgradeTunnel.ts";

const NOOP = (): void => {};

/** `client` is the socket Node's `upgrade` event hands over (a net.Socket). */
export async function proxyUpgrade(
  rt: ProxyRuntime,
  req: IncomingMessage,
  client: Socket,
  early: Buffer,
): Promise<void> {
  client.on("error", NOOP);
  const startedAt = performance.now();
  const { criticality } = parseCriticality(req.headers[CRITICALITY_HEADER]);
  let attempts = 0;
  const record = (
    result: "ok" | "client-error" | "upstream-5xx" | "no-upstream" | "failed" | "timeout",
    status: number,
  ) =>
    rt.recordRequest({
      service: rt.service,
      criticality,
      result,
      status,
      latencyMs: performance.now() - startedAt,
      attempts,
      retried: attempts > 1,
    });

  const framing = framingProblem(req);
  if (framing !== null) {
    answerRaw(client, 400, { error: "bad-request", reason: framing });
    record("client-error", 400);
    return;
  }
  const requestId = incomingRequestId(req) ?? newRequestId();
  const head = requestHead(req, upstreamRequestHeaders(req, requestId, true));
  const tried = new Set<string>();
  let last: AttemptFailure | null = null;
  for (;;) {
    const pick = rt.balancer.pick(rt.now(), rt.random, tried, rt.table.inFlightOf);
    const pool = pick.ok ? rt.table.get(pick.endpoint.instance) : undefined;
    if (pool === undefined) {
      if (last !== null) break;
      answerRaw(client, 503, { error: "no-upstream", reason: pick.ok ? "no-endpoints" : pick.reason });
      record("no-upstream", 503);
      return;
    }
    attempts++;
    tried.add(pool.endpoint.instance);
    const attemptStart = performance.now();
    const upstream = await connectUpstream(pool.endpoint, rt.traffic.retries.perTryTimeoutMs);
    if (client.destroyed) {
      if (!("outcome" in upstream)) upstream.destroy();
      record("failed", 499);
      return;
    }
    if ("outcome" in upstream) {
      rt.reportAttempt(pool, upstream.outcome, undefined, performance.now() - attemptStart);
      last = upstream;
      const retry = mayRetry({
        method: req.method ?? "GET",
        replayable: true, // an upgrade request has no body; early bytes are kept in `early`
        attempts,
        maxAttempts: rt.traffic.retries.maxAttempts,
        failure: upstream,
      });
      if (!retry || !rt.budget.tryAcquireRetry()) break;
      continue;
    }

    let status: number | null = null;
    const tunnel = spliceTunnel(client, upstream, head, early, (seen) => {
      status = seen;
      rt.reportAttempt(
        pool,
        seen !== null && seen >= 500 ? "http-5xx" : "success",
        seen ?? undefined,
        performance.now() - attemptStart,
      );
    });
    pool.addTunnel(tunnel.destroy);
    await tunnel.closed;
    pool.removeTunnel(tunnel.destroy);
    if (status === null) {
      // Closed before a single byte came back: the upstream dropped the connection.
      rt.reportAttempt(pool, "reset", undefined, performance.now() - attemptStart);
      record("failed", 502);
    } else {
      const seen: number = status;
      record(seen >= 500 ? "upstream-5xx" : seen >= 400 ? "client-error" : "ok", seen);
    }
    return;
  }
  const timedOut = last?.outcome === "timeout";
  answerRaw(client, timedOut ? 504 : 502, {
    error: timedOut ? "upstream-timeout" : "upstream-failed",
    attempts,
  });
  record(timedOut ? "timeout" : "failed", timedOut ? 504 : 502);
}

const REASONS: Record<number, string> = {
  400: "Bad Request",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/** An HTTP answer written straight on the socket (an upgrade request has no ServerResponse). */
function answerRaw(client: Socket, status: number, body: object): void {
  const text = `${JSON.stringify(body)}\n`;
  client.end(
    `HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}\r\n` +
      "content-type: application/json\r\n" +
      `content-length: ${Buffer.byteLength(text)}\r\n` +
      `${status === 503 ? "retry-after: 1\r\n" : ""}` +
      "connection: close\r\n\r\n" +
      text,
  );
}
