/**
 * Talking to one redis-server: a fresh connection per exchange, the commands pipelined, one
 * deadline over connect and every reply. A fresh connection is what a probe needs (a refused
 * connect is the fastest sign of a dead member; a stopped process accepts in the kernel and then
 * answers nothing, which the deadline catches) and costs nothing at a few exchanges per second.
 */

import net from "node:net";
import { encodeCommand, isRespError, parseInfo, RespParser, type RespValue } from "./resp.ts";

/** Why an exchange failed before every reply arrived. */
export class RedisExchangeError extends Error {
  readonly kind: "refused" | "timeout" | "closed" | "protocol";
  constructor(kind: "refused" | "timeout" | "closed" | "protocol", message: string) {
    super(message);
    this.kind = kind;
  }
}

/**
 * Sends `commands` to `host:port` on one new connection and resolves with one reply per command
 * (error replies included, as `{ error }`), or rejects with a {@link RedisExchangeError} when the
 * connection fails or `timeoutMs` passes first.
 */
export function exchange(
  port: number,
  commands: readonly (readonly (string | number)[])[],
  timeoutMs: number,
  host = "127.0.0.1",
): Promise<RespValue[]> {
  return new Promise((resolve, reject) => {
    const parser = new RespParser();
    const replies: RespValue[] = [];
    let done = false;
    const socket = net.connect({ host, port });
    socket.setNoDelay(true);
    const finish = (error: RedisExchangeError | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (error === null) resolve(replies);
      else reject(error);
    };
    const timer = setTimeout(
      () =>
        finish(new RedisExchangeError("timeout", `no answer from ${host}:${port} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on("connect", () => socket.write(Buffer.concat(commands.map((c) => encodeCommand(c)))));
    socket.on("data", (chunk) => {
      try {
        replies.push(...parser.push(chunk));
      } catch (error) {
        finish(new RedisExchangeError("protocol", String(error)));
        return;
      }
      if (replies.length >= commands.length) finish(null);
    });
    socket.on("error", (error: NodeJS.ErrnoException) =>
      finish(
        new RedisExchangeError(
          error.code === "ECONNREFUSED" ? "refused" : "closed",
          `${host}:${port}: ${error.code ?? error.message}`,
        ),
      ),
    );
    socket.on("close", () =>
      finish(new RedisExchangeError("closed", `${host}:${port} closed the connection before answering`)),
    );
  });
}

/** One command; an error reply rejects (for commands that must succeed: REPLICAOF, CONFIG SET). */
export async function command(
  port: number,
  args: readonly (string | number)[],
  timeoutMs: number,
): Promise<RespValue> {
  const [reply] = await exchange(port, [args], timeoutMs);
  if (reply === undefined) throw new RedisExchangeError("closed", "no reply");
  if (isRespError(reply)) throw new RedisExchangeError("protocol", `${args[0]}: ${reply.error}`);
  return reply;
}

/** What `INFO replication` says about one member. */
export interface ReplicationInfo {
  role: "primary" | "replica";
  /** The replication offset this member has processed (master_repl_offset on either side). */
  offset: number;
  /** The replication id of the history it follows. */
  replid: string;
  /** Replica: where it replicates from and whether that link is up. */
  primaryPort: number | null;
  linkUp: boolean;
  /** Primary: its replicas as it sees them (port, state, acked offset, seconds since last ack). */
  replicas: { port: number; state: string; offset: number; lagS: number }[];
}

/** Reads `INFO replication` text. */
export function replicationInfo(text: string): ReplicationInfo {
  const info = parseInfo(text);
  const replicas: ReplicationInfo["replicas"] = [];
  for (const [key, value] of info) {
    if (!/^slave\d+$/.test(key)) continue;
    const fields = new Map(value.split(",").map((pair) => pair.split("=") as [string, string]));
    replicas.push({
      port: Number(fields.get("port")),
      state: fields.get("state") ?? "",
      offset: Number(fields.get("offset") ?? 0),
      lagS: Number(fields.get("lag") ?? 0),
    });
  }
  const replica = info.get("role") === "slave";
  return {
    role: replica ? "replica" : "primary",
    offset: Number(info.get("master_repl_offset") ?? 0),
    replid: info.get("master_replid") ?? "",
    primaryPort: replica ? Number(info.get("master_port") ?? 0) : null,
    linkUp: info.get("master_link_status") === "up",
    replicas,
  };
}

/**
 * Makes the member on `port` a replica of `primaryPort` and closes its client connections, in one
 * MULTI/EXEC as Redis Sentinel demotes a primary: Redis keeps normal and pub/sub clients connected
 * across REPLICAOF (they only get READONLY errors), so a client that was given the member's own
 * address (Sentinel port with `announce: primary`, or configured by hand) would never rediscover
 * the primary. Closed, it reconnects, through its Sentinel, to the new one. The transaction leaves
 * no instant in which the member is a primary with its old clients gone or a replica with them still
 * there. CLIENT KILL's default SKIPME yes spares this exchange's own connection; replicas' links are
 * another client type and are kept.
 *
 * Resolves with how many connections were closed; rejects like {@link command} when the exchange
 * fails or a step is refused (the transaction then ran nothing, or Redis refused REPLICAOF).
 */
export async function demote(
  port: number,
  primaryPort: number,
  timeoutMs: number,
): Promise<{ clientsClosed: number }> {
  const replies = await exchange(
    port,
    [
      ["MULTI"],
      ["REPLICAOF", "127.0.0.1", primaryPort],
      ["CLIENT", "KILL", "TYPE", "normal"],
      ["CLIENT", "KILL", "TYPE", "pubsub"],
      ["EXEC"],
    ],
    timeoutMs,
  );
  const refused = replies.slice(0, 4).find((r) => isRespError(r));
  if (refused !== undefined) throw new RedisExchangeError("protocol", `MULTI: ${JSON.stringify(refused)}`);
  const results = replies[4];
  if (results === undefined || !Array.isArray(results) || results.length !== 3) {
    throw new RedisExchangeError("protocol", `EXEC: ${JSON.stringify(results ?? null)}`);
  }
  const [replicaof, normal, pubsub] = results as [RespValue, RespValue, RespValue];
  if (isRespError(replicaof)) throw new RedisExchangeError("protocol", `REPLICAOF: ${replicaof.error}`);
  return {
    clientsClosed: (typeof normal === "number" ? normal : 0) + (typeof pubsub === "number" ? pubsub : 0),
  };
}
