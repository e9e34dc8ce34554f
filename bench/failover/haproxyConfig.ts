/**
 * HAProxy in front of three instances of the demo app, as the failover bench runs it: with its
 * default health checks, with checks tuned to Homeostat's readiness probe, and (its own best
 * effort) tuned checks plus retries redispatched to another server.
 */

export type HaproxyScenario = "haproxy-default" | "haproxy-tuned" | "haproxy-redispatch";

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
    `  default-server inter ${t.intervalMs}ms fall ${t.failureThreshold} rise ${t.successThreshold}`,
  ];
}

function retries(config: HaproxyFailoverConfig): string[] {
  if (config.scenario !== "haproxy-redispatch") {
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
