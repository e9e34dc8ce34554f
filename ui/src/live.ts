/**
 * The live picture of the fleet: everything the dashboard shows, kept fresh from the API. Server-
 * Sent Events (`GET /v1/stream`) push status, incidents and events as they happen, resuming after
 * the last event id when the connection drops; a slower poll fills in what the stream does not
 * carry (releases, failover, data-plane counters). Without the stream (an older controller), the
 * poll runs faster and carries everything.
 */

import { useEffect, useRef, useState } from "preact/hooks";
import {
  type Api,
  ApiError,
  parseCounters,
  readStream,
  type StreamMessage,
  type TrafficCounters,
} from "./api.ts";
import type {
  CheckDoc,
  EventRecord,
  FailoverDoc,
  Incident,
  ReleasesDoc,
  StatusDoc,
  TrafficService,
} from "./model.ts";
import { type Rates, ratesBetween } from "./rates.ts";

/** How the dashboard hears from the controller now, shown in the header. */
export type Connection =
  | { mode: "connecting" }
  | { mode: "live" }
  | { mode: "polling"; why: string }
  | { mode: "offline"; why: string };

/** Everything the dashboard shows, as last read; what {@link useFleet} returns. */
export interface Fleet {
  status: StatusDoc | null;
  incidents: Incident[];
  releases: Record<string, ReleasesDoc>;
  failover: FailoverDoc | null;
  check: CheckDoc | null;
  traffic: Record<string, TrafficService>;
  rates: Record<string, Rates>;
  events: EventRecord[];
  connection: Connection;
  /** Set when the token stopped working (revoked): the app goes back to the login. */
  unauthorized: string | null;
  /** Fetch everything now (after an action). */
  refresh: () => void;
}

const POLL_LIVE_MS = 2_000;
const POLL_FALLBACK_MS = 1_000;
const EVENTS_KEPT = 40;
const INCIDENTS_SHOWN = 10;

/**
 * The newest event's sequence number. The API lists events forwards from a sequence number, so
 * this probes `after=N&limit=1` (empty once N reaches the newest): doubling, then halving, about
 * 2·log2(events) small reads, once per login.
 */
async function latestEventSeq(api: Api, signal: AbortSignal): Promise<number> {
  const beyond = async (after: number): Promise<boolean> =>
    (await api.get<{ events: EventRecord[] }>(`/v1/events?after=${after}&limit=1`, signal)).events.length ===
    0;
  if (await beyond(0)) return 0;
  let high = 1;
  while (!(await beyond(high))) high *= 2;
  let low = Math.floor(high / 2); // events exist after `low`, none after `high`
  while (high - low > 1) {
    const mid = Math.floor((low + high) / 2);
    if (await beyond(mid)) high = mid;
    else low = mid;
  }
  return high;
}

