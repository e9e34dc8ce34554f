import { type Counter, type Gauge, Registry } from "prom-client";
import { HomeostatError } from "../../errors.ts";
import type { AttemptOutcome, Criticality, ShedReason } from "../contracts.ts";
import { CriticalityRates } from "./criticalityRates.ts";
import { LATENCY_BUCKET_COUNT, quantileMs } from "./latencyBuckets.ts";
import { createProxyMetrics, type HistogramSeries, type ProxyMetrics } from "./proxyMetrics.ts";
import { RING_SECONDS, type RingSecond, WindowRing } from "./windowRing.ts";

/** One upstream attempt against one instance. `status` is the upstream's status, when it answered. */
export interface AttemptRecord {
  service: string;
  release: string;
  instance: string;
  zone: string;
  outcome: AttemptOutcome;
  status?: number;
  latencyMs: number;
}

/**
 * Why an instance is out of the balancer: `consecutive-failures` (outlier detection) or `stalled`
 * (it answered nothing while its peers did).
 */
export type EjectionReason = "consecutive-failures" | "stalled";

/** How the proxy answered a client request. */
export type RequestResult =
  | "ok"
  | "client-error"
  | "upstream-5xx"
  | "shed"
  | "no-upstream"
  | "timeout"
  | "failed";

/** One client request as answered by the proxy. */
export interface RequestRecord {
  service: string;
  criticality: Criticality;
  result: RequestResult;
  status: number;
  latencyMs: number;
  attempts: number;
  retried: boolean;
}

/** An attempt record to fill in and reuse: the stats read a record synchronously and keep nothing of it. */
export function blankAttemptRecord(): AttemptRecord {
  return { service: "", release: "", instance: "", zone: "", outcome: "success", latencyMs: 0 };
}

/** A request record to fill in and reuse (see {@link blankAttemptRecord}). */
export function blankRequestRecord(): RequestRecord {
  return {
    service: "",
    criticality: "default",
    result: "ok",
    status: 0,
    latencyMs: 0,
    attempts: 0,
    retried: false,
  };
}

/** Which series a window reads: a service's client requests, or the attempts to a release or an instance. */
export interface WindowQuery {
  service: string;
  release?: string;
  instance?: string;
  /** At most five minutes (the history kept). */
  windowMs: number;
}

/** A window's figures. Rates and percentiles are null when there is no request: no data is never a pass. */
export interface WindowStats {
  requests: number;
  errors: number;
  errorRate: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  rps: number;
}

export interface TrafficStatsOptions {
  /** Epoch milliseconds; default `Date.now`. */
  now?: () => number;
  /** Where the metrics are registered; default a registry of this instance's own. */
  registry?: Registry;
}

/**
 * The decision windows of some seconds, as the data plane hands them to the controller: per
 * service, its client requests, arrivals by criticality, and attempts per release and per instance.
 * Seconds are whole, so importing the same export twice changes nothing.
 */
export interface WindowsExport {
  services: Record<
    string,
    {
      requests: RingSecond[];
      criticality: [number, number, number, number][];
      releases: Record<string, RingSecond[]>;
      instances: Record<string, RingSecond[]>;
    }
  >;
}

/** What decisions read from the traffic: windows and arrival rates (one data plane, or merged). */
export interface DecisionWindows {
  window(q: WindowQuery): WindowStats;
  criticalityRates(
    service: string,
    windowMs: number,
    per?: "window" | "elapsed",
  ): Record<Criticality, number>;
}

/** The longest window {@link TrafficStats.window} answers. */
export const MAX_WINDOW_MS = RING_SECONDS * 1000;

