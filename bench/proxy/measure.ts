/**
 * One measured run against one contender: a warm-up with the same settings, then the run, with
 * the CPU the contender and the upstream used during it (read from /proc, so nobody is woken).
 */

import { readFileSync } from "node:fs";
import { type LoadgenResult, startLoadgen } from "../common/loadgen/native.ts";
import type { ProcessLedger } from "../foundation/processes.ts";
import { clockTicksPerSecond } from "../foundation/procSample.ts";
import type { ContenderName, Running, UpstreamKind } from "./contenders.ts";
import type { LoopDelay } from "./loopDelay.ts";
import type { ProxyBenchOptions } from "./options.ts";
import { OthersMeter, type QuietReading, waitQuiet } from "./quiet.ts";
import { runWrk, type WrkResult } from "./wrk.ts";

const HZ = clockTicksPerSecond();

/** CPU used during a run, in % of one core (100 = one core busy the whole time). */
export interface CpuUse {
  contender: number | null;
  /** The contender's share of it in the kernel (stime), same unit. */
  contenderSystem: number | null;
  upstream: number;
}

/** [utime, stime] of `pid` in clock ticks (fields 14 and 15 of /proc/PID/stat). */
function userSystemTicks(pid: number): [number, number] {
  const text = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return [Number(fields[11]), Number(fields[12])];
}

export interface RunKey {
  upstream: UpstreamKind;
  contender: ContenderName;
  /** 0-based repetition. */
  repeat: number;
  /** Position in this repetition's order (0 = first). */
  position: number;
}

interface Measured {
  /** How busy the machine was just before the run, with the bench idle. */
  before: QuietReading;
  /** CPU used by processes outside the bench during the run, % of one core. */
  othersPercent: number;
  /** The contender's own event-loop delay during the run (Node contenders only). */
  loopDelay: LoopDelay | null;
  /** Homeostat: the data plane's reports to the bench's fake controller during the run. */
  feed: FeedWindow | null;
}

export interface FeedWindow {
  reports: number;
  /** Longest wait between two reports (they are due every 250 ms). */
  maxGapMs: number;
}

/** Since the previous call: the reports the contender's data plane sent (null: not fed). */
function feedWindowOf(contender: Running): FeedWindow | null {
  if (contender.feed === null) return null;
  contender.feed.assertOpen();
  return contender.feed.reports.take(performance.now());
}

/** Since the previous call: the contender's event-loop delay (null if it does not report one). */
async function loopDelayOf(contender: Running): Promise<LoopDelay | null> {
  const child = contender.child;
  if (!contender.reportsLoopDelay || child === null) return null;
  const line = child.nextLine((l) => l.startsWith('{"loopDelay"'), 2_000);
  child.child.kill("SIGUSR2");
  const text = await line;
  return text === null ? null : (JSON.parse(text) as { loopDelay: LoopDelay }).loopDelay;
}

export interface ThroughputRun extends RunKey, Measured {
  wrk: WrkResult;
  cpu: CpuUse;
}

export interface LatencyRun extends RunKey, Measured {
  ratePerSecond: number;
  /** The generator's summary: latency from the due time, its lateness, `valid`. */
  result: Omit<LoadgenResult, "records">;
  cpu: CpuUse;
}

/** The bench's processes alive now (contenders, upstream, load generator). */
function livePids(ledger: ProcessLedger): number[] {
  return ledger.running().map((p) => p.pid);
}

/** [utime, stime] summed over `pids` (a process gone since is read as its last known ticks). */
function groupTicks(pids: readonly number[], last: Map<number, [number, number]>): [number, number] {
  let user = 0;
  let system = 0;
  for (const pid of pids) {
    let ticks: [number, number];
    try {
      ticks = userSystemTicks(pid);
      last.set(pid, ticks);
    } catch {
      ticks = last.get(pid) ?? [0, 0];
    }
    user += ticks[0];
    system += ticks[1];
  }
  return [user, system];
}

/** CPU of groups of processes (one group per contender: a proxy may be several processes). */
class CpuMeter {
  readonly #groups: (number[] | null)[];
  readonly #last = new Map<number, [number, number]>();
  readonly #start: [number, number][];
  readonly #startedAt = performance.now();

  constructor(groups: (number[] | null)[]) {
    this.#groups = groups;
    this.#start = groups.map((pids) => (pids === null ? [0, 0] : groupTicks(pids, this.#last)));
  }

  /** [user + system, system] in % of one core per group since construction (null for a null group). */
  read(): ([number, number] | null)[] {
    const seconds = (performance.now() - this.#startedAt) / 1000;
    const percent = (ticks: number) => (ticks / HZ / seconds) * 100;
    return this.#groups.map((pids, k) => {
      if (pids === null) return null;
      const [user, system] = groupTicks(pids, this.#last);
      const [user0, system0] = this.#start[k]!;
      return [percent(user - user0 + system - system0), percent(system - system0)];
    });
  }
}

/** The processes whose CPU is `contender`'s (null: none of its own, e.g. direct). */
function contenderPids(contender: Running): number[] | null {
  if (contender.cpuPids) return contender.cpuPids();
  return contender.child === null ? null : [contender.child.pid];
}

function cpuOf(meter: CpuMeter): CpuUse {
  const [contender, upstream] = meter.read();
  return {
    contender: contender?.[0] ?? null,
    contenderSystem: contender?.[1] ?? null,
    upstream: upstream?.[0] ?? 0,
  };
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
  const before = await waitQuiet();
  const cpus = options.placement.others;
  await runWrk({ ...settings, durationS: options.warmupS }, url, ledger, cpus);
  await loopDelayOf(contender);
  feedWindowOf(contender);
  const meter = new CpuMeter([contenderPids(contender), [upstream.child!.pid]]);
  const others = new OthersMeter(livePids(ledger));
  const wrk = await runWrk({ ...settings, durationS: options.durationS }, url, ledger, cpus);
  const cpu = cpuOf(meter);
  const othersPercent = others.read(HZ);
  const feed = feedWindowOf(contender);
  return { ...key, before, othersPercent, loopDelay: await loopDelayOf(contender), feed, wrk, cpu };
}

export async function latencyRun(
  key: RunKey,
  ratePerSecond: number,
  contender: Running,
  upstream: Running,
  options: ProxyBenchOptions,
  scratch: string,
  ledger: ProcessLedger,
  openloop: string,
): Promise<LatencyRun> {
  const before = await waitQuiet();
  const run = startLoadgen(
    openloop,
    {
      port: contender.port,
      path: "/",
      ratePerSecond,
      warmupMs: options.latencyWarmupS * 1000,
      durationMs: options.durationS * 1000,
      connections: options.openLoopConnections,
      timeoutMs: 10_000,
    },
    scratch,
    ledger,
    options.placement.others,
  );
  // The CPU window opens when the measured stretch starts, after the generator's warm-up.
  const t0 = await run.started;
  const warmupEnds = t0 + options.latencyWarmupS * 1000 - (performance.timeOrigin + performance.now());
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, warmupEnds)));
  await loopDelayOf(contender);
  feedWindowOf(contender);
  const meter = new CpuMeter([contenderPids(contender), [upstream.child!.pid]]);
  const others = new OthersMeter(livePids(ledger));
  const { records: _records, ...result } = await run.result;
  const cpu = cpuOf(meter);
  const othersPercent = others.read(HZ);
  const feed = feedWindowOf(contender);
  return {
    ...key,
    before,
    othersPercent,
    loopDelay: await loopDelayOf(contender),
    feed,
    ratePerSecond,
    result,
    cpu,
  };
}
