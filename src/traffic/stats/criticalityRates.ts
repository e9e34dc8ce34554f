/**
 * Requests per second by criticality over the last minutes: counts in one-second buckets, no
 * latencies (the failover planner needs how much of a service's load it may shed, not how fast
 * it was).
 */

import { CRITICALITIES, type Criticality } from "../contracts.ts";

const SECONDS = 300;

export class CriticalityRates {
  private readonly counts = new Uint32Array(SECONDS * CRITICALITIES.length);
  /** The epoch second each bucket holds, or -1. */
  private readonly seconds = new Float64Array(SECONDS).fill(-1);

  record(nowMs: number, criticality: Criticality, count = 1): void {
    const second = Math.floor(nowMs / 1000);
    const slot = second % SECONDS;
    if (this.seconds[slot] !== second) {
      this.seconds[slot] = second;
      this.counts.fill(0, slot * CRITICALITIES.length, (slot + 1) * CRITICALITIES.length);
    }
    const index = slot * CRITICALITIES.length + CRITICALITIES.indexOf(criticality);
    this.counts[index] = (this.counts[index] ?? 0) + count;
  }

  /** The seconds in [`fromSecond`, `toSecond`] with arrivals: [second, critical, default, sheddable]. */
  exportSeconds(fromSecond: number, toSecond: number): [number, number, number, number][] {
    const out: [number, number, number, number][] = [];
    for (let second = Math.max(fromSecond, toSecond - SECONDS + 1); second <= toSecond; second++) {
      const slot = ((second % SECONDS) + SECONDS) % SECONDS;
      if (this.seconds[slot] !== second) continue;
      const base = slot * CRITICALITIES.length;
      out.push([second, this.counts[base] ?? 0, this.counts[base + 1] ?? 0, this.counts[base + 2] ?? 0]);
    }
    return out;
  }

  /** Replace one second with counts read elsewhere (a mirror); older than the slot's second: ignored. */
  importSecond([second, critical, normal, sheddable]: [number, number, number, number]): void {
    const slot = ((second % SECONDS) + SECONDS) % SECONDS;
    if ((this.seconds[slot] ?? -1) > second) return;
    this.seconds[slot] = second;
    const base = slot * CRITICALITIES.length;
    this.counts[base] = critical;
    this.counts[base + 1] = normal;
    this.counts[base + 2] = sheddable;
  }

  /**
   * Requests/s of each criticality over the last `windowSeconds` (current second included).
   * `per: "window"` divides by the whole window, which reads low while the current second is still
   * filling (by up to 1/windowSeconds); `per: "elapsed"` divides by the time the window has actually
   * covered — the whole past seconds plus the part of the current one that has passed (at least
   * 1 s) — which is what a live demand estimate needs.
   */
  rates(
    nowMs: number,
    windowSeconds: number,
    per: "window" | "elapsed" = "window",
  ): Record<Criticality, number> {
    const span = Math.max(1, Math.min(SECONDS, Math.ceil(windowSeconds)));
    const now = Math.floor(nowMs / 1000);
    const totals = [0, 0, 0];
    for (let second = now - span + 1; second <= now; second++) {
      const slot = ((second % SECONDS) + SECONDS) % SECONDS;
      if (this.seconds[slot] !== second) continue;
      for (let c = 0; c < CRITICALITIES.length; c++)
        totals[c]! += this.counts[slot * CRITICALITIES.length + c] ?? 0;
    }
    const seconds = per === "window" ? span : Math.max(1, span - 1 + (nowMs - now * 1000) / 1000);
    return {
      critical: totals[0]! / seconds,
      default: totals[1]! / seconds,
      sheddable: totals[2]! / seconds,
    };
  }
}
