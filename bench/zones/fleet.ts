/**
 * The fleets the zone bench runs: one service of demo-app instances with a real, declared
 * capacity (`WORKERS` × `WORK_MS`, see examples/README.md), spread over two or three zones, behind
 * one front port. HOMEOSTAT and NAIVE run the same fleet file but for `failover.automatic`; HAProxy
 * (haproxy.ts) runs the same instances on the same ports and zones, with checks and deadlines taken
 * from the constants below.
 */

import { APP, NODE } from "../../test/helpers/e2e.ts";
import type { Mode, ScenarioName } from "./options.ts";

export const SERVICE = "api";
export const FAILED_ZONE = "zone-a";
/** Fixed ports, clear of the example fleet's and the other benches' (7070, 7100, 7200, 17100–17211). */
export const FRONT_PORT = 7400;
export const API_PORT = 7470;
export const BASE_PORT = 17400;

/** Each instance: 10 slots of 100 ms of (timer) work = 100 requests/s. */
export const WORKERS = 10;
export const WORK_MS = 100;
export const INSTANCE_CAPACITY_RPS = (WORKERS * 1000) / WORK_MS;
export const CEILING = 0.8;

/** Failover settings both modes share (only `automatic` differs). */
export const FAILOVER = {
  downShare: "50%",
  degradedShare: "20%",
  stepPercent: 25,
  stepIntervalMs: 2_000,
  stabilizationMs: 10_000,
  minIntervalMs: 60_000,
} as const;

/**
 * The proxy's deadlines, so that it answers (504, or a 503 shed) before the client's 2 s timeout:
 * a blackholed attempt is abandoned after 750 ms and retried elsewhere, a request gives up after
 * 1.5 s, and waiting for admission lasts 400 ms at most (400 + 1500 < 2000). `attempts` and
 * `outlierConsecutiveFailures` are Homeostat's defaults, written out for HAProxy to copy.
 */
export const TRAFFIC = {
  attempts: 3,
  perTryTimeoutMs: 750,
  requestTimeoutMs: 1500,
  queueTimeoutMs: 400,
  outlierConsecutiveFailures: 5,
} as const;

const TRAFFIC_YAML = [
  `      retries: { attempts: ${TRAFFIC.attempts}, perTryTimeout: ${TRAFFIC.perTryTimeoutMs}ms }`,
  `      requestTimeout: ${TRAFFIC.requestTimeoutMs}ms`,
  `      limits: { queueTimeout: ${TRAFFIC.queueTimeoutMs}ms }`,
  `      outlierDetection: { consecutiveFailures: ${TRAFFIC.outlierConsecutiveFailures} }`,
];

/**
 * The readiness probe (also the budget of Homeostat's zone probe, which runs at the readiness
 * probe's interval, timeout and failure threshold), and HAProxy's active check copies it.
 */
export const READINESS = {
  intervalMs: 250,
  timeoutMs: 250,
  failureThreshold: 3,
  successThreshold: 1,
} as const;

export interface Scenario {
  name: ScenarioName;
  zones: string[];
  replicas: number;
  maxReplicas: number;
  /** Slot i listens on basePort + i. */
  basePort: number;
  instanceCapacityRps: number;
  ceiling: number;
  failedZone: string;
  /** Slot → zone, as the spec places slots: round-robin over the zones. */
  zoneOfSlot(slot: number): string;
}

export function scenario(name: ScenarioName): Scenario {
  const zones = name === "three-zones" ? ["zone-a", "zone-b", "zone-c"] : ["zone-a", "zone-b"];
  const replicas = 2 * zones.length;
  return {
    name,
    zones,
    replicas,
    // The spec's rule: maxReplicas ≤ 2 × replicas (a service reserves two banks of ports).
    maxReplicas: 2 * replicas,
    basePort: BASE_PORT,
    instanceCapacityRps: INSTANCE_CAPACITY_RPS,
    ceiling: CEILING,
    failedZone: FAILED_ZONE,
    zoneOfSlot: (slot) => zones[slot % zones.length]!,
  };
}

/** Every instance port the service may use (both banks: scale-up takes the second). */
export function instancePorts(s: Scenario): number[] {
  return Array.from({ length: 2 * s.replicas }, (_, slot) => s.basePort + slot);
}

/**
 * The ports of every slot of `zone`, both banks: slot i listens on basePort + i and runs in
 * placement[i % zones] for its whole life (src/spec/placement.ts), so an instance the controller
 * restarts or adds in that zone during an outage lands on one of these ports.
 */
export function zonePorts(s: Scenario, zone: string): number[] {
  return instancePorts(s).filter((_, slot) => s.zoneOfSlot(slot) === zone);
}

/**
 * Probes are looser than the e2e tests' (a 2-core machine shared with load generators and other
 * benches can starve a process for a few hundred ms): an instance restarted because its probe
 * timed out on a busy machine would confound what is measured, which is the zone's loss.
 */
export function fleetYaml(s: Scenario, mode: Exclude<Mode, "haproxy">): string {
  const hosts = s.zones.map((zone) => `  host-${zone.slice(-1)}: { zone: ${zone} }`).join("\n");
  const duration = (ms: number) => `${ms}ms`;
  return `version: 1
name: zones-${s.name}-${mode}
hosts:
${hosts}
defaults:
  probes:
    startup: { http: { path: /healthz }, interval: 100ms, timeout: 100ms, failureThreshold: 100 }
    readiness: { http: { path: /ready }, interval: ${READINESS.intervalMs}ms, timeout: ${READINESS.timeoutMs}ms, failureThreshold: ${READINESS.failureThreshold}, successThreshold: ${READINESS.successThreshold} }
    liveness: { http: { path: /healthz }, interval: 500ms, timeout: 500ms, failureThreshold: 4 }
  restart:
    backoff: { initial: 200ms, max: 2s, multiplier: 2, jitter: 0.1 }
    stopGracePeriod: 2s
    resetAfter: 3s
failover:
  automatic: ${mode === "homeostat"}
  downShare: ${FAILOVER.downShare}
  degradedShare: ${FAILOVER.degradedShare}
  stepPercent: ${FAILOVER.stepPercent}
  stepInterval: ${duration(FAILOVER.stepIntervalMs)}
  stabilization: ${duration(FAILOVER.stabilizationMs)}
  minInterval: ${duration(FAILOVER.minIntervalMs)}
services:
  ${SERVICE}:
    replicas: ${s.replicas}
    basePort: ${BASE_PORT}
    port: ${FRONT_PORT}
    placement: { zones: [${s.zones.join(", ")}] }
    capacity: { rps: ${s.instanceCapacityRps}, targetUtilization: ${Math.round(s.ceiling * 100)}%, maxReplicas: ${s.maxReplicas} }
    traffic:
${TRAFFIC_YAML.join("\n")}
    release: v1
    releases:
      v1:
        command: ${JSON.stringify(NODE)}
        args: [${JSON.stringify(APP)}, --port, "{port}", --name, "{instance}"]
        env: { WORKERS: "${WORKERS}", WORK_MS: "${WORK_MS}" }
`;
}
