/**
 * What the balancer shows the API: a JSON-friendly snapshot of membership, ejections, panic,
 * weights and where traffic goes.
 */

import type { TrafficSpec } from "../../spec/model.ts";
import type { BalancerView, Member } from "./balancerView.ts";
import type { OutlierDetector } from "./outlierDetector.ts";

export interface EndpointState {
  instance: string;
  release: string;
  zone: string;
  priority: number;
  ejected: boolean;
  /** Epoch ms the ejection ends; null when not ejected. */
  ejectedUntil: number | null;
  consecutiveFailures: number;
  timesEjected: number;
  /** Stalled (see stallDetection.ts): no new requests until it answers. */
  stalled: boolean;
  /** Epoch ms it stalled at; null when not stalled. */
  stalledSince: number | null;
}

export interface PoolState {
  /** null: no release split, the pool is the whole service. */
  release: string | null;
  /** Share of the traffic, 0..1. */
  share: number;
  /** Per priority: usable ÷ members (0 for a priority without members). */
  healthyFractions: number[];
  /** Per priority: share of this pool's traffic, summing to 1 (all 0 if nothing is usable). */
  priorityLoads: number[];
}

export interface BalancerState {
  members: number;
  /** Members neither ejected nor stalled. */
  healthy: number;
  panic: boolean;
  panicMode: TrafficSpec["panic"]["mode"];
  /** The release weights in force; null = no split. */
  weights: Record<string, number> | null;
  /** Zones shifted by a failover or failback: the share of their traffic they keep (0..1). */
  zoneShares: Record<string, number>;
  pools: PoolState[];
  endpoints: EndpointState[];
  /** Ejections the max-ejection cap prevented, since the balancer was created. */
  ejectionsSuppressed: number;
  /** Stalls the max-ejection cap prevented, since the balancer was created. */
  stallsSuppressed: number;
}

export function describeState(args: {
  view: BalancerView;
  members: readonly Member[];
  outliers: OutlierDetector;
  stalled: ReadonlyMap<string, number>;
  stallsSuppressed: number;
  traffic: TrafficSpec;
  now: number;
}): BalancerState {
  const { view, members, outliers, stalled, traffic, now } = args;
  return {
    members: view.members,
    healthy: view.healthy,
    panic: view.panic,
    panicMode: traffic.panic.mode,
    weights: view.weights === null ? null : { ...view.weights },
    zoneShares: Object.fromEntries(view.zoneShares ?? []),
    pools: view.pools.map((pool) => ({
      release: pool.release,
      share: pool.share,
      healthyFractions: [...pool.healthyFractions],
      priorityLoads: [...pool.priorityLoads],
    })),
    endpoints: members.map(({ endpoint, priority }) => {
      const outlier = outliers.stateOf(endpoint.instance, now);
      const ejectedUntil = outlier?.ejectedUntil ?? null;
      return {
        instance: endpoint.instance,
        release: endpoint.release,
        zone: endpoint.zone,
        priority,
        ejected: ejectedUntil !== null,
        ejectedUntil,
        consecutiveFailures: outlier?.consecutiveFailures ?? 0,
        timesEjected: outlier?.timesEjected ?? 0,
        stalled: stalled.has(endpoint.instance),
        stalledSince: stalled.get(endpoint.instance) ?? null,
      };
    }),
    ejectionsSuppressed: outliers.ejectionsSuppressed,
    stallsSuppressed: args.stallsSuppressed,
  };
}
