/**
 * One measured run against one contender: a warm-up with the same settings, then the run, with
 * the CPU the contender and the upstream used during it (read from /proc, so nobody is woken).
 */

import type { ProcessLedger } from "../foundation/processes.ts";
import { clockTicksPerSecond, cpuTicks } from "../foundation/procSample.ts";
import type { ContenderName, Running, UpstreamKind } from "./contenders.ts";
import { startLoadgen } from "./loadgenProcess.ts";
import type { OpenLoopResult } from "./openLoop.ts";
import type { ProxyBenchOptions } from "./options.ts";
import { runWrk, type WrkResult } from "./wrk.ts";

const HZ = clockTicksPerSecond();

/** CPU used during a run, in % of one core (100 = one core busy the whole time). */
export interface CpuUse {
  contender: number | null;
  upstream: number;
}

export interface RunKey {
  upstream: UpstreamKind;
  contender: ContenderName;
  /** 0-based repetition. */
  repeat: number;
  /** Position in this repetition's order (0 = first). */
  position: number;
}

export interface ThroughputRun extends RunKey {
  wrk: WrkResult;
  cpu: CpuUse;
}

export interface LatencyRun extends RunKey {
  ratePerSecond: number;
  result: Omit<OpenLoopResult, "records">;
  cpu: CpuUse;
}

class CpuMeter {
  readonly #pids: (number | null)[];
  readonly #start: number[];
  readonly #startedAt = performance.now();

  constructor(pids: (number | null)[]) {
    this.#pids = pids;
    this.#start = pids.map((pid) => (pid === null ? 0 : cpuTicks(pid)));
  }

  /** % of one core per pid since construction (null for a null pid). */
  read(): (number | null)[] {
    const seconds = (performance.now() - this.#startedAt) / 1000;
    return this.#pids.map((pid, k) =>
      pid === null ? null : ((cpuTicks(pid) - this.#start[k]!) / HZ / seconds) * 100,
    );
  }
}

function cpuOf(meter: CpuMeter): CpuUse {
  const [contender, upstream] = meter.read();
  return { contender: contender ?? null, upstream: upstream ?? 0 };
}

export async function throughputRun(
  key: RunKey,
  contender: Running,
  upstream: Running,
  options: ProxyBenchOptions,
  ledger: ProcessLedger,
): Promise<ThroughputRun> {
  const url = `http://127.0.0.1:${contender.port}/`;
  const settings = { threads: options.wrkThreads, connections: options.connections };
  await runWrk({ ...settings, durationS: options.warmupS }, url, ledger);
  const meter = new CpuMeter([contender.child?.pid ?? null, upstream.child!.pid]);
  const wrk = await runWrk({ ...settings, durationS: options.durationS }, url, ledger);
  return { ...key, wrk, cpu: cpuOf(meter) };
}

export async function latencyRun(
  key: RunKey,
  ratePerSecond: number,
  contender: Running,
  upstream: Running,
  options: ProxyBenchOptions,
  scratch: string,
  ledger: ProcessLedger,
): Promise<LatencyRun> {
  const run = startLoadgen(
    {
      origin: `http://127.0.0.1:${contender.port}`,
      path: "/",
      ratePerSecond,
      warmupMs: options.warmupS * 1000,
      durationMs: options.durationS * 1000,
      connections: options.openLoopConnections,
      timeoutMs: 10_000,
      records: false,
      keepHeaders: [],
    },
    scratch,
    ledger,
  );
  // The CPU window opens when the measured stretch starts, after the generator's warm-up.
  const t0 = await run.started;
  const warmupEnds = t0 + options.warmupS * 1000 - (performance.timeOrigin + performance.now());
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, warmupEnds)));
  const meter = new CpuMeter([contender.child?.pid ?? null, upstream.child!.pid]);
  const { records: _records, ...result } = await run.result;
  return { ...key, ratePerSecond, result, cpu: cpuOf(meter) };
}
