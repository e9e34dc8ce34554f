/**
 * Stalled instances, as the proxy handles them: looks at every endpoint's silence (see
 * balance/stallDetection.ts) while requests are in flight, marks the stalled ones in the balancer
 * (no new requests, under the max-ejection cap) and lets them back when they answer. Events and
 * metrics are those of an ejection, with the reason `stalled`.
 *
 * It looks on a short timer that runs only while attempts wait or something is stalled, and at
 * once when an attempt was hedged (a hedge is the first sign of a stall). Nothing on the request
 * path but the per-endpoint waiting count and silence clock the attempts keep.
 */

import type { TrafficSpec } from "../../spec/model.ts";
import type { Balancer } from "../balance/balancer.ts";
import { findStalled, type StallCandidate, stallThresholdMs } from "../balance/stallDetection.ts";
import type { TrafficStats } from "../stats/index.ts";
import type { EndpointTable } from "./endpointTable.ts";
import type { TrafficEvent } from "./healthWatch.ts";

/** How often to look, at most and at least: a quarter of the threshold between these. */
const MIN_TICK_MS = 10;
const MAX_TICK_MS = 100;

interface Stall {
  /** `performance.now()` when it was marked: an answer after this brings it back. */
  since: number;
  /** Epoch ms after which it gets requests again even without an answer. */
  until: number;
}

export interface StallWatchOptions {
  service: string;
  balancer: Balancer;
  table: EndpointTable;
  stats: TrafficStats;
  /** The settings in force (read at every look). */
  traffic: () => TrafficSpec;
  /** The hedge delay now (ms): the threshold scales with it. */
  hedgeDelayMs: () => number;
  /** Epoch ms (the balancer's clock). */
  now: () => number;
  onEvent: (event: TrafficEvent) => void;
}

export class StallWatch {
  private readonly options: StallWatchOptions;
  private readonly stalls = new Map<string, Stall>();
  private timer: NodeJS.Timeout | null = null;

  constructor(options: StallWatchOptions) {
    this.options = options;
  }

  /** Requests are in flight: make sure someone looks. Cheap when already looking. */
  poke(): void {
    if (this.timer === null && this.options.traffic().stallDetection.enabled) this.schedule();
  }

  /** An attempt to `instance` was hedged (it waited past the hedge delay): look now. */
  hedged(_instance: string): void {
    this.check();
  }

  /** Compare every endpoint's silence with the threshold; mark and release stalls; plan the next look. */
  check(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const { balancer, table, traffic } = this.options;
    const settings = traffic();
    if (table.size === 0 || !settings.stallDetection.enabled) {
      this.releaseAll(table.size === 0 ? "left-membership" : "stall-detection-off");
      return;
    }
    const perfNow = performance.now();
    const now = this.options.now();
    this.releaseAnswered(now);

    const thresholdMs = stallThresholdMs(this.options.hedgeDelayMs(), settings.stallDetection);
    const candidates: StallCandidate[] = [];
    let waiting = false;
    for (const pool of table.activePools()) {
      const instance = pool.endpoint.instance;
      if (pool.waiting > 0) waiting = true;
      candidates.push({
        instance,
        waiting: pool.waiting,
        silentMs: pool.silentMs(perfNow),
        out: balancer.isOut(instance, now),
      });
    }
    for (const instance of findStalled(candidates, thresholdMs)) {
      if (!balancer.markStalled(instance, now)) continue;
      const until = now + settings.outlier.baseEjectionMs;
      this.stalls.set(instance, { since: perfNow, until });
      const candidate = candidates.find((c) => c.instance === instance)!;
      this.options.stats.recordEjection(this.options.service, instance, true, "stalled");
      this.options.onEvent({
        type: "traffic.ejected",
        reason: "stalled",
        message: `${instance} stalled: ${candidate.waiting} attempts waiting and no answer for ${Math.round(candidate.silentMs)}ms while its peers answer (threshold ${Math.round(thresholdMs)}ms); no new requests until it answers`,
        data: {
          instance,
          waiting: candidate.waiting,
          silentMs: Math.round(candidate.silentMs),
          thresholdMs: Math.round(thresholdMs),
          until,
        },
      });
    }
    if (waiting || this.stalls.size > 0) this.schedule(thresholdMs);
  }

  /** Stalled instances that answered since, left, or were out long enough get requests again. */
  private releaseAnswered(now: number): void {
    const { balancer, table } = this.options;
    for (const [instance, stall] of this.stalls) {
      if (balancer.stalledSince(instance) === null) {
        this.release(instance, "left-membership", `${instance} left (or was replaced) while stalled`);
        continue;
      }
      const pool = table.get(instance);
      if (pool !== undefined && pool.lastAnswerAt > stall.since) {
        this.release(instance, "answered", `${instance} answered again: it gets new requests`);
      } else if (now >= stall.until) {
        this.release(
          instance,
          "stall-expired",
          `${instance} gets new requests again, a base ejection time after it stalled, without having answered (it is marked again if it stays silent)`,
        );
      }
    }
  }

  private releaseAll(reason: string): void {
    for (const instance of [...this.stalls.keys()]) {
      this.release(instance, reason, `${instance} is no longer marked stalled (${reason})`);
    }
  }

  private release(instance: string, reason: string, message: string): void {
    this.stalls.delete(instance);
    this.options.balancer.clearStalled(instance);
    this.options.stats.recordEjection(this.options.service, instance, false, "stalled");
    this.options.onEvent({ type: "traffic.returned", reason, message, data: { instance } });
  }

  private schedule(thresholdMs = this.defaultThreshold()): void {
    const delay = Math.min(MAX_TICK_MS, Math.max(MIN_TICK_MS, thresholdMs / 4));
    this.timer = setTimeout(() => this.check(), delay);
    // It watches requests; it must not keep a process alive on its own.
    this.timer.unref();
  }

  private defaultThreshold(): number {
    return stallThresholdMs(this.options.hedgeDelayMs(), this.options.traffic().stallDetection);
  }
}
