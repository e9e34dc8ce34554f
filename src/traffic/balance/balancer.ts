/**
 * The balancer: chooses an endpoint for each attempt of a service's requests. Zone priorities
 * with Envoy's spill, a release split by weights, passive outlier ejection with a strict cap, a
 * panic mode that is either "send to all" or "fail closed", and power of two choices on in-flight
 * requests inside the chosen priority. Pure and deterministic: time and randomness are arguments.
 */

import { HomeostatError } from "../../errors.ts";
import type { TrafficSpec } from "../../spec/model.ts";
import type { AttemptOutcome, Endpoint, EndpointPicker, PickResult } from "../contracts.ts";
import { type BalancerState, describeState } from "./balancerState.ts";
import { type BalancerView, buildView, type Chosen, type Member, type Pool } from "./balancerView.ts";
import { OutlierDetector } from "./outlierDetector.ts";
import { freezeWeights, type ReleaseWeights } from "./releaseSplit.ts";
import { lessLoadedOfTwo, NOTHING_EXCLUDED } from "./twoChoices.ts";
import { choose } from "./weightedChoice.ts";

export type { BalancerState, EndpointState, PoolState } from "./balancerState.ts";

/**
 * One service's endpoint picker.
 *
 * A pick: (a) usable = members not ejected nor stalled; below `panic.thresholdPercent` healthy the service is
 * in panic, where `send-to-all` makes every member usable and `fail-closed` keeps ejected ones out
 * (`all-ejected` when none is left); (b) with weights, a release is drawn among those with a usable
 * endpoint and the pick stays inside it; (c) a priority is drawn by Envoy's priority load over the
 * release's priorities; (d) the less loaded of two random usable endpoints of that priority wins.
 *
 * Retries (`exclude`): if every usable endpoint of the drawn priority was already tried, the next
 * priorities of the same pool are tried in order (another zone beats the same instance twice); only
 * when the whole pool is tried does the pick go back to an already tried endpoint of the drawn
 * priority (better than failing when a single instance exists).
 *
 * `now` is expected not to go backwards between calls: ejection ends are noticed when `now`
 * reaches them.
 */
export class Balancer implements EndpointPicker {
  private traffic: TrafficSpec;
  private weights: ReleaseWeights | null;
  private zoneShares: ReadonlyMap<string, number> | null = null;
  private members: readonly Member[] = [];
  private zonePriority = new Map<string, number>();
  private readonly outliers: OutlierDetector;
  /** Stalled members (see stallDetection.ts) → epoch ms they stalled at. */
  private readonly stalled = new Map<string, number>();
  private stallsSuppressed = 0;
  /** null when something changed since it was built. */
  private view: BalancerView | null = null;

  /** @throws HomeostatError HS_BAD_REQUEST when `traffic.weights` is not valid */
  constructor(traffic: TrafficSpec) {
    this.traffic = traffic;
    this.weights = freezeWeights(traffic.weights);
    this.outliers = new OutlierDetector(traffic.outlier, (now) => this.stalledNotEjected(now));
    this.zonePriority = zonePriorities(traffic.priorities);
  }

  /**
   * The ready instances. Outlier state is kept for instances that stay (same release, host and
   * port) and forgotten for those that leave or now run something else under the same name.
   *
   * @throws HomeostatError HS_INTERNAL when two endpoints share an instance name
   */
  setEndpoints(endpoints: readonly Endpoint[]): void {
    const previous = new Map(this.members.map((m) => [m.endpoint.instance, m.endpoint]));
    const seen = new Set<string>();
    for (const endpoint of endpoints) {
      if (seen.has(endpoint.instance)) {
        throw new HomeostatError("HS_INTERNAL", `endpoint ${endpoint.instance} is listed twice`, {
          details: { instance: endpoint.instance },
        });
      }
      seen.add(endpoint.instance);
    }
    this.outliers.setMembers(seen);
    for (const endpoint of endpoints) {
      const before = previous.get(endpoint.instance);
      if (before !== undefined && !sameProcessSlot(before, endpoint)) {
        this.outliers.forget(endpoint.instance);
        this.stalled.delete(endpoint.instance);
      }
    }
    for (const instance of this.stalled.keys()) if (!seen.has(instance)) this.stalled.delete(instance);
    this.members = endpoints.map((endpoint) => ({
      endpoint: Object.freeze({ ...endpoint }),
      priority: this.priorityOf(endpoint.zone),
    }));
    this.view = null;
  }

