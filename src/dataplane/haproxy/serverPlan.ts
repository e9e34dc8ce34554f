/**
 * What each HAProxy server of a service should be: address, weight and state. The weights are the
 * embedded balancer's pick probabilities (release split, zone priorities with overprovisioning
 * and spill, zone shares, ejections, panic), computed from the very view the embedded balancer
 * picks from (`buildView`), so both engines send a service's traffic to the same places in the
 * same proportions. Pure: the ejected and draining sets and the time are arguments.
 */

import type { TrafficSpec } from "../../spec/model.ts";
import { priorityCount, zonePriorities } from "../../traffic/balance/balancer.ts";
import { buildView, type Member } from "../../traffic/balance/balancerView.ts";
import { OutlierDetector } from "../../traffic/balance/outlierDetector.ts";
import { freezeWeights } from "../../traffic/balance/releaseSplit.ts";
import type { Endpoint } from "../../traffic/contracts.ts";

/** HAProxy's largest server weight. */
export const MAX_SERVER_WEIGHT = 256;

/** Where the rendered configuration points a server that has no instance yet (see haproxyConfig.ts). */
const PLACEHOLDER = { addr: "127.0.0.1", port: 1 } as const;

/**
 * One server's target. `ready`: a member, at `weight` (0 when the balancer would give it nothing
 * now: ejected, a release at weight 0, a zone at share 0, a lower priority that takes no spill;
 * it stays `ready` so that it comes back by a weight change alone). `drain`: a member removed
 * that finishes its requests. `maint`: no instance.
 *
 * `addr`/`port`: the endpoint's for `ready`; the rendered placeholder (127.0.0.1:1) for `drain`
 * and `maint`, whose address must be left as it is (a draining server still serves its
 * connections at its old address).
 */
export interface ServerTarget {
  server: string;
  /** The instance behind the server: the endpoint's for `ready`, the server's own name for `drain`, null for `maint`. */
  instance: string | null;
  addr: string;
  port: number;
  /** 0..256. */
  weight: number;
  state: "ready" | "drain" | "maint";
}

/** What a plan needs of a service snapshot (endpoints, weights and shares as served now). */
export interface PlannedService {
  name: string;
  traffic: TrafficSpec;
  endpoints: readonly Endpoint[];
  /** Release weights; null: no split; undefined: `traffic.weights` (as the embedded balancer does). */
  weights?: Readonly<Record<string, number>> | null;
  /** Zone → share of its traffic it keeps (0..1); null or undefined: none shifted. */
  zoneShares?: Readonly<Record<string, number>> | null;
}

/**
 * Each server's target, in the order of `servers`. A server whose name is an endpoint's instance
 * is `ready` at the weight its pick probability p gives: round(256 × p ÷ max p), at least 1 when
 * p > 0 (so a very small share is rounded up to 1/256 of the largest), 0 when p = 0. A server in
 * `draining` and not an endpoint is `drain`, any other `maint`, both at weight 0. Endpoints whose
 * instance has no server are left out (the configuration needs more slots).
 *
 * @param o.ejected instances out of the balancer now (outlier ejection or stall), after the
 *   max-ejection cap, which is the caller's: they count as the embedded balancer's ejected members
 *   (panic threshold and mode included)
 * @throws HomeostatError HS_BAD_REQUEST when the weights are not valid (as Balancer.setWeights)
 */
export function planServers(o: {
  service: PlannedService;
  servers: readonly string[];
  ejected: ReadonlySet<string>;
  draining: ReadonlySet<string>;
  now: number;
}): ServerTarget[] {
  const byInstance = new Map(o.service.endpoints.map((e) => [e.instance, e]));
  const probabilities = pickProbabilities({ ...o.service, ejected: o.ejected, now: o.now });
  let max = 0;
  for (const p of probabilities.values()) max = Math.max(max, p);
  return o.servers.map((server): ServerTarget => {
    const endpoint = byInstance.get(server);
    if (endpoint === undefined) {
      const draining = o.draining.has(server);
      return {
        server,
        instance: draining ? server : null,
        ...PLACEHOLDER,
        weight: 0,
        state: draining ? "drain" : "maint",
      };
    }
    const p = probabilities.get(server) ?? 0;
    const weight = p > 0 ? Math.max(1, Math.round((MAX_SERVER_WEIGHT * p) / max)) : 0;
    return { server, instance: server, addr: endpoint.address, port: endpoint.port, weight, state: "ready" };
  });
}

/**
 * Instance → probability that the embedded balancer's first pick lands on it (the sum is 1, or
 * every value is 0 when no pick can succeed). Inside a priority the balancer takes the less loaded
 * of two: with equal loads every usable member of the priority is equally likely, which is what
 * a weighted round robin does with the rest.
 */
export function pickProbabilities(
  o: PlannedService & { ejected: ReadonlySet<string>; now: number },
): Map<string, number> {
  const priorities = zonePriorities(o.traffic.priorities);
  const members: Member[] = o.endpoints.map((endpoint) => ({
    endpoint,
    priority: priorities.get(endpoint.zone) ?? o.traffic.priorities.length,
  }));
  const shifted = new Map<string, number>();
  for (const [zone, share] of Object.entries(o.zoneShares ?? {})) if (share < 1) shifted.set(zone, share);
  const view = buildView({
    members,
    priorityCount: priorityCount(o.traffic, members),
    traffic: o.traffic,
    weights: freezeWeights(
      o.weights === undefined ? o.traffic.weights : (o.weights as Record<string, number> | null),
    ),
    zoneShares: shifted.size > 0 ? shifted : null,
    // Ejections are decided by the caller: the view reads them as stalled members, which it treats
    // exactly as ejected ones (out of the usable set, counted against the healthy share).
    outliers: new OutlierDetector(o.traffic.outlier),
    stalled: new Map([...o.ejected].map((instance) => [instance, true])),
    now: o.now,
  });
  const p = new Map(o.endpoints.map((e) => [e.instance, 0]));
  if (view.failure !== null) return p;
  const add = (instance: string, amount: number): void => {
    p.set(instance, p.get(instance)! + amount);
  };
  for (const pool of view.pools) {
    pool.groups.forEach((group, priority) => {
      const load = pool.share * (pool.priorityLoads[priority] ?? 0);
      if (load === 0 || group.usable.length === 0) return;
      const each = load / group.usable.length;
      for (const { endpoint } of group.usable) {
        const keeps = view.zoneShares?.get(endpoint.zone);
        // As Balancer.pick: a pick in a shifted zone stays with probability `keeps`, else moves to
        // one of the pool's unshifted usable members (and stays when there is none).
        if (keeps === undefined || pool.unshifted.length === 0) {
          add(endpoint.instance, each);
          continue;
        }
        add(endpoint.instance, each * keeps);
        const moved = (each * (1 - keeps)) / pool.unshifted.length;
        for (const target of pool.unshifted) add(target.endpoint.instance, moved);
      }
    });
  }
  return p;
}
