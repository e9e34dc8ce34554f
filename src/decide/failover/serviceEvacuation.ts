/**
 * One service's share of a failover: its load in the failed domain, the pool of target instances
 * that take it (healthy instances in target zones, plus the ones the plan adds), and, step by step,
 * how many instances to add and how much to shed so that no target passes the ceiling.
 */

import type { Criticality } from "../../traffic/contracts.ts";
import { excessRps, spreadMovedLoad, totalExcessRps, totalSpareRps } from "./spread.ts";
import type { ServiceCapacity } from "./types.ts";
import { clean } from "./words.ts";

/** Below this many requests/s a difference is float noise, not load. */
export const EPSILON_RPS = 1e-6;

/** A target instance: an existing healthy one, or one the plan adds (no load of its own). */
export interface PoolMember {
  instance: string;
  zone: string;
  capacityRps: number;
  loadRps: number;
  loadByCriticality: Record<Criticality, number>;
  added: boolean;
}

export type ShedCriticality = Exclude<Criticality, "critical">;

/** What one step does for one service, before it is put into words. */
export interface ServiceStep {
  /** Instances added at this step, per zone (by zone name). */
  added: { zone: string; count: number }[];
  /** Peak utilization of the pool with this step's load, before and after adding instances (no shedding). */
  peakBeforeScaleUp: number;
  peakAfterScaleUp: number;
  /** Rates shed while this step is in effect, lowest criticality first; exact (not rounded). */
  shed: { criticality: ShedCriticality; rps: number }[];
  /** Critical load that would have to be shed to stay under the ceiling: > 0 makes the plan infeasible. */
  shortfallRps: number;
  /** Why no (more) instance could be added, when the step needed one and got none or too few. */
  scaleUpLimit: "max-replicas" | "no-target-zone" | "no-instance-capacity" | null;
  /** Every pool member with its utilization at the end of the step. */
  projected: { member: PoolMember; utilization: number }[];
}

function emptyLoad(): Record<Criticality, number> {
  return { critical: 0, default: 0, sheddable: 0 };
}

export class ServiceEvacuation {
  readonly spec: ServiceCapacity;
  /** The failed domain's load for this service, in total and by criticality. */
  readonly movingRps: number;
  readonly movingByCriticality: Record<Criticality, number>;
  /** Target instances, existing ones first (sorted by zone, then name), then the added ones in order. */
  readonly pool: PoolMember[];
  private readonly targetZones: readonly string[];
  /** Instances of the service outside the failed domain (healthy or not) plus the ones added: what `maxReplicas` caps. */
  private replicasOutside: number;
  private addedCount = 0;

  constructor(spec: ServiceCapacity, domain: string, targetZones: readonly string[]) {
    this.spec = spec;
    this.targetZones = targetZones;
    const targets = new Set(targetZones);
    const moving = emptyLoad();
    let movingRps = 0;
    let outside = 0;
    const pool: PoolMember[] = [];
    for (const instance of spec.instances) {
      if (instance.zone === domain) {
        movingRps += instance.loadRps;
        for (const criticality of ["critical", "default", "sheddable"] as const) {
          moving[criticality] += instance.loadByCriticality[criticality];
        }
        continue;
      }
      outside += 1;
      if (!instance.healthy || !targets.has(instance.zone)) continue;
      pool.push({
        instance: instance.instance,
        zone: instance.zone,
        capacityRps: instance.capacityRps,
        loadRps: instance.loadRps,
        loadByCriticality: { ...instance.loadByCriticality },
        added: false,
      });
    }
    pool.sort((a, b) => compare(a.zone, b.zone) || compare(a.instance, b.instance));
    this.movingRps = movingRps;
    this.movingByCriticality = moving;
    this.pool = pool;
    this.replicasOutside = outside;
  }

  /** Instances `maxReplicas` still allows. */
  get addable(): number {
    return Math.max(0, this.spec.maxReplicas - this.replicasOutside);
  }

