/** Traffic statistics: Prometheus metrics and rolling windows for decisions. */
export { LATENCY_BUCKET_COUNT, MAX_LATENCY_MS, MIN_LATENCY_MS } from "./latencyBuckets.ts";
export { DURATION_BUCKETS_SECONDS } from "./proxyMetrics.ts";
export {
  type AttemptRecord,
  type EjectionReason,
  MAX_WINDOW_MS,
  type RequestRecord,
  type RequestResult,
  TrafficStats,
  type TrafficStatsOptions,
  type WindowQuery,
  type WindowStats,
} from "./trafficStats.ts";
export { RING_SECONDS } from "./windowRing.ts";
