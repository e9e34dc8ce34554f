/**
 * The balancer's precomputed view: everything a pick needs (pools, priority groups, loads, the
 * ready-made results) computed once when membership, weights, settings or ejections change, so
 * that a pick is a few draws and short scans, with no allocation.
 *
 * A view is immutable: a pick reads `balancer.view` once and works on that object only, so a
 * concurrent change (new weights, an ejection) can never give it a mix of two states.
 */

import type { TrafficSpec } from "../../spec/model.ts";
import type { Endpoint, PickResult } from "../contracts.ts";
import type { OutlierDetector } from "./outlierDetector.ts";
import { priorityLoad } from "./priorityLoad.ts";
import { type ReleaseWeights, releaseShares } from "./releaseSplit.ts";
import { type WeightedChoice, weightedChoice } from "./weightedChoice.ts";

/** A member endpoint with the priority its zone gives it. */
export interface Member {
  readonly endpoint: Endpoint;
  readonly priority: number;
}

/** A successful pick, built once per view and returned as is. */
export type Chosen = Extract<PickResult, { ok: true }>;

export interface PriorityGroup {
  /** Members of this priority in the pool (ejected or not). */
  readonly members: number;
  /** Candidates the balancer may pick in this priority. */
  readonly usable: readonly Chosen[];
}

/** The whole service when there is no release split, else one release. */
export interface Pool {
  /** null: no split, every release together. */
  readonly release: string | null;
  /** Share of the traffic this pool gets, 0..1. */
  readonly share: number;
  /** Index = priority; one past the listed priorities holds members in zones they do not list. */
  readonly groups: readonly PriorityGroup[];
  readonly healthyFractions: readonly number[];
  readonly priorityLoads: readonly number[];
  readonly priorityChoice: WeightedChoice;
  /**
   * Usable members of the zones that keep all their traffic (no zone share below 1): where a pick
   * that leaves a shifted zone goes. Empty when no zone is shifted.
   */
  readonly unshifted: readonly Chosen[];
}

export interface BalancerView {
  readonly members: number;
  /** Members neither ejected nor stalled. */
  readonly healthy: number;
  readonly panic: boolean;
  /** Set when no pick can succeed. */
  readonly failure: Extract<PickResult, { ok: false }> | null;
  readonly weights: ReleaseWeights | null;
  readonly pools: readonly Pool[];
  readonly poolChoice: WeightedChoice;
  /** The view is stale from this instant (the first ejection ends); +Infinity if none. */
  readonly validUntil: number;
  /** Zone → share of its normal traffic it keeps (0..1), only for zones below 1; null when none. */
  readonly zoneShares: ReadonlyMap<string, number> | null;
}

const NO_ENDPOINTS = Object.freeze({ ok: false, reason: "no-endpoints" } as const);
const ALL_EJECTED = Object.freeze({ ok: false, reason: "all-ejected" } as const);

export interface ViewInputs {
  members: readonly Member[];
  /** Number of priorities: every `Member.priority` is below it. */
  priorityCount: number;
  traffic: TrafficSpec;
  weights: ReleaseWeights | null;
  /** Zone → share of its normal traffic it keeps (0..1); zones not listed keep all of it. */
  zoneShares: ReadonlyMap<string, number> | null;
  outliers: OutlierDetector;
  /** Stalled members: out like ejected ones, until they answer (no end time of their own). */
  stalled: ReadonlyMap<string, unknown>;
  now: number;
}

/**
 * Build the view at `now`: (a) usable = members neither ejected nor stalled, and in panic (healthy share below the
 * threshold) with `send-to-all`, every member; (b) pools by release when weights are set; (c) per
 * pool, priority groups, their healthy fractions and loads.
 */