  /**
   * Moves `fraction` (0..1, cumulative) of the failed domain's load onto the pool: adds instances
   * first if it does not fit under the ceiling, then sheds sheddable, then default traffic — never
   * critical. Added instances stay for the following steps.
   */
  step(fraction: number): ServiceStep {
    const { ceiling } = this.spec;
    const moved = this.movingRps * fraction;
    const peakBeforeScaleUp = this.peakOf(moved);

    const overflow = moved - totalSpareRps(this.pool, ceiling);
    const added: { zone: string; count: number }[] = [];
    let scaleUpLimit: ServiceStep["scaleUpLimit"] = null;
    if (overflow > EPSILON_RPS) {
      const perInstance = ceiling * this.spec.instanceCapacityRps;
      const wanted = perInstance > 0 ? Math.ceil(overflow / perInstance - 1e-9) : 0;
      const granted = this.targetZones.length === 0 ? 0 : Math.min(wanted, this.addable);
      if (granted > 0) added.push(...this.addInstances(granted));
      if (perInstance <= 0) scaleUpLimit = "no-instance-capacity";
      else if (this.targetZones.length === 0) scaleUpLimit = "no-target-zone";
      else if (granted < wanted) scaleUpLimit = "max-replicas";
    }
    const peakAfterScaleUp = this.peakOf(moved);

    const overflowLeft = Math.max(0, moved - totalSpareRps(this.pool, ceiling));
    const excess = totalExcessRps(this.pool, ceiling);
    let need = overflowLeft + excess;
    const shed: ServiceStep["shed"] = [];
    let shedTotal = 0;
    for (const criticality of ["sheddable", "default"] as const) {
      if (need <= EPSILON_RPS) break;
      const amount = Math.min(need, this.budget(criticality, fraction));
      if (amount <= EPSILON_RPS) continue;
      shed.push({ criticality, rps: amount });
      need -= amount;
      shedTotal += amount;
    }
    const shortfallRps = need > EPSILON_RPS ? clean(need) : 0;
    // The shed rate first takes the overflow (the moved load that does not fit), then the targets' own excess.
    const fromOverflow = Math.min(shedTotal, overflowLeft);
    const fromExcess = shedTotal - fromOverflow;
    return {
      added,
      peakBeforeScaleUp,
      peakAfterScaleUp,
      shed,
      shortfallRps,
      scaleUpLimit,
      projected: this.project(moved - fromOverflow, fromExcess, excess),
    };
  }

  /** The service's load of one criticality the pool would carry at `fraction`: what shedding can take. */
  private budget(criticality: ShedCriticality, fraction: number): number {
    let total = this.movingByCriticality[criticality] * fraction;
    for (const member of this.pool) total += member.loadByCriticality[criticality];
    return total;
  }

  /** Peak utilization with `moved` spread on the pool as it is, nothing shed; ∞ if there is load and no pool. */
  private peakOf(moved: number): number {
    if (this.pool.length === 0) return moved > EPSILON_RPS ? Number.POSITIVE_INFINITY : 0;
    let peak = 0;
    for (const { utilization } of this.project(moved, 0, 0)) {
      peak = Math.max(peak, utilization);
    }
    return peak;
  }

  /** Utilization of every pool member with `moved` spread on it and `shedFromExcess` taken off the over-ceiling ones. */
  private project(
    moved: number,
    shedFromExcess: number,
    excess: number,
  ): { member: PoolMember; utilization: number }[] {
    const { ceiling } = this.spec;
    const shares = spreadMovedLoad(this.pool, ceiling, moved);
    return this.pool.map((member, i) => {
      const relief = excess > 0 ? (shedFromExcess * excessRps(member, ceiling)) / excess : 0;
      const load = member.loadRps - relief + shares[i]!;
      const utilization =
        member.capacityRps > 0
          ? load / member.capacityRps
          : load > EPSILON_RPS
            ? Number.POSITIVE_INFINITY
            : 0;
      return { member, utilization: clean(utilization) };
    });
  }

  /** Adds `count` instances over the target zones, each to the zone with the fewest pool members (then by name). */
  private addInstances(count: number): { zone: string; count: number }[] {
    const perZone = new Map<string, number>(this.targetZones.map((zone) => [zone, 0]));
    for (const member of this.pool) perZone.set(member.zone, (perZone.get(member.zone) ?? 0) + 1);
    const chosen = new Map<string, number>();
    for (let n = 0; n < count; n++) {
      let zone = this.targetZones[0]!;
      for (const candidate of this.targetZones) {
        const fewer = perZone.get(candidate)! - perZone.get(zone)!;
        if (fewer < 0 || (fewer === 0 && compare(candidate, zone) < 0)) zone = candidate;
      }
      perZone.set(zone, perZone.get(zone)! + 1);
      chosen.set(zone, (chosen.get(zone) ?? 0) + 1);
      this.addedCount += 1;
      this.replicasOutside += 1;
      this.pool.push({
        instance: `${this.spec.service}-new-${this.addedCount}`,
        zone,
        capacityRps: this.spec.instanceCapacityRps,
        loadRps: 0,
        loadByCriticality: emptyLoad(),
        added: true,
      });
    }
    return [...chosen].map(([zone, n]) => ({ zone, count: n })).sort((a, b) => compare(a.zone, b.zone));
  }
}

/** Plain code-unit order: the same on every machine, unlike `localeCompare`. */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
