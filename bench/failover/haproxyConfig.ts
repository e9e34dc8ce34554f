/**
 * HAProxy in front of three instances of the demo app, as the failover bench runs it: with its
 * default health checks; with checks tuned to Homeostat's readiness probe; tuned checks plus
 * retries redispatched to another server; and its best configuration for this fault, tuned checks
 * plus passive checks (`observe layer7`, `error-limit`, `on-error mark-down`: the first failed
 * connection to a server marks it DOWN) plus redispatched retries.
 *
 * HAProxy 2.6 (Debian's): `observe layer4` counts failed connections, `observe layer7` counts
 * them too and also invalid answers, timeouts and 5xx (but 501 and 505); `error-limit` is how many
 * consecutive such errors trigger `on-error` (default 10); `on-error mark-down` marks the server
 * DOWN at once (the other modes, `fastinter`, `fail-check`, `sudden-death`, wait for checks).
 * Observing needs `check` on the server.
 */

export const HAPROXY_SCENARIOS = [
  "haproxy-default",
  "haproxy-tuned",
  "haproxy-redispatch",
  "haproxy-passive",
] as const;
export type HaproxyScenario = (typeof HAPROXY_SCENARIOS)[number];

/** How each HAProxy scenario learns that a server died, and what it does with the request. */
export const HAPROXY_SETUP: Record<HaproxyScenario, { label: string; detection: string; routing: string }> = {
  "haproxy-default": {
    label: "HAProxy, default checks",
    detection: "active TCP checks (`check`: every 2 s, DOWN after 3 failures)",
    routing: "`retries 3` to the same server, no redispatch",
  },
  "haproxy-tuned": {
    label: "HAProxy, tuned checks (probe only)",
    detection: "active HTTP checks copied from Homeostat's readiness probe (`GET /ready`)",
    routing: "`retries 3` to the same server, no redispatch",
  },
  "haproxy-redispatch": {
    label: "HAProxy, tuned checks + redispatch",
    detection: "active HTTP checks, as tuned (probe only: no passive checks)",
    routing: "`retries 3`, `option redispatch 1`, `retry-on conn-failure empty-response response-timeout`",
  },
  "haproxy-passive": {
    label: "HAProxy, tuned + passive (its best configuration here)",
    detection:
      "passive checks on live traffic (`observe layer7`, `error-limit`, `on-error mark-down`: DOWN after `error-limit` consecutive failed connections or bad answers), and the tuned active checks",
    routing: "`retries 3`, `option redispatch 1`, `retry-on conn-failure empty-response response-timeout`",
  },
};

/** Homeostat's readiness probe, which the tuned checks copy. */
export interface ProbeTuning {
  intervalMs: number;
  timeoutMs: number;
  failureThreshold: number;
  successThreshold: number;
}

export interface HaproxyFailoverConfig {
  scenario: HaproxyScenario;
  port: number;
  /** The instances' ports, in instance order (server `api-K` is instance K). */
  upstreamPorts: number[];
  /** The runtime API socket (`show stat`). */
  socket: string;
  tuning: ProbeTuning;
  /** Passive checks (`haproxy-passive`): consecutive errors on live traffic before mark-down. */
  errorLimit: number;
}

/** Passive checks (`haproxy-passive` only): on the servers, next to the active ones. */
function passive(config: HaproxyFailoverConfig): string {
  return config.scenario === "haproxy-passive"
    ? ` observe layer7 error-limit ${config.errorLimit} on-error mark-down`
    : "";
}

function checks(config: HaproxyFailoverConfig): string[] {
  if (config.scenario === "haproxy-default") {
    // `check` alone: a TCP connect every 2 s, down after 3 failures, up after 2 successes.
    return [];
  }
  const t = config.tuning;
  return [
    "  option httpchk GET /ready",
    `  timeout check ${t.timeoutMs}ms`,
    `  default-server inter ${t.intervalMs}ms fall ${t.failureThreshold} rise ${t.successThreshold}${passive(config)}`,
  ];
}

function retries(config: HaproxyFailoverConfig): string[] {
  if (config.scenario !== "haproxy-redispatch" && config.scenario !== "haproxy-passive") {
    // HAProxy's defaults, written out: up to 3 retries of a failed connect, to the same server.
    return ["  retries 3"];
  }
  return ["  retries 3", "  option redispatch 1", "  retry-on conn-failure empty-response response-timeout"];
}

export function haproxyFailoverConfig(config: HaproxyFailoverConfig): string {
  return [
    "global",
    "  nbthread 1",
    // Enough for seconds of requests held on a dead server, within a 20000 open-file limit.
    "  maxconn 8000",
    `  stats socket ${config.socket} mode 600 level admin`,
    "",
    "defaults",
    "  mode http",
    "  option http-keep-alive",
    "  timeout connect 5s",
    "  timeout client 30s",
    "  timeout server 30s",
    ...retries(config),
    "",
    "frontend bench",
    `  bind 127.0.0.1:${config.port}`,
    "  default_backend api",
    "",
    "backend api",
    "  balance roundrobin",
    ...checks(config),
    // Which attempt answered, for the bench: retries count (+N when redispatched) and server.
    "  http-response set-header x-haproxy-retries %rc",
    ...config.upstreamPorts.map((port, k) => `  server api-${k} 127.0.0.1:${port} check`),
    "",
  ].join("\n");
}
