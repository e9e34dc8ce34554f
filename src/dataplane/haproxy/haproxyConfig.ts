/**
 * The managed HAProxy's configuration for the fleet, rendered from the services' traffic settings.
 * Pure: no I/O. Servers start as placeholders (`127.0.0.1:1 disabled`) and are filled in at run
 * time through the Runtime API, so scale-ups, deploys and weight changes need no reload; only a
 * change of the frontends (a service or port added or removed, traffic settings changed) does.
 */

import type { TrafficSpec } from "../../spec/model.ts";
import type { SheddingShares } from "../../traffic/contracts.ts";
import type { HaproxyPaths } from "./haproxyPaths.ts";

export interface HaproxyServiceConfig {
  /** The service's name: also its backend's name. */
  name: string;
  /** The service port, bound on 127.0.0.1. */
  port: number;
  traffic: TrafficSpec;
  /** Server names, one per instance slot (`<service>-<slot>`). */
  servers: string[];
}

/**
 * The one log line both sides use (parsed by logReceiver.ts): backend, server, status, total
 * active ms, queue ms, connect ms, response ms, retries (`+` when redispatched), termination state
 * (4 characters: session state, then persistence/cookie flags), criticality, method, and why
 * HAProxy answered locally (`-` when it did not).
 */
export const HAPROXY_LOG_FORMAT =
  "hs1 %b %s %ST %Ta %Tw %Tc %Tr %rc %tsc %[var(txn.hs_crit)] %HM %[var(txn.hs_local)] %[var(txn.hs_logp)]";

/** Every answered request logged: the log sampling map's value when nothing is sampled. */
export const LOG_ALL = 10_000;

/** A shed request's answer, as the embedded proxy's failover gate answers. */
export const SHED_RETURN =
  'http-request return status 503 content-type text/plain string "shed\\n" hdr x-homeostat-shed failover-shed hdr retry-after 1';

/** The ring the request lines go through to the data plane (see {@link renderHaproxyConfig}). */
const LOG_RING = "hs_log";
const LOG_RING_BYTES = 4 * 1024 * 1024;

/** Old workers still serving long requests after a reload or soft stop are stopped after this. */
export const HARD_STOP_AFTER_MS = 30_000;

/** Queue order under overload: critical is served first, sheddable waits last and times out first. */
const PRIORITY_CLASS = { critical: -1000, default: 0, sheddable: 1000 } as const;

const IDEMPOTENT = "GET HEAD OPTIONS PUT DELETE";

/** HAProxy names: letters, digits, `-`, `_`, `.`, `:`; a service or server name outside them is a bug upstream. */
function name(value: string): string {
  if (!/^[A-Za-z0-9_.:-]+$/.test(value))
    throw new Error(`not a valid HAProxy name: ${JSON.stringify(value)}`);
  return value;
}

