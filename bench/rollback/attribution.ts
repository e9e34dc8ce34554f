/**
 * Which release answered a request, without reading its body: the generator keeps the answering
 * instance's name (`x-homeostat-instance`) and the controller's `instance.started` events say which
 * release each instance (slot) ran from when. Slots are reused across releases (a service has two
 * banks of slots; a new release starts on the idle bank), so the release is looked up by time: the
 * last `instance.started` of that instance at or before the answer ended. The process that answered
 * existed before its answer was complete, and was started (and its event recorded) before it could
 * be ready for traffic.
 *
 * Pure: same inputs, same answers.
 */

import type { EventRecord } from "../../src/store/index.ts";
import type { LoadRecord } from "./openLoad.ts";

/** One `instance.started`: from `at` (epoch ms), the instance ran `release`. */
export interface ReleaseSpan {
  at: number;
  seq: number;
  release: string;
}

/** Per instance, its starts in order (by time, then sequence). */
export type ReleaseTimeline = ReadonlyMap<string, readonly ReleaseSpan[]>;

/** The starts of every instance of `service` (every service when null). */
export function releaseTimeline(events: readonly EventRecord[], service: string | null): ReleaseTimeline {
  const timeline = new Map<string, ReleaseSpan[]>();
  for (const e of events) {
    if (e.type !== "instance.started" || e.instance === undefined) continue;
    if (service !== null && e.service !== service) continue;
    const release = (e.data as { release?: unknown } | undefined)?.release;
    if (typeof release !== "string") continue;
    const spans = timeline.get(e.instance) ?? [];
    spans.push({ at: e.at, seq: e.seq, release });
    timeline.set(e.instance, spans);
  }
  for (const spans of timeline.values()) spans.sort((a, b) => a.at - b.at || a.seq - b.seq);
  return timeline;
}

/** The release `instance` ran at `at` (epoch ms); null when it had not been started by then. */
export function releaseAt(timeline: ReleaseTimeline, instance: string, at: number): string | null {
  const spans = timeline.get(instance);
  if (spans === undefined) return null;
  let release: string | null = null;
  for (const span of spans) {
    if (span.at > at) break;
    release = span.release;
  }
  return release;
}

/**
 * The records with `version` set to the release their answering instance ran when the answer
 * ended (null without an instance, or for an instance not started by then). New objects; the
 * input is left as it is.
 */
export function withReleases(records: readonly LoadRecord[], timeline: ReleaseTimeline): LoadRecord[] {
  return records.map((r) => ({
    ...r,
    version: r.instance === null ? null : releaseAt(timeline, r.instance, r.done),
  }));
}
