/**
 * Event-loop delay of a Node contender, on request: SIGUSR2 prints one JSON line with the delay
 * percentiles since the previous SIGUSR2 (then starts over). A tail in the proxy's own loop shows
 * up directly in its clients' latency; this tells how much of a latency tail is that.
 */

import { monitorEventLoopDelay } from "node:perf_hooks";

export interface LoopDelay {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export function reportLoopDelayOnSignal(): void {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  process.on("SIGUSR2", () => {
    const loopDelay: LoopDelay = {
      p50Ms: histogram.percentile(50) / 1e6,
      p99Ms: histogram.percentile(99) / 1e6,
      maxMs: histogram.max / 1e6,
    };
    process.stdout.write(`${JSON.stringify({ loopDelay })}\n`);
    histogram.reset();
  });
}