  /**
   * Replace the release weights as a whole (null = no split). A pick in progress finishes with the
   * weights it started with.
   *
   * @throws HomeostatError HS_BAD_REQUEST when a weight is negative or not finite, or none is > 0
   */
  setWeights(weights: Record<string, number> | null): void {
    this.weights = freezeWeights(weights);
    this.view = null;
  }

  /**
   * Shift traffic out of zones (failover) or back into them (failback): each listed zone keeps
   * `share` (0..1) of the traffic it would get, and the rest goes to the zones not listed, to the
   * less loaded of two of their usable endpoints. Zones not listed, and zones at 1, keep all of
   * theirs; null clears every shift. When no unshifted zone has a usable endpoint a shifted zone
   * keeps its traffic: a shift never leaves a request with nowhere to go.
   *
   * @throws HomeostatError HS_BAD_REQUEST when a share is not a number in [0, 1]
   */
  setZoneShares(shares: Readonly<Record<string, number>> | null): void {
    const shifted = new Map<string, number>();
    for (const [zone, share] of Object.entries(shares ?? {})) {
      if (typeof share !== "number" || !(share >= 0 && share <= 1)) {
        throw new HomeostatError("HS_BAD_REQUEST", `the traffic share of zone ${zone} must be in [0, 1]`, {
          details: { zone, share },
        });
      }
      if (share < 1) shifted.set(zone, share);
    }
    this.zoneShares = shifted.size > 0 ? shifted : null;
    this.view = null;
  }

  /** Zone → share of its traffic it keeps, for the zones shifted now. */
  shiftedZones(): Record<string, number> {
    return Object.fromEntries(this.zoneShares ?? []);
  }

  /**
   * Apply new traffic settings, weights included. Outlier state is kept: current ejections keep
   * their end time, new settings apply from the next ejection.
   *
   * @throws HomeostatError HS_BAD_REQUEST when `traffic.weights` is not valid
   */
  setTraffic(traffic: TrafficSpec): void {
    const weights = freezeWeights(traffic.weights);
    this.traffic = traffic;
    this.weights = weights;
    this.outliers.configure(traffic.outlier);
    this.zonePriority = zonePriorities(traffic.priorities);
    this.members = this.members.map(({ endpoint }) => ({
      endpoint,
      priority: this.priorityOf(endpoint.zone),
    }));
    this.view = null;
  }

  pick(
    now: number,
    random: () => number,
    exclude: ReadonlySet<string>,
    inFlight: (instance: string) => number,
  ): PickResult {
    // Read once: everything below works on this immutable view only.
    const view = this.currentView(now);
    if (view.failure !== null) return view.failure;
    const pool = view.pools[choose(view.poolChoice, random)]!;
    const priority = choose(pool.priorityChoice, random);
    const drawn = pool.groups[priority]!.usable;
    const chosen =
      lessLoadedOfTwo(drawn, exclude, inFlight, random) ??
      otherPriority(pool, priority, exclude, inFlight, random) ??
      lessLoadedOfTwo(drawn, NOTHING_EXCLUDED, inFlight, random)!;
    if (view.zoneShares === null) return chosen;
    return leaveShiftedZone(view.zoneShares, pool, chosen, exclude, inFlight, random);
  }

  report(instance: string, outcome: AttemptOutcome, now: number): void {
    if (this.outliers.record(instance, outcome, now)) this.view = null;
  }

  /**
   * Stop giving `instance` new requests: it stalled (see stallDetection.ts). Subject to the
   * max-ejection cap, shared with outlier ejections: a stall the cap prevents is counted
   * (`stallsSuppressed`). An instance that is already ejected may be marked (it stays out once).
   *
   * @returns whether it is marked now (false: not a member, already stalled, or the cap)
   */
  markStalled(instance: string, now: number): boolean {
    if (this.stalled.has(instance) || !this.members.some((m) => m.endpoint.instance === instance)) {
      return false;
    }
    const alreadyOut = this.outliers.ejectedUntil(instance, now) !== null;
    if (!alreadyOut && this.outCount(now) + 1 > this.outliers.maxEjected()) {
      this.stallsSuppressed += 1;
      return false;
    }
    this.stalled.set(instance, now);
    this.view = null;
    return true;
  }

