/**
 * The probe scheduler: runs every instance's probes on their schedules and feeds the results to
 * the health state machine.
 */

import { realScheduler, type Scheduler, type Timer } from "../lib/scheduler.ts";
import type { ProbeCheck, ProbeSet } from "../spec/model.ts";
import type { InstanceHealth, ProbeKind, ProbeResult } from "./health.ts";
import {
  applyProbeResult,
  type InstanceHealthState,
  initialHealthState,
  shouldRun,
} from "./healthMachine.ts";
import { ProbeConnections } from "./probeConnections.ts";
import { runProbe } from "./probeRunner.ts";
import type { ProbeOutcome, ProbeTarget } from "./probeTarget.ts";

/**
 * Runs one check against one instance. The real one ({@link runNetworkProbe}) ignores `instance`
 * and goes over the network, on `connections` (the instance run's kept-alive connections) when
 * given; the simulation answers from its in-memory instances and ignores them.
 */
export type ProbeFn = (
  instance: string,
  check: ProbeCheck,
  target: ProbeTarget,
  timeoutMs: number,
  connections?: ProbeConnections,
) => Promise<ProbeOutcome>;

/** The real probe: http, tcp or exec against the target. */
export const runNetworkProbe: ProbeFn = (_instance, check, target, timeoutMs, connections) =>
  runProbe(check, target, timeoutMs, connections);

export interface ProberOptions {
  /** Epoch-ms clock for result and transition timestamps (default: the scheduler's, else `Date.now`). */
  now?: () => number;
  /** Where the probe timers run (default: real timers). */
  scheduler?: Scheduler;
  /** What runs a check (default: {@link runNetworkProbe}). */
  probe?: ProbeFn;
  /** Called when an instance's `health.state` changes (not for the initial state). */
  onChange: (instance: string, health: InstanceHealth, previous: InstanceHealth) => void;
  /**
   * Called with every probe result that was applied. Results the state no longer accepts (of
   * an unwatched instance, or arriving after the instance became unhealthy) are dropped.
   */
  onResult?: (instance: string, result: ProbeResult) => void;
}

/** One watched instance. A new object per `watch`, so a stale run can tell it has been replaced. */
interface Watch {
  instance: string;
  target: ProbeTarget;
  probes: ProbeSet;
  startedAt: number;
  state: InstanceHealthState;
  timers: Map<ProbeKind, Timer>;
  /** Connections kept between this run's probes; closed on unwatch, so a new watch never reuses them. */
  connections: ProbeConnections;
}

const KINDS: readonly ProbeKind[] = ["startup", "readiness", "liveness"];

/**
 * Readiness and liveness runs after the first go out on a shared, epoch-aligned grid: all runs due
 * at the same grid point share one timer and go out together. A wake-up of the controller costs
 * more CPU than the probe it wakes up for (issue 15: 60 instances probed twice a second woke it
 * 120 times a second, each probe on a timer of its own). The step of a chain is the largest
 * divisor of its interval that is at most a quarter of it and at most MAX_BATCH_MS (250 ms for a
 * 1 s interval, 125 ms for 500 ms, 37 ms for 333 ms, none for 7 ms), so a chain on the grid stays
 * on it with its runs exactly `intervalMs` apart, as before. Joining the grid costs a chain one
 * gap, between its first and second run, longer by less than a step: never a shorter one (a probe
 * never runs more often than its interval) and never a later first run (readiness right after
 * startup, the initial delay). Startup chains, short-lived, keep a timer of their own.
 */
export const MAX_BATCH_MS = 250;

const stepCache = new Map<number, number>();

/** The grid step of a chain with this interval (1 when nothing larger divides it). */
export function batchStepMs(intervalMs: number): number {
  let step = stepCache.get(intervalMs);
  if (step === undefined) {
    step = 1;
    if (Number.isInteger(intervalMs)) {
      for (let d = Math.min(MAX_BATCH_MS, Math.floor(intervalMs / 4)); d > 1; d--) {
        if (intervalMs % d === 0) {
          step = d;
          break;
        }
      }
    }
    if (stepCache.size < 1000) stepCache.set(intervalMs, step);
  }
  return step;
}

/** A run waiting at a grid point; cancelling it leaves the point's timer to the others. */
class BatchedRun implements Timer {
  readonly watch: Watch;
  readonly kind: ProbeKind;
  /** The grid point (epoch ms): the run's nominal start, from which the next one is due. */
  readonly at: number;
  cancelled = false;
  constructor(watch: Watch, kind: ProbeKind, at: number) {
    this.watch = watch;
    this.kind = kind;
    this.at = at;
  }
  cancel(): void {
    this.cancelled = true;
  }
}