/** Keeps a {@link Fleet} fresh for as long as the component using it is mounted. */
export function useFleet(api: Api): Fleet {
  const [status, setStatus] = useState<StatusDoc | null>(null);
  const [incidents, setIncidents] = useState<Incident[]>([]);
  const [releases, setReleases] = useState<Record<string, ReleasesDoc>>({});
  const [failover, setFailover] = useState<FailoverDoc | null>(null);
  const [check, setCheck] = useState<CheckDoc | null>(null);
  const [traffic, setTraffic] = useState<Record<string, TrafficService>>({});
  const [rates, setRates] = useState<Record<string, Rates>>({});
  const [events, setEvents] = useState<EventRecord[]>([]);
  const [connection, setConnection] = useState<Connection>({ mode: "connecting" });
  const [unauthorized, setUnauthorized] = useState<string | null>(null);
  const refreshRef = useRef<() => void>(() => undefined);

  useEffect(() => {
    const stop = new AbortController();
    const signal = stop.signal;
    let live = false;
    /** Why the dashboard polls, shown while it does. */
    let pollWhy = "connecting to the event stream";
    let lastSeq = 0;
    let lastCounters: { at: number; counters: Map<string, TrafficCounters> } | null = null;
    let services: string[] = [];
    const incidentMap = new Map<number, Incident>();
    let running = false;
    let again = false;
    let timer: ReturnType<typeof setTimeout> | undefined;

    const fail = (error: unknown): void => {
      if (signal.aborted) return;
      if (error instanceof ApiError && error.status === 401) setUnauthorized(error.message);
    };
    const publishIncidents = (): void => {
      const sorted = [...incidentMap.values()].sort((a, b) => b.id - a.id).slice(0, INCIDENTS_SHOWN);
      setIncidents(sorted);
    };
    const addEvents = (fresh: EventRecord[]): void => {
      if (fresh.length === 0) return;
      lastSeq = Math.max(lastSeq, ...fresh.map((e) => e.seq));
      setEvents((old) => {
        const seen = new Set(old.map((e) => e.seq));
        return [...fresh.filter((e) => !seen.has(e.seq)).reverse(), ...old].slice(0, EVENTS_KEPT);
      });
    };
    const applyStatus = (doc: StatusDoc): void => {
      services = doc.services.map((s) => s.name);
      setStatus(doc);
    };

    /** One round of reads; overlapping requests for a round fold into one more round. */
    const round = async (): Promise<void> => {
      if (running) {
        again = true;
        return;
      }
      running = true;
      try {
        const doc = await api.get<StatusDoc>("/v1/status", signal);
        applyStatus(doc);
        const optional = <T>(p: Promise<T>): Promise<T | null> =>
          p.catch((error: unknown) => {
            // 404: this controller has no such part (no data plane, no failover): nothing to show.
            if (error instanceof ApiError && error.status === 404) return null;
            throw error;
          });
        const [list, fo, chk, tr, metrics, ev, ...rel] = await Promise.all([
          api.get<{ incidents: Incident[] }>(`/v1/incidents?limit=${INCIDENTS_SHOWN}`, signal),
          optional(api.get<FailoverDoc>("/v1/failover", signal)),
          optional(api.get<CheckDoc>("/v1/check", signal)),
          optional(api.get<{ services: Record<string, TrafficService> }>("/v1/traffic", signal)),
          optional(api.text("/metrics", signal)),
          (async () => {
            // The first read starts at the newest events, not at the first of the log.
            if (lastSeq === 0) lastSeq = Math.max(0, (await latestEventSeq(api, signal)) - EVENTS_KEPT);
            return await api.get<{ events: EventRecord[] }>(`/v1/events?after=${lastSeq}&limit=500`, signal);
          })(),
          ...services.map((s) =>
            optional(api.get<ReleasesDoc>(`/v1/services/${encodeURIComponent(s)}/releases`, signal)),
          ),
        ]);
        // The list has no timelines: fetch each shown incident that is open or changed.
        await Promise.all(
          list.incidents.map(async (summary) => {
            const known = incidentMap.get(summary.id);
            const unchanged =
              known?.timeline !== undefined &&
              known.status === summary.status &&
              known.mitigatedAt === summary.mitigatedAt &&
              known.closedAt === summary.closedAt &&
              known.verifiedAt === summary.verifiedAt &&
              summary.status !== "open";
            if (unchanged) return;
            const { incident } = await api.get<{ incident: Incident }>(`/v1/incidents/${summary.id}`, signal);
            incidentMap.set(incident.id, incident);
          }),
        );
        publishIncidents();
        setFailover(fo);
        setCheck(chk);
        setTraffic(tr?.services ?? {});
        if (metrics !== null) {
          const now = performance.now();
          const counters = parseCounters(metrics);
          if (lastCounters !== null && now - lastCounters.at > 200) {
            const seconds = (now - lastCounters.at) / 1000;
            setRates(ratesBetween(lastCounters.counters, counters, seconds, Object.keys(tr?.services ?? {})));
          }
          if (lastCounters === null || now - lastCounters.at > 200) lastCounters = { at: now, counters };
        }
        addEvents(ev.events);
        if (!live) setConnection((c) => (c.mode === "offline" ? { mode: "polling", why: pollWhy } : c));
        const rels: Record<string, ReleasesDoc> = {};
        services.forEach((s, i) => {
          const r = rel[i];
          if (r !== null && r !== undefined) rels[s] = r;
        });
        setReleases(rels);
      } catch (error) {
        fail(error);
        if (!live && !signal.aborted && !(error instanceof ApiError && error.status === 401)) {
          setConnection({ mode: "offline", why: error instanceof Error ? error.message : String(error) });
        }
      } finally {
        running = false;
      }
      if (again && !signal.aborted) {
        again = false;
        await round();
      }
    };

    const schedule = (): void => {
      if (signal.aborted) return;
      timer = setTimeout(
        () => {
          void round().then(schedule);
        },
        live ? POLL_LIVE_MS : POLL_FALLBACK_MS,
      );
    };
    let soon: ReturnType<typeof setTimeout> | undefined;
    /** A change arrived: read the rest soon, once for a burst of events. */
    const soonRound = (): void => {
      if (soon !== undefined) return;
      soon = setTimeout(() => {
        soon = undefined;
        void round();
      }, 100);
    };
    refreshRef.current = () => void round();

    const onMessage = (message: StreamMessage): void => {
      let data: unknown;
      try {
        data = JSON.parse(message.data);
      } catch {
        return;
      }
      if (message.event === "status") applyStatus(data as StatusDoc);
      else if (message.event === "incident") {
        const incident = ((data as { incident?: Incident }).incident ?? data) as Incident;
        incidentMap.set(incident.id, { ...incidentMap.get(incident.id), ...incident });
        publishIncidents();
        soonRound();
      } else if (message.event === "event") {
        const event = ((data as { event?: EventRecord }).event ?? data) as EventRecord;
        addEvents([event]);
        soonRound();
      }
    };

    /** The stream, reconnected with Last-Event-ID after a drop; polling while it is down. */
    const stream = async (): Promise<void> => {
      let lastId: string | null = null;
      let backoff = 500;
      while (!signal.aborted) {
        try {
          lastId = await readStream(
            api,
            lastId ?? (lastSeq > 0 ? `e${lastSeq}` : null),
            () => {
              live = true;
              backoff = 500;
              setConnection({ mode: "live" });
            },
            onMessage,
            signal,
          );
          live = false;
          pollWhy = "the event stream ended; reconnecting";
          setConnection({ mode: "polling", why: pollWhy });
        } catch (error) {
          live = false;
          if (signal.aborted) return;
          fail(error);
          if (error instanceof ApiError && error.status === 401) return;
          if (error instanceof ApiError && error.status === 404) {
            pollWhy = "this controller has no event stream (GET /v1/stream)";
            setConnection({ mode: "polling", why: pollWhy });
            return;
          }
          pollWhy = `event stream: ${error instanceof Error ? error.message : String(error)}; reconnecting`;
          setConnection({ mode: "polling", why: pollWhy });
        }
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 10_000);
      }
    };

    void round().then(schedule);
    void stream();
    return () => {
      stop.abort();
      clearTimeout(timer);
      clearTimeout(soon);
    };
  }, [api]);

  return {
    status,
    incidents,
    releases,
    failover,
    check,
    traffic,
    rates,
    events,
    connection,
    unauthorized,
    refresh: () => refreshRef.current(),
  };
}
