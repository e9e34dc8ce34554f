/**
 * The scenario's facts, read from the fleet file rather than repeated here: which service, which
 * releases, the deploy settings and the canary's injected error rate.
 */

import type { FleetSpec, ServiceSpec } from "../../src/spec/index.ts";

export const SERVICE = "checkout";
export const STABLE = "v1";
export const FAILING = "v2-errors";
export const MIGRATING = "v3-migrates";
export const INCOMPATIBLE = "v4-needs-catalog-v2";

export interface ScenarioFacts {
  service: string;
  frontPort: number;
  replicas: number;
  steps: number[];
  stepDurationMs: number;
  stepDeadlineMs: number;
  soakMs: number;
  minRequests: number;
  maxErrorRateIncrease: number;
  slo: { errorRate: number; p99Ms: number };
  /** FAULT_ERROR_RATE of the failing release. */
  canaryErrorRate: number;
}

export function serviceOf(fleet: FleetSpec): ServiceSpec {
  const service = fleet.services.find((s) => s.name === SERVICE);
  if (service === undefined) throw new Error(`the fleet has no service ${SERVICE}`);
  for (const version of [STABLE, FAILING, MIGRATING, INCOMPATIBLE]) {
    if (service.releases[version] === undefined) throw new Error(`${SERVICE} has no release ${version}`);
  }
  if (service.release !== STABLE) throw new Error(`${SERVICE} runs ${service.release}, expected ${STABLE}`);
  return service;
}

export function scenarioFacts(fleet: FleetSpec): ScenarioFacts {
  const service = serviceOf(fleet);
  if (service.port === undefined) throw new Error(`${SERVICE} has no front port`);
  const rate = Number(service.releases[FAILING]!.env.FAULT_ERROR_RATE);
  if (!Number.isFinite(rate)) throw new Error(`${SERVICE} ${FAILING} has no FAULT_ERROR_RATE`);
  const { deploy } = service;
  return {
    service: SERVICE,
    frontPort: service.port,
    replicas: service.replicas,
    steps: deploy.steps,
    stepDurationMs: deploy.stepDurationMs,
    stepDeadlineMs: deploy.stepDeadlineMs,
    soakMs: deploy.soakMs,
    minRequests: deploy.analysis.minRequests,
    maxErrorRateIncrease: deploy.analysis.maxErrorRateIncrease,
    slo: { errorRate: service.slo.errorRate, p99Ms: service.slo.p99Ms },
    canaryErrorRate: rate,
  };
}