const CRITICALITY_INDEX: Record<Criticality, number> = { critical: 0, default: 1, sheddable: 2 };
const CRITICALITY_COUNT = Object.keys(CRITICALITY_INDEX).length;
const RESULTS: readonly RequestResult[] = [
  "ok",
  "client-error",
  "upstream-5xx",
  "shed",
  "no-upstream",
  "timeout",
  "failed",
];
const RESULT_INDEX = indexOf(RESULTS);
/** Results that are the service's fault as the client sees it (a client error is not). */
const RESULT_IS_ERROR: readonly boolean[] = RESULTS.map(
  (result) => result !== "ok" && result !== "client-error",
);
const OUTCOMES: readonly AttemptOutcome[] = ["success", "http-5xx", "connect-error", "timeout", "reset"];
const OUTCOME_INDEX = indexOf(OUTCOMES);
const REASONS: readonly ShedReason[] = [
  "over-limit",
  "queue-full",
  "queue-timeout",
  "aborted",
  "failover-shed",
];
const REASON_INDEX = indexOf(REASONS);

/**
 * One counter series: increments are summed here on the request path and handed to prom-client
 * (whose `inc` validates and hashes the labels on every call) when the registry is read.
 */
interface PendingCount {
  readonly child: Counter.Internal;
  pending: number;
}

interface ReleaseCells {
  /** Attempts to this release's instances. */
  window: WindowRing;
  duration: HistogramSeries;
  /** Per instance, the attempt counters by outcome index. */
  attempts: Map<string, (PendingCount | undefined)[]>;
}

interface ServiceCells {
  /** Client requests as answered. */
  window: WindowRing;
  releases: Map<string, ReleaseCells>;
  /** Attempts to each instance, whatever release it runs. */
  instances: Map<string, WindowRing>;
  /** Indexed criticality × RESULTS.length + result. */
  requests: (PendingCount | undefined)[];
  /** Indexed criticality × REASONS.length + reason. */
  shed: (PendingCount | undefined)[];
  /** Keyed by reason, then instance. */
  ejections: Map<
    EjectionReason,
    Map<string, { count: Counter.Internal; ejected: Gauge.Internal<"service" | "instance" | "reason"> }>
  >;
  inPanic: Gauge.Internal<"service">;
  hedges: { sent: Counter.Internal; won: Counter.Internal } | null;
  criticality: CriticalityRates;
}

/**
 * The data plane's traffic statistics: Prometheus metrics for people and dashboards, and rolling
 * one-second windows for decisions (canary analysis, failover planning).
 *
 * The per-request calls ({@link recordAttempt}, {@link recordRequest}) allocate nothing once a
 * label set has been seen: series and prom-client label children are cached in nested maps keyed
 * by the given strings (no key is built per call), and windows are preallocated typed arrays.
 * They do not call prom-client either: counts are summed in the cells and handed to the
 * prom-client counters when the registry is read, and the latency histogram is a
 * {@link DurationHistogram} of our own.
 */
export class TrafficStats {
  /** The registry holding this instance's metrics. */
  readonly registry: Registry;
  private readonly now: () => number;
  private readonly metrics: ProxyMetrics;
  private readonly services = new Map<string, ServiceCells>();
  private readonly pendingAttempts: PendingCount[] = [];
  private readonly pendingRequests: PendingCount[] = [];
  private readonly pendingShed: PendingCount[] = [];

  constructor(options: TrafficStatsOptions = {}) {
    this.now = options.now ?? Date.now;
    this.registry = options.registry ?? new Registry();
    this.metrics = createProxyMetrics(this.registry, {
      attempts: () => flush(this.pendingAttempts),
      requests: () => flush(this.pendingRequests),
      shed: () => flush(this.pendingShed),
    });
  }

