/**
 * What a fleet file's settings promise, computed from the resolved spec: the steady probe rate
 * and the liveness detection bound that the measured numbers are compared with.
 */

import type { FleetSpec, ProbeSpec } from "../../src/spec/index.ts";

/** A probe's settings as the report prints them. */
export interface ProbeSettings {
  check: string;
  intervalMs: number;
  timeoutMs: number;
  failureThreshold: number;
  successThreshold: number;
  initialDelayMs: number;
}

export interface ServiceFacts {
  service: string;
  replicas: number;
  probes: { startup: ProbeSettings | null; readiness: ProbeSettings | null; liveness: ProbeSettings | null };
  /** Readiness + liveness runs per second for the whole service once started (startup has stopped). */
  steadyProbesPerSecond: number;
  /** `interval × failureThreshold + timeout` of the liveness probe, or null without one. */
  livenessBoundMs: number | null;
  restart: { firstRestartDelayMs: number; resetAfterMs: number; stopGracePeriodMs: number };
}

export interface FleetFacts {
  file: string;
  instances: number;
  services: ServiceFacts[];
  steadyProbesPerSecond: number;
}

function settings(spec: ProbeSpec | undefined): ProbeSettings | null {
  if (spec === undefined) return null;
  const check =
    spec.check.kind === "http"
      ? `http ${spec.check.path}`
      : spec.check.kind === "tcp"
        ? "tcp"
        : `exec ${spec.check.command}`;
  return {
    check,
    intervalMs: spec.intervalMs,
    timeoutMs: spec.timeoutMs,
    failureThreshold: spec.failureThreshold,
    successThreshold: spec.successThreshold,
    initialDelayMs: spec.initialDelayMs,
  };
}

/**
 * A probe chain runs once per interval (measured from the start of the previous run), so each
 * steady probe costs `1000 / intervalMs` runs per second per instance.
 */
function perSecond(spec: ProbeSpec | undefined): number {
  return spec === undefined ? 0 : 1000 / spec.intervalMs;
}

export function fleetFacts(fleet: FleetSpec): FleetFacts {
  const services = fleet.services.map((service): ServiceFacts => {
    const { startup, readiness, liveness } = service.probes;
    return {
      service: service.name,
      replicas: service.replicas,
      probes: { startup: settings(startup), readiness: settings(readiness), liveness: settings(liveness) },
      steadyProbesPerSecond: service.replicas * (perSecond(readiness) + perSecond(liveness)),
      livenessBoundMs:
        liveness === undefined ? null : liveness.intervalMs * liveness.failureThreshold + liveness.timeoutMs,
      restart: {
        // The first failure of a rested slot restarts at once (see src/decide/backoff.ts).
        firstRestartDelayMs: 0,
        resetAfterMs: service.restart.resetAfterMs,
        stopGracePeriodMs: service.restart.stopGracePeriodMs,
      },
    };
  });
  return {
    file: fleet.file,
    instances: services.reduce((n, s) => n + s.replicas, 0),
    services,
    steadyProbesPerSecond: services.reduce((n, s) => n + s.steadyProbesPerSecond, 0),
  };
}

/** Every port an instance of the fleet listens on (slot i of a service: basePort + i). */
export function fleetPorts(fleet: FleetSpec): number[] {
  return fleet.services.flatMap((s) => Array.from({ length: s.replicas }, (_, slot) => s.basePort + slot));
}
