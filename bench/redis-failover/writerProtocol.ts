/**
 * What the bench and its writer process (writer.ts) say to each other, and the one set of ioredis
 * options every contender's client uses.
 */

import type { RedisOptions } from "ioredis";

/** How the client reaches the primary. */
export type Access =
  /** A plain connection to one address (Homeostat's endpoint). */
  | { kind: "plain"; host: string; port: number }
  /** ioredis's Sentinel mode: asks these Sentinel(-compatible) addresses for the primary of `name`. */
  | { kind: "sentinel"; name: string; sentinels: { host: string; port: number }[] };

export interface WriterConfig {
  access: Access;
  intervalMs: number;
  /** Keys are `<keyPrefix><seq>`. */
  keyPrefix: string;
  recordsFile: string;
  /** Delay before each reconnection attempt (ms). */
  retryDelayMs: number;
  /** Sentinel mode: ioredis's `failoverDetector` (on unless `BENCH_FAILOVER_DETECTOR=0`). */
  failoverDetector?: boolean;
}

export type WriterMessage = { type: "start" } | { type: "stop"; settleMs: number };

export type WriterReply =
  | { type: "ready" }
  | { type: "started"; startedAt: number }
  | { type: "stopped"; stoppedAt: number; unresolved: number };

/**
 * The client's settings, the same for every contender (only the way in differs):
 * - reconnect `retryDelayMs` after a lost connection, every time (ioredis's default backs off up
 *   to seconds, which would measure the client's back-off instead of the failover);
 * - no command or socket timeout (ioredis's defaults): a write waits for its answer or for its
 *   connection to close, so a write that a hung or fenced server answers late is seen as the
 *   client sees it — acknowledged;
 * - the offline queue and `maxRetriesPerRequest` 20 (ioredis's defaults): writes made while
 *   disconnected wait for the next connection, and fail after 20 reconnection attempts;
 * - Sentinel mode: `failoverDetector` on (ioredis subscribes to `+switch-master` on the
 *   Sentinels and drops its connection at a failover instead of waiting on a hung primary: Sentinel
 *   at its best), Sentinels asked again `retryDelayMs` after a failure.
 */
export function clientOptions(config: WriterConfig): RedisOptions {
  const common: RedisOptions = {
    retryStrategy: () => config.retryDelayMs,
    connectTimeout: 1_000,
    lazyConnect: false,
    enableAutoPipelining: false,
    connectionName: "hs-bench-writer",
  };
  const access = config.access;
  if (access.kind === "plain") return { ...common, host: access.host, port: access.port };
  return {
    ...common,
    name: access.name,
    sentinels: access.sentinels,
    sentinelRetryStrategy: () => config.retryDelayMs,
    failoverDetector: config.failoverDetector ?? true,
  };
}
