/** Traffic statistics: Prometheus metrics and rolling windows for decisions. */
export { LATENCY_BUCKET_COUNT, MAX_LATENCY_MS, MIN_LATENCY_MS } from "./latencyBuckets.ts";
export { DURATION_BUCKETS_SECONDS } from "./proxyMetrics.ts";
export {
  type AttemptRecord,
  blankAttemptRecord,
  blankRequestRecord,
  type DecisionWindows,
  type EjectionReason,
  MAX_WINDOW_MS,
  mergedWindows,
  type RequestRecord,
  type RequestResult,
  TrafficStats,
  type TrafficStatsOptions,
  type WindowQuery,
  type WindowStats,
  type WindowsExport,
} from "./trafficStats.ts";
export { RING_SECONDS, type RingSecond } from "./windowRing.ts";
