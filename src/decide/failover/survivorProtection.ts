/**
 * Keeping the survivors under their ceiling while a zone is shifted: measured demand against the
 * capacity that still takes traffic. When demand would push the survivors past the ceiling, first
 * add instances in the unshifted zones (up to `maxReplicas`), and until they are ready shed the
 * minimum — sheddable first, then default, never critical. Closed loop: recomputed from measured
 * arrivals every pass, so shedding ends as soon as capacity is back. Pure.
 */

import type { Criticality } from "../../traffic/contracts.ts";
import { clean, count, percent, rps } from "./words.ts";

export interface ProtectedMember {
  instance: string;
  slot: number;
  zone: string;
  /** Ready and not ejected: it takes traffic now. */
  serving: boolean;
}

export interface SpareSlot {
  slot: number;
  zone: string;
}

export interface ProtectionInput {
  service: string;
  ceiling: number;
  instanceCapacityRps: number;
  maxReplicas: number;
  /** Arrivals per second by criticality (shed requests included: demand, not throughput). */
  demand: Record<Criticality, number>;
  /** Instances running now, including added ones that are starting. */
  members: readonly ProtectedMember[];
  /** Zone → share of its traffic it keeps; zones not listed keep all of it. */
  zoneShares: Readonly<Record<string, number>>;
  /** Free spare slots with their zones, or why there are none to use (e.g. a deploy holds them). */
  spare: readonly SpareSlot[] | { unavailable: string };
  /** Spare slots already added for this failover (kept until failback completes). */
  added: readonly number[];
  /** Zones not to add instances in: failing ones, whose evacuation may not be confirmed yet. */
  avoidZones?: readonly string[];
  /** Whether the previous pass shed anything: shedding then goes on down to the target, not just to the ceiling. */
  wasShedding?: boolean;
}

export interface Protection {
  /** Share of each criticality to refuse at the front door, 0..1. */
  shed: { sheddable: number; default: number };
  /** Spare slots to start now (beyond `added`). */
  addSlots: SpareSlot[];
  /** Capacity taking traffic now (shares applied), requests/s. */
  servingCapacityRps: number;
  demandRps: number;
  /** Utilization of the serving capacity without shedding (∞ when nothing serves). */
  projectedUtilization: number;
  reasons: string[];
}

/** Below this, a shed share is float noise or a demand too small to matter. */
const MIN_SHED = 0.005;

/**
 * Shedding of sheddable traffic aims under the ceiling, at this share of it (72 % for an 80 %
 * ceiling; default traffic is shed only down to the ceiling itself): the load the
 * survivors really get is not exactly the measured demand spread evenly — retries of requests
 * the failed zone swallowed add to it, and two-choices balancing is close to even, not exactly
 * even — and the promise is that no survivor passes the ceiling. It starts only when the demand
 * passes the ceiling itself, and once started goes on until the demand is back under the target
 * (hysteresis), so it does not switch on and off around the ceiling.
 */
export const SHED_TARGET_OF_CEILING = 0.9;

export function protectSurvivors(input: ProtectionInput): Protection {
  const { ceiling, instanceCapacityRps: unit, service } = input;
  const demand = input.demand.critical + input.demand.default + input.demand.sheddable;
  let capacity = 0;
  for (const member of input.members) {
    if (member.serving) capacity += unit * (input.zoneShares[member.zone] ?? 1);
  }
  const projected = capacity > 0 ? demand / capacity : demand > 0 ? Number.POSITIVE_INFINITY : 0;
  const reasons: string[] = [];
  const addSlots = scaleUp(input, demand, capacity, projected, reasons);

  const target = clean(ceiling * SHED_TARGET_OF_CEILING);
  const trigger = input.wasShedding === true ? target : ceiling;
  const shed = { sheddable: 0, default: 0 };
  if (demand > trigger * capacity) {
    // The margin under the ceiling is taken from sheddable traffic only: default traffic is shed
    // just as far as the ceiling itself needs.
    const aim = { sheddable: demand - target * capacity, default: demand - ceiling * capacity };
    let taken = 0;
    let overCeiling = aim.default;
    for (const criticality of ["sheddable", "default"] as const) {
      const available = input.demand[criticality];
      const wanted = aim[criticality] - taken;
      if (wanted <= 0 || available <= 0) continue;
      const amount = Math.min(available, wanted);
      const share = amount / available;
      // Too small to act on, but covered by this criticality all the same: the next one (default
      // after sheddable) is not shed for an excess that sheddable traffic could have absorbed.
      taken += amount;
      overCeiling -= amount;
      if (share < MIN_SHED) continue;
      shed[criticality] = Math.min(1, share);
      const goal =
        criticality === "sheddable"
          ? `shedding down to ${percent(target)} leaves room for retries and uneven spread`
          : `sheddable traffic alone cannot bring it under the ceiling`;
      reasons.push(
        `${service}: sheds ${percent(shed[criticality])} of ${criticality} traffic (${rps(amount)}): demand ${rps(demand)} on ${rps(capacity)} of serving capacity is ${percent(projected)}${input.wasShedding === true ? "" : ` > ceiling ${percent(ceiling)}`}; ${goal}`,
      );
    }
    if (overCeiling > 1e-6) {
      reasons.push(
        `${service}: still ${rps(overCeiling)} over the ceiling with only critical traffic left, and critical traffic is never shed`,
      );
    }
  }
  return {
    shed,
    addSlots,
    servingCapacityRps: capacity,
    demandRps: demand,
    projectedUtilization: projected,
    reasons,
  };
}