/** A file path as a quoted configuration word. */
function quoted(path: string): string {
  if (/["\\\s]/.test(path)) throw new Error(`path not usable in haproxy.cfg: ${JSON.stringify(path)}`);
  return `"${path}"`;
}

function ms(value: number): string {
  return `${Math.max(1, Math.round(value))}ms`;
}

function frontend(service: HaproxyServiceConfig): string[] {
  const svc = name(service.name);
  return [
    `frontend fe_${svc}`,
    `  bind 127.0.0.1:${service.port}`,
    // Criticality: lowercased header, anything else is `default` (as the embedded proxy reads it).
    "  http-request set-var(txn.hs_crit) req.hdr(x-homeostat-criticality),lower",
    "  http-request set-var(txn.hs_crit) str(default) unless { var(txn.hs_crit) -m str critical default sheddable }",
    `  default_backend ${svc}`,
  ];
}

/**
 * Shedding and queue order, in the backend: a request refused in the frontend would be logged
 * with the frontend's name as `%b` (no backend chosen yet); here every line names the service.
 */
function backendRules(svc: string, paths: HaproxyPaths): string[] {
  return [
    // Failover shedding: the map holds each criticality's share in 1/10000ths (critical is never
    // listed, so 0); the request is refused when rand(10000) < share, i.e. rand - share < 0.
    `  http-request set-var(txn.hs_shed) var(txn.hs_crit),map_str_int(${quoted(paths.shedMap(svc))},0)`,
    "  http-request set-var(txn.hs_local) str(failover-shed) if { rand(10000),sub(txn.hs_shed) lt 0 }",
    `  ${SHED_RETURN} if { var(txn.hs_local) -m str failover-shed }`,
    ...Object.entries(PRIORITY_CLASS).map(
      ([crit, cls]) => `  http-request set-priority-class int(${cls}) if { var(txn.hs_crit) -m str ${crit} }`,
    ),
    // Log sampling under load: the share of answered requests that are logged, in 1/10000ths, from
    // a runtime map Homeostat sets (all of them until a service is busy, see logSampling.ts). A
    // line carries the share, so the data plane counts each logged answer for 10000 / share.
    // Whatever HAProxy answers itself, and any attempt without an answer, is always logged.
    `  http-request set-var(txn.hs_logp) str(sample),map_str_int(${quoted(paths.logMap(svc))},${LOG_ALL})`,
    "  http-response set-log-level silent if { rand(10000),sub(txn.hs_logp) ge 0 }",
  ];
}

function backend(service: HaproxyServiceConfig, paths: HaproxyPaths): string[] {
  const svc = name(service.name);
  const { retries, limits } = service.traffic;
  return [
    `backend ${svc}`,
    // roundrobin: weights change at run time (static-rr would need a reload); leastconn is not
    // used so the weights Homeostat computes are the shares served.
    "  balance roundrobin",
    // Request lines are the frontend's; a backend would log its servers' state changes (at any
    // level) to the same target, and those are Homeostat's own doing, not traffic.
    "  no log",
    `  timeout connect ${ms(Math.min(retries.perTryTimeoutMs, 5_000))}`,
    `  timeout server ${ms(retries.perTryTimeoutMs)}`,
    `  timeout queue ${ms(limits.queueTimeoutMs)}`,
    `  retries ${Math.max(0, retries.maxAttempts - 1)}`,
    "  retry-on conn-failure empty-response response-timeout 502 503 504",
    // Each retry goes to another server (redispatch every 1 retry).
    "  option redispatch 1",
    // A non-idempotent request is tried once at layer 7 (a connect failure is still retried: nothing was sent).
    `  http-request disable-l7-retry unless { method ${IDEMPOTENT} }`,
    "  http-reuse safe",
    // As the embedded engine: the instance that answered (attempts are in the log line, `%rc`).
    "  http-response set-header x-homeostat-instance %s",
    ...backendRules(svc, paths),
    ...service.servers.map(
      (server) =>
        `  server ${name(server)} 127.0.0.1:1 disabled weight 1 maxconn ${limits.maxConcurrentPerInstance}`,
    ),
  ];
}

/**
 * The fleet's haproxy.cfg. `logPort` is the data plane's log receiver, TCP on 127.0.0.1.
 *
 * The request lines go through a ring buffer (`ring hs_log`) that HAProxy forwards over TCP: many
 * lines per write instead of one UDP datagram per request (measured on this machine kind:
 * +3 µs of CPU per request, HAProxy and a counting receiver together, against +11 µs over UDP;
 * docs/data-plane.md#engines-embedded-or-haproxy), and lines
 * written while the receiver is away (a data-plane restart) wait in the ring (4 MiB) instead of
 * being lost.
 *
 * Runtime state across a reload: a new worker starts from this file, so the servers' addresses,
 * weights and states set through the Runtime API would be lost; `server-state-file` +
 * `load-server-state-from-file global` make it load what {@link HaproxyProcess.reload} dumped
 * (`show servers state`) just before. Maps are read from their files again: whoever changes a map
 * at run time also writes its file (see {@link shedMapText}), so a new worker starts from it.
 */
export function renderHaproxyConfig(o: {
  services: readonly HaproxyServiceConfig[];
  paths: HaproxyPaths;
  logPort: number;
}): string {
  const { paths } = o;
  const lines = [
    "# Rendered by Homeostat: changes here are overwritten.",
    "global",
    `  stats socket ${quoted(paths.adminSocket)} mode 600 level admin expose-fd listeners`,
    `  hard-stop-after ${ms(HARD_STOP_AFTER_MS)}`,
    `  server-state-file ${quoted(paths.serverState)}`,
    "",
    `ring ${LOG_RING}`,
    "  format raw",
    "  maxlen 4096",
    `  size ${LOG_RING_BYTES}`,
    "  timeout connect 1s",
    "  timeout server 10s",
    `  server dataplane 127.0.0.1:${o.logPort}`,
    "",
    "defaults",
    "  mode http",
    // HAProxy also sends its proxies' notices here (e.g. "Proxy fe_api stopped (…)" from an old
    // worker at a reload or stop): the receiver keeps the lines starting with `hs1 `.
    `  log ring@${LOG_RING} len 4096 format raw local0 info`,
    "  option dontlognull",
    // At a reload (or soft stop) 2.6 closes the old worker's idle keep-alive connections at once,
    // racing a client that is sending on one (a failed request). With this option the old worker
    // answers that next request, with `connection: close`; idle ones end by their timeouts,
    // bounded by hard-stop-after.
    "  option idle-close-on-response",
    `  log-format "${HAPROXY_LOG_FORMAT}"`,
    "  load-server-state-from-file global",
    "  timeout client 30s",
    "  timeout http-request 10s",
    "  timeout http-keep-alive 10s",
    "  timeout connect 5s",
    "  timeout server 30s",
    "",
  ];
  for (const service of o.services) lines.push(...frontend(service), "", ...backend(service, paths), "");
  return `${lines.join("\n")}`;
}

/**
 * A shedding map's file content: `sheddable` and `default` shares in 1/10000ths (critical is never
 * shed, so never listed). Both keys are always there (0 when nothing is shed), so the Runtime API
 * can `set map` them without first adding them. The same numbers go to `set map` at run time.
 */
export function shedMapText(shares: SheddingShares | null): string {
  return `sheddable ${shedUnits(shares?.sheddable ?? 0)}\ndefault ${shedUnits(shares?.default ?? 0)}\n`;
}

/** A log sampling map's file content (`share`: answered requests logged, in 1/10000ths). */
export function logMapText(share: number): string {
  return `sample ${Math.round(Math.min(LOG_ALL, Math.max(1, share)))}\n`;
}

/** A share in [0, 1] as the map's 1/10000ths. */
export function shedUnits(share: number): number {
  return Math.round(Math.min(1, Math.max(0, share)) * 10_000);
}