/**
 * Probes run so far, by kind and outcome: every completed run counts, whether or not its result
 * was still wanted. Plain integers, read at scrape time (`homeostat_controller_probes_total`), so
 * counting costs a probe nothing measurable.
 */
export type ProbeCounts = Record<ProbeKind, { ok: number; failed: number }>;

/**
 * Runs probes for watched instances. Each probe kind of each instance is a chain of runs: the
 * first run comes `initialDelayMs` after the instance started, each next run `intervalMs` after
 * the previous one *started*, or as soon as it finishes if it took longer (a probe never overlaps
 * itself). Readiness and liveness runs after the first are batched on a shared grid (see
 * MAX_BATCH_MS): once per chain, the gap between its first and second run is longer by less than a
 * grid step (≤ a quarter interval, ≤ 250 ms). Startup runs until it passes; readiness and liveness
 * start only then; nothing runs once an instance is `unhealthy`. Timers are unref'd: a Prober
 * never keeps the process alive by itself. HTTP checks of one watch keep their connections
 * between runs (probeConnections.ts); a new watch of the instance starts on new ones.
 *
 * Detection-time bound: a hung instance is marked `unhealthy` within about
 * `liveness.intervalMs × liveness.failureThreshold + liveness.timeoutMs` of its last good
 * liveness probe (the next probe starts at most one interval after the good one, each failing
 * probe takes `timeoutMs`, the failures are an interval apart, and the last one fails
 * `timeoutMs` after it started). If `timeoutMs` exceeds `intervalMs` the runs go back to back
 * and the bound becomes `intervalMs + failureThreshold × timeoutMs`. Add event-loop latency, and one
 * grid step if the last good liveness probe was the chain's first run.
 */