  /** Content type of {@link metricsText}, for the HTTP response. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * One upstream attempt (or `count` alike: a sampled log line standing for several): counts
   * toward the release's and the instance's windows and metrics.
   */
  recordAttempt(e: AttemptRecord, count = 1): void {
    const now = this.now();
    const service = this.serviceCells(e.service);
    const release = this.releaseCells(service, e.service, e.release);
    const isError = e.outcome !== "success";
    release.window.record(now, e.latencyMs, isError, count);
    this.instanceWindow(service, e.instance).record(now, e.latencyMs, isError, count);
    for (let i = 0; i < count; i++) release.duration.observe(e.latencyMs / 1000);
    let byOutcome = release.attempts.get(e.instance);
    if (byOutcome === undefined) {
      byOutcome = new Array(OUTCOMES.length);
      release.attempts.set(e.instance, byOutcome);
    }
    const outcome = OUTCOME_INDEX[e.outcome];
    let counter = byOutcome[outcome];
    if (counter === undefined) {
      counter = pendingCount(
        this.pendingAttempts,
        this.metrics.attempts.labels(e.service, e.release, e.instance, e.outcome),
      );
      byOutcome[outcome] = counter;
    }
    counter.pending += count;
  }

  /** One client request as answered (or `count` alike): counts toward the service's window and metrics. */
  recordRequest(e: RequestRecord, count = 1): void {
    const service = this.serviceCells(e.service);
    const result = RESULT_INDEX[e.result];
    const now = this.now();
    service.window.record(now, e.latencyMs, RESULT_IS_ERROR[result]!, count);
    service.criticality.record(now, e.criticality, count);
    const index = CRITICALITY_INDEX[e.criticality] * RESULTS.length + result;
    let counter = service.requests[index];
    if (counter === undefined) {
      counter = pendingCount(
        this.pendingRequests,
        this.metrics.requests.labels(e.service, e.criticality, e.result),
      );
      service.requests[index] = counter;
    }
    counter.pending += count;
  }

  /** A request shed by admission control or by the failover shedding gate (`failover-shed`). */
  recordShed(service: string, criticality: Criticality, reason: ShedReason): void {
    const cells = this.serviceCells(service);
    const index = CRITICALITY_INDEX[criticality] * REASONS.length + REASON_INDEX[reason];
    let counter = cells.shed[index];
    if (counter === undefined) {
      counter = pendingCount(this.pendingShed, this.metrics.shed.labels(service, criticality, reason));
      cells.shed[index] = counter;
    }
    counter.pending++;
  }

  /** An instance ejected (`true`, counted) or back from ejection (`false`), for `reason`. */
  recordEjection(
    service: string,
    instance: string,
    ejected: boolean,
    reason: EjectionReason = "consecutive-failures",
  ): void {
    const cells = this.serviceCells(service);
    let byInstance = cells.ejections.get(reason);
    if (byInstance === undefined) {
      byInstance = new Map();
      cells.ejections.set(reason, byInstance);
    }
    let ejection = byInstance.get(instance);
    if (ejection === undefined) {
      ejection = {
        count: this.metrics.ejections.labels(service, instance, reason),
        ejected: this.metrics.ejected.labels(service, instance, reason),
      };
      byInstance.set(instance, ejection);
    }
    if (ejected) ejection.count.inc();
    ejection.ejected.set(ejected ? 1 : 0);
  }

  /** A hedge was sent (`won` false), or a hedge's answer came first (`won` true). Not per request: hedges are few. */
  recordHedge(service: string, won: boolean): void {
    const cells = this.serviceCells(service);
    if (cells.hedges === null) {
      cells.hedges = {
        sent: this.metrics.hedges.labels(service),
        won: this.metrics.hedgesWon.labels(service),
      };
      cells.hedges.sent.inc(0);
      cells.hedges.won.inc(0);
    }
    (won ? cells.hedges.won : cells.hedges.sent).inc();
  }

  /** The service's balancer entered (`true`) or left (`false`) panic. */
  recordPanic(service: string, active: boolean): void {
    this.serviceCells(service).inPanic.set(active ? 1 : 0);
  }

