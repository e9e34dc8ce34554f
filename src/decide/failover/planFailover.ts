/**
 * The failover plan: evacuate a failing domain in steps, and before each step make sure the
 * targets can take it — add instances in the target zones first, then shed sheddable, then default
 * traffic, never critical, and never push a target past its ceiling. If only shedding critical
 * traffic would do, the plan says it is infeasible and by how much it is short. Pure: no I/O, no clock.
 */

import { HomeostatError } from "../../errors.ts";
import { compare, EPSILON_RPS, ServiceEvacuation, type ServiceStep } from "./serviceEvacuation.ts";
import type { FailoverPlan, FailoverStep, ServiceCapacity } from "./types.ts";
import { ceilRps, clean, count, percent, rps } from "./words.ts";

export const DEFAULT_FAILOVER_STEP_PERCENT = 25;

/** Utilization this close above a ceiling is float noise, not overload. */
const EPSILON_UTILIZATION = 1e-6;

export interface PlanFailoverInput {
  /** The zone to evacuate. */
  domain: string;
  services: readonly ServiceCapacity[];
  /** Share of the domain's original load each step moves (0 < p ≤ 100, default 25). */
  stepPercent?: number;
  /** Zones that fail with `domain` (same power, network, dependency): never targets. */
  sharesFateWith?: readonly string[];
}

/**
 * Plans moving `domain`'s load to the other zones. Targets are the zones with at least one healthy
 * instance, other than `domain` and `sharesFateWith`. For each service with instances in `domain`,
 * step k moves k × `stepPercent` % of that load (cumulative), spread over the service's healthy
 * target instances in proportion to their spare capacity under the ceiling. When it does not fit:
 * add instances (each of `instanceCapacityRps`, up to `maxReplicas` counting every instance outside
 * `domain`, each in the target zone with the fewest of the service's instances), then shed — the
 * minimum, lowest criticality first. Shed rates are those in effect during the step, rounded up to
 * 0.01 rps; steps are numbered from 1. A pool with load it cannot place reports `Infinity` as peak.
 */
export function planFailover(input: PlanFailoverInput): FailoverPlan {
  const { domain } = input;
  const stepPercent = input.stepPercent ?? DEFAULT_FAILOVER_STEP_PERCENT;
  if (!Number.isFinite(stepPercent) || stepPercent <= 0 || stepPercent > 100) {
    throw new HomeostatError(
      "HS_BAD_REQUEST",
      `the failover step must be a percentage in (0, 100], not ${stepPercent}`,
      {
        details: { stepPercent },
      },
    );
  }
  const fateSharing = [...new Set(input.sharesFateWith ?? [])]
    .filter((zone) => zone !== domain)
    .sort(compare);
  const excluded = new Set([domain, ...fateSharing]);
  const targets = targetZones(input.services, excluded);
  const affected = input.services
    .filter((service) => service.instances.some((instance) => instance.zone === domain))
    .sort((a, b) => compare(a.service, b.service));
  if (affected.length === 0) {
    return {
      domain,
      feasible: true,
      summary: `nothing runs in ${domain}: there is no load to move`,
      steps: [],
      targets,
    };
  }

  const evacuations = affected.map((service) => new ServiceEvacuation(service, domain, targets));
  const stepCount = Math.ceil(100 / stepPercent - 1e-9);
  const steps: FailoverStep[] = [];
  const worstShortfall = new Map<string, { rps: number; step: number; shiftedPercent: number }>();
  for (let index = 1; index <= stepCount; index++) {
    const shiftedPercent = Math.min(100, clean(index * stepPercent));
    const results = evacuations.map((evacuation) => ({
      evacuation,
      result: evacuation.step(shiftedPercent / 100),
    }));
    for (const { evacuation, result } of results) {
      const service = evacuation.spec.service;
      if (result.shortfallRps > (worstShortfall.get(service)?.rps ?? 0)) {
        worstShortfall.set(service, { rps: result.shortfallRps, step: index, shiftedPercent });
      }
    }
    steps.push(describeStep(index, shiftedPercent, domain, results));
  }

  const feasible = steps.every((step) => step.withinCeiling);
  return {
    domain,
    feasible,
    summary: feasible
      ? feasibleSummary(domain, targets, fateSharing, stepPercent, steps)
      : infeasibleSummary(domain, targets, fateSharing, worstShortfall, steps),
    steps,
    targets,
  };
}