export function buildView(inputs: ViewInputs): BalancerView {
  const { members, traffic, weights, outliers, stalled, now } = inputs;
  let validUntil = Number.POSITIVE_INFINITY;
  let healthy = 0;
  const ejected = members.map(({ endpoint }) => {
    const until = outliers.ejectedUntil(endpoint.instance, now);
    if (until !== null) validUntil = Math.min(validUntil, until);
    if (until === null && !stalled.has(endpoint.instance)) {
      healthy += 1;
      return false;
    }
    return true;
  });
  const total = members.length;
  const panic = total > 0 && (healthy / total) * 100 < traffic.panic.thresholdPercent;
  const ignoreEjections = panic && traffic.panic.mode === "send-to-all";
  const usable = ejected.map((isEjected) => ignoreEjections || !isEjected);

  const poolOf = (release: string | null, indices: readonly number[]): Omit<Pool, "share"> =>
    buildPool({ release, indices, members, usable, panic, inputs });
  const isPickable = (pool: Omit<Pool, "share">): boolean => pool.priorityChoice.indices.length > 0;

  let pools: Pool[];
  if (weights === null) {
    const all = poolOf(
      null,
      members.map((_, i) => i),
    );
    pools = [{ ...all, share: isPickable(all) ? 1 : 0 }];
  } else {
    const byRelease = new Map<string, number[]>(Object.keys(weights).map((release) => [release, []]));
    members.forEach(({ endpoint }, i) => {
      const list = byRelease.get(endpoint.release);
      if (list === undefined) byRelease.set(endpoint.release, [i]);
      else list.push(i);
    });
    const unshared = [...byRelease].map(([release, indices]) => poolOf(release, indices));
    const shares = releaseShares(
      weights,
      new Map(unshared.map((pool) => [pool.release!, isPickable(pool) ? 1 : 0])),
    );
    pools = unshared.map((pool) => ({ ...pool, share: shares.get(pool.release!) ?? 0 }));
  }
  const poolChoice = weightedChoice(pools.map((pool) => pool.share));

  let failure: BalancerView["failure"] = null;
  if (total === 0) failure = NO_ENDPOINTS;
  else if (poolChoice.indices.length === 0) {
    const weightedHaveMembers =
      weights === null || members.some(({ endpoint }) => (weights[endpoint.release] ?? 0) > 0);
    failure = weightedHaveMembers ? ALL_EJECTED : NO_ENDPOINTS;
  }
  const zoneShares = inputs.zoneShares !== null && inputs.zoneShares.size > 0 ? inputs.zoneShares : null;
  return { members: total, healthy, panic, failure, weights, pools, poolChoice, validUntil, zoneShares };
}

function buildPool(args: {
  release: string | null;
  indices: readonly number[];
  members: readonly Member[];
  usable: readonly boolean[];
  panic: boolean;
  inputs: ViewInputs;
}): Omit<Pool, "share"> {
  const { release, indices, members, usable, panic, inputs } = args;
  const counts = new Array<number>(inputs.priorityCount).fill(0);
  const candidates: Chosen[][] = counts.map(() => []);
  const shifted = inputs.zoneShares;
  const unshifted: Chosen[] = [];
  for (const i of indices) {
    const { endpoint, priority } = members[i]!;
    counts[priority]! += 1;
    if (!usable[i]) continue;
    const chosen = Object.freeze({ ok: true, endpoint, priority, panic } as const);
    candidates[priority]!.push(chosen);
    if (shifted !== null && shifted.size > 0 && !shifted.has(endpoint.zone)) unshifted.push(chosen);
  }
  const groups = counts.map((count, p) => ({ members: count, usable: candidates[p]! }));
  const healthyFractions = groups.map((g) => (g.members === 0 ? 0 : g.usable.length / g.members));
  const priorityLoads = priorityLoad(healthyFractions, inputs.traffic.overprovisioningFactor);
  return {
    release,
    groups,
    healthyFractions,
    priorityLoads,
    priorityChoice: weightedChoice(priorityLoads),
    unshifted,
  };
}
