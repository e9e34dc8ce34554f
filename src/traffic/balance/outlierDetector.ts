/**
 * Passive outlier detection: instances that fail several attempts in a row are ejected (taken out
 * of the balancer's choice) for a while, and come back on their own when the time is up.
 *
 * Envoy's users report its max-ejection cap ending with every host ejected; the cap here is strict:
 * floor(percent × members) is the most that can be out at once (10 % of 3 instances ejects none),
 * and an ejection the cap prevented is counted so that it is visible.
 */

import type { TrafficSpec } from "../../spec/model.ts";
import type { AttemptOutcome } from "../contracts.ts";

export type OutlierSettings = TrafficSpec["outlier"];

/** What the API shows about one instance. */
export interface OutlierInstanceState {
  /** Non-success outcomes since the last success (reset to 0 by an ejection). */
  consecutiveFailures: number;
  /** Epoch ms at which the current ejection ends; null when the instance is not ejected. */
  ejectedUntil: number | null;
  /** Ejections so far, after decay: the next ejection lasts base × (this + 1), capped at max. */
  timesEjected: number;
}

interface Tracked {
  consecutiveFailures: number;
  timesEjected: number;
  /** End of the latest ejection, past or future; -Infinity if never ejected. */
  ejectedUntil: number;
  /** `timesEjected` drops by one for each full maxEjectionMs after this instant without an ejection. */
  decayFrom: number;
}

/**
 * Consecutive-failure ejection over a set of member instances. Pure: time is an argument.
 *
 * Decay: after an ejection ends, every full `maxEjectionMs` without a new ejection takes one off
 * `timesEjected`, so an instance that misbehaved once long ago starts again from short ejections,
 * while one that keeps failing climbs to the maximum quickly.
 */
export class OutlierDetector {
  private settings: OutlierSettings;
  private readonly tracked = new Map<string, Tracked>();
  private suppressed = 0;
  private readonly alsoOut: (now: number) => number;

  /**
   * @param alsoOut members out of the balancer for another reason (stalled) and not ejected: they
   *   count toward the max-ejection cap too
   */
  constructor(settings: OutlierSettings, alsoOut: (now: number) => number = () => 0) {
    this.settings = settings;
    this.alsoOut = alsoOut;
  }

  /** New settings apply to the next ejection; current ejections keep their end time. */
  configure(settings: OutlierSettings): void {
    this.settings = settings;
  }

  /** Make `instances` the members: state of those that stay is kept, others are forgotten. */
  setMembers(instances: Iterable<string>): void {
    const keep = new Set(instances);
    for (const instance of this.tracked.keys()) if (!keep.has(instance)) this.tracked.delete(instance);
    for (const instance of keep) if (!this.tracked.has(instance)) this.tracked.set(instance, fresh());
  }

  /** Start a member over (e.g. the same instance name now runs another process). */
  forget(instance: string): void {
    if (this.tracked.has(instance)) this.tracked.set(instance, fresh());
  }

  /**
   * Count one attempt's outcome. Outcomes for instances that are not members are ignored (a
   * removed instance finishing its in-flight requests).
   *
   * @returns true when this outcome ejected the instance
   */
  record(instance: string, outcome: AttemptOutcome, now: number): boolean {
    const entry = this.tracked.get(instance);
    if (entry === undefined) return false;
    if (outcome === "success") {
      entry.consecutiveFailures = 0;
      return false;
    }
    entry.consecutiveFailures += 1;
    if (entry.consecutiveFailures < Math.max(1, this.settings.consecutiveFailures)) return false;
    if (now < entry.ejectedUntil) return false;
    if (this.ejectedCount(now) + this.alsoOut(now) + 1 > this.maxEjected()) {
      this.suppressed += 1;
      return false;
    }
    this.decay(entry, now);
    entry.timesEjected += 1;
    const { baseEjectionMs, maxEjectionMs } = this.settings;
    entry.ejectedUntil = now + Math.min(maxEjectionMs, baseEjectionMs * entry.timesEjected);
    entry.decayFrom = entry.ejectedUntil;
    // Like Envoy: a returning instance needs a fresh run of failures to be ejected again.
    entry.consecutiveFailures = 0;
    return true;
  }

  /** End of `instance`'s current ejection, or null when it is not ejected (or not a member). */
  ejectedUntil(instance: string, now: number): number | null {
    const entry = this.tracked.get(instance);
    return entry !== undefined && now < entry.ejectedUntil ? entry.ejectedUntil : null;
  }

  /** Members ejected at `now`. */
  ejectedCount(now: number): number {
    let count = 0;
    for (const entry of this.tracked.values()) if (now < entry.ejectedUntil) count += 1;
    return count;
  }

  /** State of one member at `now`, or undefined if it is not a member. */
  stateOf(instance: string, now: number): OutlierInstanceState | undefined {
    const entry = this.tracked.get(instance);
    if (entry === undefined) return undefined;
    this.decay(entry, now);
    return {
      consecutiveFailures: entry.consecutiveFailures,
      ejectedUntil: now < entry.ejectedUntil ? entry.ejectedUntil : null,
      timesEjected: entry.timesEjected,
    };
  }

  /** Ejections the max-ejection cap prevented, since this detector was created. */
  get ejectionsSuppressed(): number {
    return this.suppressed;
  }

  /** The most members that may be out at once: floor(maxEjectionPercent × members). */
  maxEjected(): number {
    // Multiply before dividing so that e.g. 70 % of 10 is exactly 7, not 7.000000000000001.
    return Math.floor((this.settings.maxEjectionPercent * this.tracked.size) / 100);
  }

  private decay(entry: Tracked, now: number): void {
    if (entry.timesEjected === 0 || !(now > entry.decayFrom)) return;
    const period = Math.max(1, this.settings.maxEjectionMs);
    const periods = Math.floor((now - entry.decayFrom) / period);
    if (periods <= 0) return;
    entry.timesEjected = Math.max(0, entry.timesEjected - periods);
    entry.decayFrom += periods * period;
  }
}

function fresh(): Tracked {
  return { consecutiveFailures: 0, timesEjected: 0, ejectedUntil: Number.NEGATIVE_INFINITY, decayFrom: 0 };
}
