/**
 * How many of a busy service's answered requests HAProxy logs. Every log line costs HAProxy its
 * formatting and the data plane its reading (measured in docs/benchmarks.md: a line per request
 * took 14 % of HAProxy's throughput on one CPU, and the data plane's reading 5 % more), while a
 * few thousand lines a second already give percentiles and error rates as fine as the analysis
 * reads them. So above a budget of lines per second the share logged steps down, and each logged
 * line counts for the requests it stands for (see logReceiver.ts). Requests HAProxy answers
 * itself (shed, no server) and attempts without an answer are always logged. Pure.
 */

import { LOG_ALL } from "./haproxyConfig.ts";

/** Shares of answered requests logged, in 1/10000ths: all, then 1 in 2, 4, 10, 20, 40, 100. */
export const LOG_SHARES: readonly number[] = [LOG_ALL, 5_000, 2_500, 1_000, 500, 250, 100];

/** Log lines per second per service beyond which the share logged steps down. */
export const LOG_LINES_BUDGET = 1_000;

/**
 * The share to log next, from the current one and the service's request rate. Down (fewer lines)
 * as soon as the budget is exceeded; back up only when the larger share stays within half of it,
 * so a rate near the edge does not flap.
 */
export function nextLogShare(current: number, requestsPerSecond: number): number {
  const linesAt = (share: number) => (requestsPerSecond * share) / LOG_ALL;
  const smallest = LOG_SHARES[LOG_SHARES.length - 1]!;
  if (linesAt(current) > LOG_LINES_BUDGET) {
    return LOG_SHARES.find((share) => linesAt(share) <= LOG_LINES_BUDGET) ?? smallest;
  }
  const relaxed = LOG_SHARES.find((share) => linesAt(share) <= LOG_LINES_BUDGET / 2) ?? smallest;
  return Math.max(relaxed, current);
}