/** Zones with a healthy instance of any service, except the excluded ones; by name. */
function targetZones(services: readonly ServiceCapacity[], excluded: ReadonlySet<string>): string[] {
  const zones = new Set<string>();
  for (const service of services) {
    for (const instance of service.instances) {
      if (instance.healthy && !excluded.has(instance.zone)) zones.add(instance.zone);
    }
  }
  return [...zones].sort(compare);
}

interface ServiceResult {
  evacuation: ServiceEvacuation;
  result: ServiceStep;
}

function describeStep(
  index: number,
  shiftedPercent: number,
  domain: string,
  results: readonly ServiceResult[],
): FailoverStep {
  const step: FailoverStep = {
    index,
    shiftedPercent,
    addInstances: [],
    shed: [],
    projected: [],
    peakUtilization: 0,
    withinCeiling: true,
    reasons: [],
  };
  const zonePeaks = new Map<string, { peak: number; over: boolean }>();
  for (const { evacuation, result } of results) {
    const { service, ceiling, maxReplicas } = evacuation.spec;
    for (const { zone, count: n } of result.added) {
      const reason = `adds ${count(n, "instance")} of ${service} in ${zone}: projected ${percent(result.peakBeforeScaleUp)} > ceiling ${percent(ceiling)}`;
      step.addInstances.push({ service, zone, count: n, reason });
      step.reasons.push(reason);
    }
    let shedSheddable = 0;
    for (const { criticality, rps: amount } of result.shed) {
      const why =
        criticality === "sheddable"
          ? whySheddable(result, service, ceiling, maxReplicas)
          : shedSheddable > 0
            ? `shedding ${rps(ceilRps(shedSheddable))} of sheddable traffic is not enough`
            : "there is no sheddable traffic to shed";
      if (criticality === "sheddable") shedSheddable = amount;
      const reason = `sheds ${rps(ceilRps(clean(amount)))} of ${criticality} ${service} traffic: ${why}`;
      step.shed.push({ service, criticality, rps: ceilRps(clean(amount)), reason });
      step.reasons.push(reason);
    }
    if (result.shortfallRps > 0) {
      step.withinCeiling = false;
      step.reasons.push(
        `${service} is short ${rps(result.shortfallRps)}: only critical traffic is left to shed, and critical traffic is never shed`,
      );
      if (evacuation.pool.length === 0) step.peakUtilization = Number.POSITIVE_INFINITY;
    }
    for (const { member, utilization } of result.projected) {
      step.projected.push({ instance: member.instance, service, zone: member.zone, utilization });
      const over = utilization > ceiling + EPSILON_UTILIZATION;
      if (over) step.withinCeiling = false;
      step.peakUtilization = Math.max(step.peakUtilization, utilization);
      const zone = zonePeaks.get(member.zone) ?? { peak: 0, over: false };
      zonePeaks.set(member.zone, { peak: Math.max(zone.peak, utilization), over: zone.over || over });
    }
  }
  step.projected.sort(
    (a, b) => compare(a.zone, b.zone) || compare(a.service, b.service) || compare(a.instance, b.instance),
  );
  for (const zone of [...zonePeaks.keys()].sort(compare)) {
    const { peak, over } = zonePeaks.get(zone)!;
    step.reasons.push(
      `${zone} at ${percent(peak)} after moving ${shiftedPercent} % of ${domain}'s load${over ? " (above the ceiling)" : ""}`,
    );
  }
  return step;
}