  /** `instance` takes new requests again (it answered, or its stall expired). @returns whether it was stalled */
  clearStalled(instance: string): boolean {
    if (!this.stalled.delete(instance)) return false;
    this.view = null;
    return true;
  }

  /** Epoch ms `instance` stalled at, or null when it is not stalled (or not a member). */
  stalledSince(instance: string): number | null {
    return this.stalled.get(instance) ?? null;
  }

  /** Whether `instance` is out of the balancer at `now`: ejected or stalled. */
  isOut(instance: string, now: number): boolean {
    return this.stalled.has(instance) || this.outliers.ejectedUntil(instance, now) !== null;
  }

  /** Members stalled now. */
  stalledInstances(): string[] {
    return [...this.stalled.keys()];
  }

  /** Members ejected at `now` (without building the whole state). */
  ejectedInstances(now: number): string[] {
    const out: string[] = [];
    for (const { endpoint } of this.members) {
      if (this.outliers.ejectedUntil(endpoint.instance, now) !== null) out.push(endpoint.instance);
    }
    return out;
  }

  /** A JSON-friendly snapshot at `now`, for the API. */
  state(now: number): BalancerState {
    return describeState({
      view: this.currentView(now),
      members: this.members,
      outliers: this.outliers,
      stalled: this.stalled,
      stallsSuppressed: this.stallsSuppressed,
      traffic: this.traffic,
      now,
    });
  }

  /** Members out of the balancer at `now`: ejected or stalled, each once. */
  private outCount(now: number): number {
    return this.outliers.ejectedCount(now) + this.stalledNotEjected(now);
  }

  /** Stalled members that are not also ejected (what the cap counts on top of ejections). */
  private stalledNotEjected(now: number): number {
    let count = 0;
    for (const instance of this.stalled.keys()) {
      if (this.outliers.ejectedUntil(instance, now) === null) count += 1;
    }
    return count;
  }

  private currentView(now: number): BalancerView {
    let view = this.view;
    if (view === null || now >= view.validUntil) {
      view = buildView({
        members: this.members,
        priorityCount: priorityCount(this.traffic, this.members),
        traffic: this.traffic,
        weights: this.weights,
        zoneShares: this.zoneShares,
        outliers: this.outliers,
        stalled: this.stalled,
        now,
      });
      this.view = view;
    }
    return view;
  }

  private priorityOf(zone: string): number {
    return this.zonePriority.get(zone) ?? this.traffic.priorities.length;
  }
}

/**
 * A pick that landed in a shifted zone stays there with probability `share`; otherwise it moves to
 * the less loaded of two usable, untried endpoints of the unshifted zones (and stays if there is none).
 */
function leaveShiftedZone(
  shares: ReadonlyMap<string, number>,
  pool: Pool,
  chosen: Chosen,
  exclude: ReadonlySet<string>,
  inFlight: (instance: string) => number,
  random: () => number,
): Chosen {
  const share = shares.get(chosen.endpoint.zone);
  if (share === undefined || random() < share) return chosen;
  return lessLoadedOfTwo(pool.unshifted, exclude, inFlight, random) ?? chosen;
}

/** The first usable, not yet tried endpoint of the pool's other priorities, in priority order. */
function otherPriority(
  pool: Pool,
  skip: number,
  exclude: ReadonlySet<string>,
  inFlight: (instance: string) => number,
  random: () => number,
): Chosen | undefined {
  for (let p = 0; p < pool.groups.length; p++) {
    if (p === skip) continue;
    const chosen = lessLoadedOfTwo(pool.groups[p]!.usable, exclude, inFlight, random);
    if (chosen !== undefined) return chosen;
  }
  return undefined;
}

/** The listed priorities, plus the last one only if some member's zone is not listed. */
export function priorityCount(traffic: TrafficSpec, members: readonly Member[]): number {
  let count = traffic.priorities.length;
  for (const { priority } of members) if (priority >= count) count = priority + 1;
  return count;
}

/** Zone → priority index; a zone listed twice keeps its first (highest) priority. */
export function zonePriorities(priorities: readonly (readonly string[])[]): Map<string, number> {
  const map = new Map<string, number>();
  priorities.forEach((zones, index) => {
    for (const zone of zones) if (!map.has(zone)) map.set(zone, index);
  });
  return map;
}

/** Same instance name, same release and address: the same process, so its record still applies. */
function sameProcessSlot(a: Endpoint, b: Endpoint): boolean {
  return a.release === b.release && a.host === b.host && a.port === b.port;
}