  /**
   * Figures over the last `windowMs` (rounded up to whole seconds, the current one included):
   * with `instance`, the attempts to that instance; else with `release`, the attempts to that
   * release's instances; else the service's client requests (errors: every result but `ok` and
   * `client-error`). Attempt errors are every outcome but `success`. Throws `HS_BAD_REQUEST` for
   * a window that is not positive or longer than {@link MAX_WINDOW_MS}.
   */
  window(q: WindowQuery): WindowStats {
    if (!(q.windowMs > 0 && q.windowMs <= MAX_WINDOW_MS)) {
      throw new HomeostatError(
        "HS_BAD_REQUEST",
        `a traffic window must be between 1ms and ${MAX_WINDOW_MS}ms, got ${q.windowMs}`,
        { details: { windowMs: q.windowMs } },
      );
    }
    const seconds = Math.ceil(q.windowMs / 1000);
    const ring = this.ringFor(q);
    if (ring === undefined) {
      return { requests: 0, errors: 0, errorRate: null, p50Ms: null, p99Ms: null, rps: 0 };
    }
    const totals = ring.sum(this.now(), seconds);
    return {
      requests: totals.requests,
      errors: totals.errors,
      errorRate: totals.requests === 0 ? null : totals.errors / totals.requests,
      p50Ms: totals.p50Ms,
      p99Ms: totals.p99Ms,
      rps: totals.requests / seconds,
    };
  }

  /**
   * A service's client requests per second by criticality over the last `windowMs`: arrivals,
   * every request recorded whatever its result (shed ones included), so it reads as demand.
   * `per`: see {@link CriticalityRates.rates}.
   */
  criticalityRates(
    service: string,
    windowMs: number,
    per: "window" | "elapsed" = "window",
  ): Record<Criticality, number> {
    const cells = this.services.get(service);
    if (cells === undefined) return { critical: 0, default: 0, sheddable: 0 };
    return cells.criticality.rates(this.now(), windowMs / 1000, per);
  }

  /**
   * Add the window's latency histogram to `latencies` and return its counts (null: no such
   * series): the raw material of {@link mergedWindow}.
   */
  accumulateWindow(q: WindowQuery, latencies: Float64Array): { requests: number; errors: number } | null {
    const ring = this.ringFor(q);
    if (ring === undefined) return null;
    return ring.accumulate(this.now(), Math.ceil(q.windowMs / 1000), latencies);
  }

  /** The windows' seconds in [`fromSecond`, `toSecond`] (epoch seconds), for a mirror elsewhere. */
  exportWindows(fromSecond: number, toSecond: number): WindowsExport {
    const services: WindowsExport["services"] = {};
    for (const [name, cells] of this.services) {
      const releases: Record<string, RingSecond[]> = {};
      for (const [release, r] of cells.releases) {
        const seconds = r.window.exportSeconds(fromSecond, toSecond);
        if (seconds.length > 0) releases[release] = seconds;
      }
      const instances: Record<string, RingSecond[]> = {};
      for (const [instance, ring] of cells.instances) {
        const seconds = ring.exportSeconds(fromSecond, toSecond);
        if (seconds.length > 0) instances[instance] = seconds;
      }
      services[name] = {
        requests: cells.window.exportSeconds(fromSecond, toSecond),
        criticality: cells.criticality.exportSeconds(fromSecond, toSecond),
        releases,
        instances,
      };
    }
    return { services };
  }

  /**
   * Take over the windows of an export (a mirror of the data plane's statistics in the
   * controller). Only the windows change: the Prometheus counters stay the data plane's own.
   */
  importWindows(data: WindowsExport): void {
    for (const [name, w] of Object.entries(data.services)) {
      const cells = this.serviceCells(name);
      for (const second of w.requests) cells.window.importSecond(second);
      for (const second of w.criticality) cells.criticality.importSecond(second);
      for (const [release, seconds] of Object.entries(w.releases)) {
        const ring = this.releaseCells(cells, name, release).window;
        for (const second of seconds) ring.importSecond(second);
      }
      for (const [instance, seconds] of Object.entries(w.instances)) {
        const ring = this.instanceWindow(cells, instance);
        for (const second of seconds) ring.importSecond(second);
      }
    }
  }

  /** The Prometheus text exposition of this instance's registry. */
  metricsText(): Promise<string> {
    return this.registry.metrics();
  }

