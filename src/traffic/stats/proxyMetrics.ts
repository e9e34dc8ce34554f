import { Counter, Gauge, type Metric, type Registry } from "prom-client";

/** Upstream latencies are milliseconds to seconds: buckets from 0.5 ms to 60 s. */
export const DURATION_BUCKETS_SECONDS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

/** The data plane's Prometheus metrics, registered in one registry. */
export interface ProxyMetrics {
  attempts: Counter<"service" | "release" | "instance" | "outcome">;
  requests: Counter<"service" | "criticality" | "result">;
  duration: DurationHistogram;
  shed: Counter<"service" | "criticality" | "reason">;
  ejections: Counter<"service" | "instance" | "reason">;
  ejected: Gauge<"service" | "instance" | "reason">;
  inPanic: Gauge<"service">;
  hedges: Counter<"service">;
  hedgesWon: Counter<"service">;
}

/**
 * Called when the registry is read, before the counters are: the place to hand prom-client the
 * counts kept on the request path (see TrafficStats).
 */
export interface MetricsCollectors {
  attempts: () => void;
  requests: () => void;
  shed: () => void;
}

/**
 * Creates and registers the metrics in `registry` (and nowhere else: never the global registry).
 * `collect` runs before the matching counter is read.
 */
export function createProxyMetrics(registry: Registry, collect?: MetricsCollectors): ProxyMetrics {
  const registers = [registry];
  // Created in exposition order: a registry lists its metrics in the order they were registered.
  return {
    attempts: new Counter({
      name: "homeostat_proxy_attempts_total",
      help: "Upstream attempts by instance and outcome (success, http-5xx, connect-error, timeout, reset).",
      labelNames: ["service", "release", "instance", "outcome"],
      registers,
      ...(collect === undefined ? {} : { collect: collect.attempts }),
    }),
    requests: new Counter({
      name: "homeostat_proxy_requests_total",
      help: "Client requests answered by the proxy, by criticality and result.",
      labelNames: ["service", "criticality", "result"],
      registers,
      ...(collect === undefined ? {} : { collect: collect.requests }),
    }),
    duration: registered(
      registry,
      new DurationHistogram(
        "homeostat_proxy_request_duration_seconds",
        "Duration of upstream requests (one observation per attempt), by release.",
        DURATION_BUCKETS_SECONDS,
      ),
    ),
    shed: new Counter({
      name: "homeostat_proxy_shed_total",
      help: "Requests shed by admission control or the failover shedding gate (failover-shed), by criticality and reason.",
      labelNames: ["service", "criticality", "reason"],
      registers,
      ...(collect === undefined ? {} : { collect: collect.shed }),
    }),
    ejections: new Counter({
      name: "homeostat_proxy_ejections_total",
      help: "Times an instance was taken out of the balancer, by reason: consecutive-failures (outlier detection) or stalled (answered nothing while its peers did).",
      labelNames: ["service", "instance", "reason"],
      registers,
    }),
    ejected: new Gauge({
      name: "homeostat_proxy_ejected",
      help: "1 while an instance is out of the balancer for the reason (consecutive-failures, stalled), else 0.",
      labelNames: ["service", "instance", "reason"],
      registers,
    }),
    inPanic: new Gauge({
      name: "homeostat_proxy_in_panic",
      help: "1 while the service's balancer is in panic (too few healthy instances), else 0.",
      labelNames: ["service"],
      registers,
    }),
    hedges: new Counter({
      name: "homeostat_proxy_hedges_total",
      help: "Hedges sent: second attempts of slow idempotent requests, to another instance.",
      labelNames: ["service"],
      registers,
    }),
    hedgesWon: new Counter({
      name: "homeostat_proxy_hedges_won_total",
      help: "Hedges whose answer came first (the original attempt was cancelled).",
      labelNames: ["service"],
      registers,
    }),
  };
}

function registered(registry: Registry, histogram: DurationHistogram): DurationHistogram {
  registry.registerMetric(histogram as unknown as Metric<string>);
  return histogram;
}

/** One label set of a {@link DurationHistogram}: observing is a bucket search and three additions. */
export class HistogramSeries {
  readonly labels: Readonly<Record<string, string>>;
  /** Observations per bucket (not cumulative); the last slot is above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  private readonly bounds: readonly number[];

  constructor(labels: Readonly<Record<string, string>>, bounds: readonly number[]) {
    this.labels = labels;
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let bucket = 0;
    while (bucket < bounds.length && value > bounds[bucket]!) bucket++;
    this.counts[bucket]!++;
    this.sum += value;
    this.count++;
  }
}

/**
 * A Prometheus histogram with the exposition of prom-client's (`_bucket` with `le`, `_sum`,
 * `_count`), registered in a prom-client registry, but observed without prom-client's per-call
 * label validation, label hashing and allocation: it is on the request path, once per attempt.
 */
export class DurationHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = "histogram";
  readonly aggregator = "sum";
  private readonly bounds: readonly number[];
  private readonly series: HistogramSeries[] = [];

  constructor(name: string, help: string, bounds: readonly number[]) {
    this.name = name;
    this.help = help;
    this.bounds = bounds;
  }

  /** A new series for `labels` (the caller keeps it: one per label set). */
  labels(labels: Readonly<Record<string, string>>): HistogramSeries {
    const series = new HistogramSeries(labels, this.bounds);
    this.series.push(series);
    return series;
  }

  /** What the registry formats (prom-client's metric shape). */
  get(): {
    name: string;
    help: string;
    type: string;
    aggregator: string;
    values: { labels: Record<string, string | number>; value: number; metricName: string }[];
  } {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    const bucketName = `${this.name}_bucket`;
    for (const series of this.series) {
      let cumulative = 0;
      this.bounds.forEach((bound, i) => {
        cumulative += series.counts[i]!;
        values.push({ labels: { le: bound, ...series.labels }, value: cumulative, metricName: bucketName });
      });
      values.push({ labels: { le: "+Inf", ...series.labels }, value: series.count, metricName: bucketName });
      values.push({ labels: { ...series.labels }, value: series.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...series.labels }, value: series.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