function whySheddable(result: ServiceStep, service: string, ceiling: number, maxReplicas: number): string {
  const over = `projected ${percent(result.peakAfterScaleUp)} > ceiling ${percent(ceiling)}`;
  if (result.added.length > 0) return `still ${percent(result.peakAfterScaleUp)} after scale-up`;
  switch (result.scaleUpLimit) {
    case "max-replicas":
      return `${over} and ${service} is at maxReplicas ${maxReplicas}`;
    case "no-target-zone":
      return `${over} and there is no healthy zone to add instances in`;
    case "no-instance-capacity":
      return `${over} and an added instance would bring no capacity`;
    case null:
      return `some targets already serve above the ceiling ${percent(ceiling)} before anything moves`;
  }
}

function excludedWords(domain: string, fateSharing: readonly string[]): string {
  return fateSharing.length === 0 ? "" : `; ${fateSharing.join(", ")} excluded (shares ${domain}'s fate)`;
}

function feasibleSummary(
  domain: string,
  targets: readonly string[],
  fateSharing: readonly string[],
  stepPercent: number,
  steps: readonly FailoverStep[],
): string {
  const peak = Math.max(...steps.map((step) => step.peakUtilization));
  const parts = [
    `moves ${domain}'s load to ${targets.join(", ")} in ${count(steps.length, "step")} of ${stepPercent} %, peak ${percent(peak)} within the ceiling`,
  ];
  const added = new Map<string, number>();
  for (const step of steps) {
    for (const add of step.addInstances) {
      const key = `${add.service} in ${add.zone}`;
      added.set(key, (added.get(key) ?? 0) + add.count);
    }
  }
  if (added.size > 0) {
    const total = [...added.values()].reduce((sum, n) => sum + n, 0);
    parts.push(
      `adds ${count(total, "instance")} (${[...added].map(([where, n]) => `${n} of ${where}`).join(", ")})`,
    );
  }
  const maxShed = { sheddable: 0, default: 0 };
  for (const step of steps) {
    const perCriticality = { sheddable: 0, default: 0 };
    for (const shed of step.shed) {
      if (shed.criticality !== "critical") perCriticality[shed.criticality] += shed.rps;
    }
    maxShed.sheddable = Math.max(maxShed.sheddable, perCriticality.sheddable);
    maxShed.default = Math.max(maxShed.default, perCriticality.default);
  }
  if (maxShed.sheddable > EPSILON_RPS)
    parts.push(`sheds up to ${rps(maxShed.sheddable)} of sheddable traffic`);
  if (maxShed.default > EPSILON_RPS) parts.push(`sheds up to ${rps(maxShed.default)} of default traffic`);
  return parts.join("; ") + excludedWords(domain, fateSharing);
}

function infeasibleSummary(
  domain: string,
  targets: readonly string[],
  fateSharing: readonly string[],
  worstShortfall: ReadonlyMap<string, { rps: number; step: number; shiftedPercent: number }>,
  steps: readonly FailoverStep[],
): string {
  const parts: string[] = [];
  if (targets.length === 0) parts.push(`no healthy zone outside ${domain} can take its load`);
  for (const service of [...worstShortfall.keys()].sort(compare)) {
    const { rps: short, step, shiftedPercent } = worstShortfall.get(service)!;
    parts.push(
      `${service} is short ${rps(short)} at step ${step} (${shiftedPercent} %) after adding every instance allowed and shedding all sheddable and default traffic; critical traffic is never shed`,
    );
  }
  if (worstShortfall.size === 0) {
    const first = steps.find((step) => !step.withinCeiling)!;
    parts.push(`step ${first.index} leaves a target at ${percent(first.peakUtilization)}, above its ceiling`);
  }
  return `infeasible: ${parts.join("; ")}${excludedWords(domain, fateSharing)}`;
}