  private ringFor(q: WindowQuery): WindowRing | undefined {
    const service = this.services.get(q.service);
    if (service === undefined) return undefined;
    if (q.instance !== undefined) return service.instances.get(q.instance);
    if (q.release !== undefined) return service.releases.get(q.release)?.window;
    return service.window;
  }

  private serviceCells(name: string): ServiceCells {
    let cells = this.services.get(name);
    if (cells === undefined) {
      cells = {
        window: new WindowRing(),
        releases: new Map(),
        instances: new Map(),
        requests: new Array(CRITICALITY_COUNT * RESULTS.length),
        shed: new Array(CRITICALITY_COUNT * REASONS.length),
        ejections: new Map(),
        inPanic: this.metrics.inPanic.labels(name),
        hedges: null,
        criticality: new CriticalityRates(),
      };
      // An explicit 0, so that "not in panic" is a series and not an absence.
      cells.inPanic.set(0);
      this.services.set(name, cells);
    }
    return cells;
  }

  private releaseCells(service: ServiceCells, serviceName: string, release: string): ReleaseCells {
    let cells = service.releases.get(release);
    if (cells === undefined) {
      cells = {
        window: new WindowRing(),
        duration: this.metrics.duration.labels({ service: serviceName, release }),
        attempts: new Map(),
      };
      service.releases.set(release, cells);
    }
    return cells;
  }

  private instanceWindow(service: ServiceCells, instance: string): WindowRing {
    let ring = service.instances.get(instance);
    if (ring === undefined) {
      ring = new WindowRing();
      service.instances.set(instance, ring);
    }
    return ring;
  }
}

/**
 * The windows of several data-plane workers read as one: counts and rates add up, percentiles come
 * from the merged latency histograms (not an average of percentiles).
 */
export function mergedWindows(parts: () => readonly TrafficStats[]): DecisionWindows {
  const latencies = new Float64Array(LATENCY_BUCKET_COUNT);
  return {
    window(q) {
      const all = parts();
      if (all.length === 1) return all[0]!.window(q);
      // Validates the window the same way as one part would.
      if (all.length === 0) return new TrafficStats().window(q);
      all[0]!.window(q);
      latencies.fill(0);
      let requests = 0;
      let errors = 0;
      for (const part of all) {
        const counts = part.accumulateWindow(q, latencies);
        if (counts === null) continue;
        requests += counts.requests;
        errors += counts.errors;
      }
      const seconds = Math.ceil(q.windowMs / 1000);
      return {
        requests,
        errors,
        errorRate: requests === 0 ? null : errors / requests,
        p50Ms: quantileMs(latencies, requests, 0.5),
        p99Ms: quantileMs(latencies, requests, 0.99),
        rps: requests / seconds,
      };
    },
    criticalityRates(service, windowMs, per = "window") {
      const total: Record<Criticality, number> = { critical: 0, default: 0, sheddable: 0 };
      for (const part of parts()) {
        const rates = part.criticalityRates(service, windowMs, per);
        total.critical += rates.critical;
        total.default += rates.default;
        total.sheddable += rates.sheddable;
      }
      return total;
    },
  };
}

/** A new counter series, listed in `all` (what {@link flush} hands to prom-client). */
function pendingCount(all: PendingCount[], child: Counter.Internal): PendingCount {
  // Created at 0, so that the series is exposed from its first count on, as prom-client would.
  child.inc(0);
  const count: PendingCount = { child, pending: 0 };
  all.push(count);
  return count;
}

/** Hand the counts summed since the last read to prom-client. */
function flush(all: readonly PendingCount[]): void {
  for (const count of all) {
    if (count.pending === 0) continue;
    count.child.inc(count.pending);
    count.pending = 0;
  }
}

function indexOf<Name extends string>(names: readonly Name[]): Record<Name, number> {
  const index = {} as Record<Name, number>;
  names.forEach((name, position) => {
    index[name] = position;
  });
  return index;
}