function scaleUp(
  input: ProtectionInput,
  demand: number,
  capacity: number,
  projected: number,
  reasons: string[],
): SpareSlot[] {
  const { ceiling, instanceCapacityRps: unit, service } = input;
  // Same trigger as shedding, and enough capacity for the shedding target: capacity sized only
  // for the ceiling would leave shedding on (it goes on down to the target) for the whole outage.
  const target = clean(ceiling * SHED_TARGET_OF_CEILING);
  const trigger = input.wasShedding === true ? target : ceiling;
  if (demand <= trigger * capacity || unit <= 0) return [];
  // Capacity that is coming (added, not serving yet) counts: it must not be asked for twice.
  const serving = new Set(input.members.filter((m) => m.serving).map((m) => m.slot));
  const starting = input.added.filter((slot) => !serving.has(slot)).length;
  const wanted = Math.ceil((demand / target - capacity) / unit - 1e-9) - starting;
  if (wanted <= 0) return [];
  if ("unavailable" in input.spare) {
    reasons.push(`${service}: cannot add instances: ${input.spare.unavailable}`);
    return [];
  }
  const evacuated = new Set(
    Object.entries(input.zoneShares)
      .filter(([, share]) => share === 0)
      .map(([zone]) => zone),
  );
  // Added slots that are not running yet are members soon: without them, the next pass would
  // find room for them again and go past maxReplicas.
  const members = new Set(input.members.map((m) => m.slot));
  const coming = input.added.filter((slot) => !members.has(slot)).length;
  const counted = input.members.filter((m) => !evacuated.has(m.zone)).length + coming;
  const room = Math.max(0, input.maxReplicas - counted);
  const perZone = new Map<string, number>();
  for (const member of input.members) perZone.set(member.zone, (perZone.get(member.zone) ?? 0) + 1);
  const avoid = new Set(input.avoidZones ?? []);
  const free = input.spare.filter((s) => (input.zoneShares[s.zone] ?? 1) === 1 && !avoid.has(s.zone));
  const chosen: SpareSlot[] = [];
  while (chosen.length < Math.min(wanted, room) && free.length > 0) {
    // The unshifted zone with the fewest instances of the service, then the lowest slot.
    free.sort((a, b) => (perZone.get(a.zone) ?? 0) - (perZone.get(b.zone) ?? 0) || a.slot - b.slot);
    const slot = free.shift()!;
    chosen.push(slot);
    perZone.set(slot.zone, (perZone.get(slot.zone) ?? 0) + 1);
  }
  if (chosen.length > 0) {
    const where = [...new Set(chosen.map((s) => s.zone))].join(", ");
    reasons.push(
      `${service}: adds ${count(chosen.length, "instance")} in ${where}: demand ${rps(demand)} on ${rps(capacity)} of serving capacity is ${percent(projected)}${projected > ceiling ? ` > ceiling ${percent(ceiling)}` : ""}; sized for ${percent(target)}, where shedding stops`,
    );
  }
  if (chosen.length < wanted) {
    const why =
      room <= chosen.length
        ? `it is at maxReplicas ${input.maxReplicas}`
        : "no free spare slot is left in a healthy zone that keeps its traffic";
    reasons.push(
      `${service}: needs ${count(wanted - chosen.length, "more instance")} but ${why}; shedding covers the rest`,
    );
  }
  return chosen;
}