export class Prober {
  readonly #now: () => number;
  readonly #onChange: ProberOptions["onChange"];
  readonly #onResult: ProberOptions["onResult"];
  readonly #watches = new Map<string, Watch>();
  /** Grid steps with runs waiting (epoch ms of the step → its runs and timer). */
  readonly #batches = new Map<number, { runs: BatchedRun[]; timer: Timer }>();
  readonly #scheduler: Scheduler;
  readonly #probe: ProbeFn;
  readonly #counts: ProbeCounts = {
    startup: { ok: 0, failed: 0 },
    readiness: { ok: 0, failed: 0 },
    liveness: { ok: 0, failed: 0 },
  };

  constructor(opts: ProberOptions) {
    this.#scheduler = opts.scheduler ?? realScheduler;
    this.#probe = opts.probe ?? runNetworkProbe;
    this.#now = opts.now ?? (opts.scheduler ? () => this.#scheduler.now() : Date.now);
    this.#onChange = opts.onChange;
    this.#onResult = opts.onResult;
  }

  /**
   * Start probing `instance`, which started running at `startedAt` (epoch ms). Watching an
   * instance that is already watched replaces the old watch (its in-flight results are dropped).
   * The initial health is readable at once through `health()`; `onChange` fires only for later
   * transitions.
   */
  watch(instance: string, target: ProbeTarget, probes: ProbeSet, startedAt: number): void {
    this.unwatch(instance);
    const watch: Watch = {
      instance,
      target,
      probes,
      startedAt,
      state: initialHealthState(startedAt, probes),
      timers: new Map(),
      connections: new ProbeConnections(),
    };
    this.#watches.set(instance, watch);
    this.#scheduleActive(watch);
  }

  /** Stop probing `instance`: cancels its timers; results of runs in flight are ignored. */
  unwatch(instance: string): void {
    const watch = this.#watches.get(instance);
    if (watch === undefined) return;
    this.#watches.delete(instance);
    for (const timer of watch.timers.values()) timer.cancel();
    watch.timers.clear();
    watch.connections.close();
  }

  /** Current health of a watched instance, or undefined if it is not watched. */
  health(instance: string): InstanceHealth | undefined {
    return this.#watches.get(instance)?.state.health;
  }

  /** Probes run since this Prober was made (a copy). */
  counts(): ProbeCounts {
    const c = this.#counts;
    return { startup: { ...c.startup }, readiness: { ...c.readiness }, liveness: { ...c.liveness } };
  }

  /** Unwatch everything. The Prober stays usable. */
  stop(): void {
    for (const instance of [...this.#watches.keys()]) this.unwatch(instance);
    for (const batch of this.#batches.values()) batch.timer.cancel();
    this.#batches.clear();
  }

  /** Start the chain of every probe that exists, is active in the current state, and is idle. */
  #scheduleActive(watch: Watch): void {
    for (const kind of KINDS) {
      const spec = watch.probes[kind];
      if (spec === undefined || watch.timers.has(kind) || !shouldRun(kind, watch.state)) continue;
      const firstRunAt = watch.startedAt + spec.initialDelayMs;
      this.#scheduleExactly(watch, kind, Math.max(0, firstRunAt - this.#now()));
    }
  }

  /** A timer of its own: for a first run, which must not start before its initial delay. */
  #scheduleExactly(watch: Watch, kind: ProbeKind, delayMs: number): void {
    watch.timers.set(
      kind,
      this.#scheduler.setTimer(delayMs, () => void this.#run(watch, kind)),
    );
  }

  /**
   * The next run of a chain whose last run started at `startedAt` (its grid point, if it ran from
   * one): at the first grid point at or after it is due (see MAX_BATCH_MS); at once if it is due
   * already (a run that took longer than the interval).
   */
  #scheduleNext(watch: Watch, kind: ProbeKind, intervalMs: number, startedAt: number): void {
    const now = this.#now();
    const due = startedAt + intervalMs;
    if (kind === "startup" || due <= now) {
      this.#scheduleExactly(watch, kind, Math.max(0, due - now));
      return;
    }
    const grid = batchStepMs(intervalMs);
    const point = Math.ceil(due / grid) * grid;
    let batch = this.#batches.get(point);
    if (batch === undefined) {
      const runs: BatchedRun[] = [];
      const timer = this.#scheduler.setTimer(point - now, () => this.#runBatch(point, runs));
      batch = { runs, timer };
      this.#batches.set(point, batch);
    }
    const run = new BatchedRun(watch, kind, point);
    batch.runs.push(run);
    watch.timers.set(kind, run);
  }

  #runBatch(point: number, runs: BatchedRun[]): void {
    if (this.#batches.get(point)?.runs === runs) this.#batches.delete(point);
    for (const run of runs) if (!run.cancelled) void this.#run(run.watch, run.kind, run.at);
  }

  /** One run of a chain; `point`: the grid point it ran from (its nominal start), if any. */
  async #run(watch: Watch, kind: ProbeKind, point?: number): Promise<void> {
    const spec = watch.probes[kind];
    // The timer stays in the map while the run is in flight: it marks this chain as busy, so
    // `#scheduleActive` cannot start a second, overlapping chain for the same kind.
    if (spec === undefined || !this.#isCurrent(watch) || !shouldRun(kind, watch.state)) {
      watch.timers.delete(kind);
      return;
    }
    const at = this.#now();
    // A timer may fire a millisecond early by the wall clock (libuv counts in whole ms on its own
    // clock): a probe never runs before its initial delay, so wait out what is left.
    const due = watch.startedAt + spec.initialDelayMs;
    if (at < due) {
      this.#scheduleExactly(watch, kind, due - at);
      return;
    }
    const outcome = await this.#probe(
      watch.instance,
      spec.check,
      watch.target,
      spec.timeoutMs,
      watch.connections,
    );
    if (outcome.ok) this.#counts[kind].ok++;
    else this.#counts[kind].failed++;
    if (!this.#isCurrent(watch)) return;
    // Another probe changed the state while this one ran (e.g. liveness made it unhealthy):
    // the machine would ignore this result, so it is not reported either.
    if (!shouldRun(kind, watch.state)) {
      watch.timers.delete(kind);
      return;
    }

    const result: ProbeResult = { kind, ok: outcome.ok, at, durationMs: outcome.durationMs };
    if (outcome.detail !== undefined) result.detail = outcome.detail;
    const previous = watch.state;
    watch.state = applyProbeResult(previous, result, watch.probes);

    watch.timers.delete(kind);
    if (shouldRun(kind, watch.state)) this.#scheduleNext(watch, kind, spec.intervalMs, point ?? at);
    // Startup passing switches readiness and liveness on.
    if (watch.state.startupPassed !== previous.startupPassed) this.#scheduleActive(watch);

    this.#notify(() => this.#onResult?.(watch.instance, result));
    // A listener may have unwatched the instance: then its transition is no longer news.
    if (watch.state.health.state !== previous.health.state && this.#isCurrent(watch)) {
      const health = watch.state.health;
      this.#notify(() => this.#onChange(watch.instance, health, previous.health));
    }
  }

  #isCurrent(watch: Watch): boolean {
    return this.#watches.get(watch.instance) === watch;
  }

  /**
   * Call a listener without letting its exception break the probe chain or vanish: it is
   * rethrown on its own, like an exception from any timer callback.
   */
  #notify(listener: () => void): void {
    try {
      listener();
    } catch (error) {
      queueMicrotask(() => {
        throw error;
      });
    }
  }
}
