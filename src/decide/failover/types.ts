/**
 * Failover across failure domains, as data: the capacity picture (what each instance can take and
 * takes now), the plan to evacuate a domain in capacity-checked steps, static-stability headroom,
 * shared-fate findings, and failback. The functions in this folder are pure.
 */

import type { Criticality } from "../../traffic/contracts.ts";

/** One instance in the capacity picture. */
export interface CapacityInstance {
  instance: string;
  service: string;
  zone: string;
  host: string;
  /** Requests/s it can serve at 100 % utilization (from the spec's `capacity.rps`). */
  capacityRps: number;
  /** Requests/s it serves now (from the data plane's stats). */
  loadRps: number;
  /** Load by criticality, requests/s (sums to `loadRps`). */
  loadByCriticality: Record<Criticality, number>;
  healthy: boolean;
}

export interface ServiceCapacity {
  service: string;
  /** Utilization no instance may be pushed past (0..1, default 0.8). */
  ceiling: number;
  /** Instances per domain may grow up to this many in total for the service. */
  maxReplicas: number;
  /** Capacity of one added instance, requests/s. */
  instanceCapacityRps: number;
  instances: CapacityInstance[];
}

/** How a domain (zone) looks now. */
export type DomainState = "healthy" | "degraded" | "down";

export interface DomainHealth {
  zone: string;
  state: DomainState;
  healthyInstances: number;
  totalInstances: number;
  reason: string;
}

/** One step of a failover: move `shiftPercent` of the failed domain's original traffic. */
export interface FailoverStep {
  index: number;
  /** Cumulative share of the failed domain's traffic moved after this step (0..100). */
  shiftedPercent: number;
  /** Instances to add first, per target zone and service. */
  addInstances: { service: string; zone: string; count: number; reason: string }[];
  /** Sheddable (then default) traffic to shed, per service, requests/s. */
  shed: { service: string; criticality: Criticality; rps: number; reason: string }[];
  /** Utilization of every target instance after this step (0..1+). */
  projected: { instance: string; service: string; zone: string; utilization: number }[];
  /** The highest projected utilization, and whether it stays at or under the ceiling. */
  peakUtilization: number;
  withinCeiling: boolean;
  reasons: string[];
}

export interface FailoverPlan {
  domain: string;
  feasible: boolean;
  /** Why it is or is not feasible, in words. */
  summary: string;
  steps: FailoverStep[];
  /** Targets never include the failed domain, nor domains that share its fate. */
  targets: string[];
}

/** Can the fleet lose this domain at current load without passing the ceiling? */
export interface DomainHeadroom {
  zone: string;
  /** Peak utilization of the survivors if this zone were lost now (no scale-up, no shedding). */
  survivorPeakUtilization: number;
  survivesLoss: boolean;
  /** Spare requests/s the survivors would have under the ceiling (negative: short by that much). */
  headroomRps: number;
}

export type FindingSeverity = "critical" | "warning" | "info";

export interface IndependenceFinding {
  severity: FindingSeverity;
  kind:
    | "single-zone"
    | "single-host"
    | "single-instance"
    | "backup-shares-domain"
    | "shared-single-dependency";
  service: string;
  message: string;
  /** What to change. */
  fix: string;
}
