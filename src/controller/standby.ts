/**
 * A follower controller: until it leads, it waits for the lease and answers on its API port by
 * forwarding every request to the leader (whose address the lease records), so a client or the
 * CLI pointed at any controller reaches the one that acts. `GET /v1/leader` it answers itself.
 * When no leader answers, requests get 503 HS_NOT_LEADER naming the lease's holder.
 *
 * The follower starts nothing, adopts nothing and feeds no data plane: orders come from the
 * leader only (and carry its fencing token).
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { request as undiciRequest } from "undici";
import { HomeostatError, httpStatusFor } from "../errors.ts";
import { hashToken } from "../server/auth/tokens.ts";
import { envelopeOf } from "../server/errorEnvelope.ts";
import { hostsFor } from "../server/requestGuards.ts";
import type { Lease, StateStore } from "../store/index.ts";

/** The hop-by-hop headers a proxy must not pass on (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
  "host",
]);

export interface FollowerApi {
  /** What the follower knows of the lease now. */
  setLease(lease: Lease | null): void;
  close(): Promise<void>;
}

/** Listens on `bind:port` as a follower. */
export async function listenAsFollower(options: {
  store: StateStore;
  bind: string;
  port: number;
  tls?: { cert: Buffer; key: Buffer };
  self: { holder: string; apiUrl: string };
}): Promise<FollowerApi> {
  let lease: Lease | null = null;
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    void answer(req, res).catch((error: unknown) => {
      if (!res.headersSent) send(res, new HomeostatError("HS_INTERNAL", String(error)));
      else res.destroy();
    });
  };
  const answer = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // The same DNS-rebinding rule as the leader's API: Host must name this address.
    const allowed = hostsFor(req.socket.localAddress, options.port);
    if (!allowed.includes(req.headers.host ?? "")) {
      send(
        res,
        new HomeostatError(
          "HS_HOST_REFUSED",
          `Host ${req.headers.host ?? "(none)"} is not this API's address`,
        ),
      );
      return;
    }
    const path = req.url ?? "/";
    if (req.method === "GET" && path.split("?")[0] === "/v1/leader") {
      if (!authorized(options.store, req.headers.authorization)) {
        send(res, new HomeostatError("HS_UNAUTHENTICATED", "a token is needed: Authorization: Bearer TOKEN"));
        return;
      }
      json(res, 200, { role: "follower", self: options.self, leader: lease });
      return;
    }
    if (lease === null || lease.apiUrl === null || lease.expiresAt <= Date.now() - 60_000) {
      send(res, notLeader(lease, "no leader is known to answer"));
      return;
    }
    const target = new URL(path, lease.apiUrl);
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
    }
    headers.host = target.host;
    headers["x-forwarded-by"] = options.self.holder;
    try {
      const upstream = await undiciRequest(target, {
        method: (req.method ?? "GET") as "GET",
        headers,
        ...(req.method === "GET" || req.method === "HEAD" ? {} : { body: req }),
        headersTimeout: 10_000,
        bodyTimeout: 0,
      });
      const out: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(upstream.headers)) {
        if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
      }
      res.writeHead(upstream.statusCode, out);
      for await (const chunk of upstream.body) res.write(chunk);
      res.end();
    } catch (error) {
      if (!res.headersSent)
        send(res, notLeader(lease, `the leader did not answer: ${(error as Error).message}`));
      else res.destroy();
    }
  };
  const server: Server =
    options.tls === undefined ? createServer(handler) : createHttpsServer({ ...options.tls }, handler);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: options.bind, port: options.port }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    setLease(next) {
      lease = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function authorized(store: StateStore, header: string | undefined): boolean {
  const match = /^Bearer\s+(\S+)$/i.exec(header ?? "");
  if (match === null) return false;
  return store.tokens.byHash(hashToken(match[1] as string)) !== null;
}

function notLeader(lease: Lease | null, why: string): HomeostatError {
  return new HomeostatError(
    "HS_NOT_LEADER",
    lease === null
      ? `this controller is a follower and ${why}; no controller has led this store yet`
      : `this controller is a follower and ${why}: controller ${lease.holder} (fencing token ${lease.token}) leads${lease.apiUrl ? `, its API at ${lease.apiUrl}` : ""}`,
    { details: { leader: lease } },
  );
}

function send(res: ServerResponse, error: HomeostatError): void {
  json(res, httpStatusFor(error), envelopeOf(error));
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8" });
  res.end(JSON.stringify(body));
}
