import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** Upstream latencies are milliseconds to seconds: buckets from 0.5 ms to 60 s. */
export const DURATION_BUCKETS_SECONDS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

/** The data plane's Prometheus metrics, registered in one registry. */
export interface ProxyMetrics {
  attempts: Counter<"service" | "release" | "instance" | "outcome">;
  requests: Counter<"service" | "criticality" | "result">;
  duration: Histogram<"service" | "release">;
  shed: Counter<"service" | "criticality" | "reason">;
  ejections: Counter<"service" | "instance">;
  ejected: Gauge<"service" | "instance">;
  inPanic: Gauge<"service">;
}

/** Creates and registers the metrics in `registry` (and nowhere else: never the global registry). */
export function createProxyMetrics(registry: Registry): ProxyMetrics {
  const registers = [registry];
  return {
    attempts: new Counter({
      name: "homeostat_proxy_attempts_total",
      help: "Upstream attempts by instance and outcome (success, http-5xx, connect-error, timeout, reset).",
      labelNames: ["service", "release", "instance", "outcome"],
      registers,
    }),
    requests: new Counter({
      name: "homeostat_proxy_requests_total",
      help: "Client requests answered by the proxy, by criticality and result.",
      labelNames: ["service", "criticality", "result"],
      registers,
    }),
    duration: new Histogram({
      name: "homeostat_proxy_request_duration_seconds",
      help: "Duration of upstream requests (one observation per attempt), by release.",
      labelNames: ["service", "release"],
      buckets: DURATION_BUCKETS_SECONDS,
      registers,
    }),
    shed: new Counter({
      name: "homeostat_proxy_shed_total",
      help: "Requests shed by admission control, by criticality and reason.",
      labelNames: ["service", "criticality", "reason"],
      registers,
    }),
    ejections: new Counter({
      name: "homeostat_proxy_ejections_total",
      help: "Times an instance was ejected by passive outlier detection.",
      labelNames: ["service", "instance"],
      registers,
    }),
    ejected: new Gauge({
      name: "homeostat_proxy_ejected",
      help: "1 while an instance is ejected by outlier detection, else 0.",
      labelNames: ["service", "instance"],
      registers,
    }),
    inPanic: new Gauge({
      name: "homeostat_proxy_in_panic",
      help: "1 while the service's balancer is in panic (too few healthy instances), else 0.",
      labelNames: ["service"],
      registers,
    }),
  };
}
