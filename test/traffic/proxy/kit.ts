/**
 * Test kit for the service proxy: real upstream HTTP servers on ephemeral ports, a proxy in front
 * of them, an HTTP client, a raw TCP client, and settings built from the resolved defaults.
 * Everything started here is closed by `t.after`, even when the test fails.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { connect } from "node:net";
import { Pool } from "undici";
import type { TrafficSpec } from "../../../src/spec/model.ts";
import { TRAFFIC_DEFAULTS } from "../../../src/spec/traffic.ts";
import type { Endpoint } from "../../../src/traffic/contracts.ts";
import { FaultRegistry } from "../../../src/traffic/faults.ts";
import { ServiceProxy, type TrafficEvent } from "../../../src/traffic/proxy/serviceProxy.ts";
import { TrafficStats } from "../../../src/traffic/stats/index.ts";
import { seededRandom } from "../../helpers/seededRandom.ts";

/** The seed of every proxy started here without a `random` of its own. */
export const PROXY_SEED = 1;

export interface Cleanup {
  after(fn: () => Promise<void> | void): void;
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

/** The resolved defaults, with `overrides` merged in field by field. */
export function traffic(overrides: DeepPartial<TrafficSpec> = {}): TrafficSpec {
  const base: TrafficSpec = structuredClone({ ...TRAFFIC_DEFAULTS, priorities: [] });
  return merge(base, overrides) as TrafficSpec;
}

function merge(base: unknown, over: unknown): unknown {
  if (over === undefined) return base;
  if (over === null || typeof over !== "object" || Array.isArray(over)) return over;
  if (base === null || typeof base !== "object") return over;
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [key, value] of Object.entries(over)) out[key] = merge(out[key], value);
  return out;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, upstream: Upstream) => void | Promise<void>;

export interface Upstream {
  name: string;
  port: number;
  server: Server;
  /** Requests received so far. */
  hits: number;
  /** Replace the behaviour (e.g. start failing). */
  handler: Handler;
}

/** A JSON 200 naming the upstream, after reading the request body. */
export const answerOk: Handler = async (req, res, upstream) => {
  let bytes = 0;
  for await (const chunk of req) bytes += (chunk as Buffer).length;
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ upstream: upstream.name, bytes }));
};

/** Answer `status` (after reading the body). */
export function answerStatus(status: number): Handler {
  return async (req, res, upstream) => {
    for await (const _ of req);
    res.statusCode = status;
    res.end(JSON.stringify({ upstream: upstream.name, status }));
  };
}

/** Start an upstream on 127.0.0.1 (ephemeral port). */
export async function startUpstream(
  t: Cleanup,
  name: string,
  handler: Handler = answerOk,
): Promise<Upstream> {
  const server = createServer();
  const upstream: Upstream = { name, port: 0, server, hits: 0, handler };
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    upstream.hits++;
    Promise.resolve(upstream.handler(req, res, upstream)).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  upstream.port = (server.address() as { port: number }).port;
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return upstream;
}

/** Several upstreams named `${prefix}-0`, `${prefix}-1`, … */
export async function startUpstreams(
  t: Cleanup,
  prefix: string,
  count: number,
  handler: Handler = answerOk,
): Promise<Upstream[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => startUpstream(t, `${prefix}-${i}`, handler)));
}

/** A port nothing listens on (bound, then released). */
export async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export function endpointOf(
  upstream: { name: string; port: number },
  zone = "zone-a",
  release = "v1",
): Endpoint {
  return {
    instance: upstream.name,
    service: "api",
    release,
    zone,
    host: "local",
    address: "127.0.0.1",
    port: upstream.port,
  };
}

export interface RunningProxy {
  proxy: ServiceProxy;
  port: number;
  stats: TrafficStats;
  faults: FaultRegistry;
  events: TrafficEvent[];
  /** An HTTP client pool to the proxy (closed after the test). */
  client: Pool;
}

/** A proxy for service "api" on an ephemeral port, with `endpoints` set. */
export async function startProxy(
  t: Cleanup,
  options: {
    traffic?: TrafficSpec;
    endpoints?: Endpoint[];
    connections?: number;
    /** The proxy's uniform [0, 1) source (balancing, failover shedding, fault rates, backoff jitter). */
    random?: () => number;
  } = {},
): Promise<RunningProxy> {
  const stats = new TrafficStats();
  const faults = new FaultRegistry();
  const events: TrafficEvent[] = [];
  const proxy = new ServiceProxy({
    service: "api",
    port: 0,
    traffic: options.traffic ?? traffic(),
    stats,
    faults,
    onEvent: (e) => events.push(e),
    // Seeded, not Math.random: a run replays, and a statistical assertion can be as tight as its
    // sample allows instead of wide enough for any run.
    random: options.random ?? seededRandom(PROXY_SEED),
  });
  await proxy.listen();
  t.after(() => proxy.close());
  if (options.endpoints) proxy.setEndpoints(options.endpoints);
  const client = new Pool(`http://127.0.0.1:${proxy.port}`, { connections: options.connections ?? 32 });
  t.after(() => client.destroy());
  return { proxy, port: proxy.port, stats, faults, events, client };
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request through `client`; the body is read whole. */
export async function send(
  client: Pool,
  options: { path?: string; method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Reply> {
  const response = await client.request({
    path: options.path ?? "/",
    method: (options.method ?? "GET") as "GET",
    headers: options.headers ?? {},
    body: options.body ?? null,
  });
  const body = await response.body.text();
  return { status: response.statusCode, headers: response.headers, body };
}

/** `count` requests, `concurrency` at a time; replies in completion order. */
export async function sendMany(
  client: Pool,
  count: number,
  concurrency: number,
  options: Parameters<typeof send>[1] = {},
): Promise<Reply[]> {
  const replies: Reply[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++;
      replies.push(await send(client, options));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return replies;
}

/** How many replies came from each instance (`x-homeostat-instance`). */
export function countByInstance(replies: readonly Reply[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const reply of replies) {
    const instance = String(reply.headers["x-homeostat-instance"] ?? "none");
    counts.set(instance, (counts.get(instance) ?? 0) + 1);
  }
  return counts;
}

/**
 * Send `payload` on a fresh TCP connection and collect everything until the server closes it
 * (or `timeoutMs` passes, then the socket is destroyed and what arrived is returned).
 */
export function rawExchange(port: number, payload: string | Buffer, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(payload));
    let received = "";
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      received += chunk;
    });
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(received);
    });
    socket.on("error", (error) => {
      clearTimeout(timer);
      if (received === "") reject(error);
    });
  });
}

/** A gate that holds requests until opened. */
export function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { wait, open };
}
