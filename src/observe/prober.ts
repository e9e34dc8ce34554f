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
import { runProbe } from "./probeRunner.ts";
import type { ProbeOutcome, ProbeTarget } from "./probeTarget.ts";

/**
 * Runs one check against one instance. The real one ({@link runNetworkProbe}) ignores `instance`
 * and goes over the network; the simulation answers from its in-memory instances.
 */
export type ProbeFn = (
  instance: string,
  check: ProbeCheck,
  target: ProbeTarget,
  timeoutMs: number,
) => Promise<ProbeOutcome>;

/** The real probe: http, tcp or exec against the target. */
export const runNetworkProbe: ProbeFn = (_instance, check, target, timeoutMs) =>
  runProbe(check, target, timeoutMs);

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
}

const KINDS: readonly ProbeKind[] = ["startup", "readiness", "liveness"];

/**
 * Runs probes for watched instances. Each probe kind of each instance has its own `setTimeout`
 * chain: the first run comes `initialDelayMs` after the instance started, each next run
 * `intervalMs` after the previous one *started*, or as soon as it finishes if it took longer
 * (a probe never overlaps itself). Startup runs until it passes; readiness and liveness start
 * only then; nothing runs once an instance is `unhealthy`. Timers are unref'd: a Prober never
 * keeps the process alive by itself.
 *
 * Detection-time bound: a hung instance is marked `unhealthy` within about
 * `liveness.intervalMs × liveness.failureThreshold + liveness.timeoutMs` of its last good
 * liveness probe (the next probe starts at most one interval after the good one, each failing
 * probe takes `timeoutMs`, the failures are an interval apart, and the last one fails
 * `timeoutMs` after it started). If `timeoutMs` exceeds `intervalMs` the runs go back to back
 * and the bound becomes `intervalMs + failureThreshold × timeoutMs`. Add event-loop latency.
 */
export class Prober {
  readonly #now: () => number;
  readonly #onChange: ProberOptions["onChange"];
  readonly #onResult: ProberOptions["onResult"];
  readonly #watches = new Map<string, Watch>();
  readonly #scheduler: Scheduler;
  readonly #probe: ProbeFn;

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
  }

  /** Current health of a watched instance, or undefined if it is not watched. */
  health(instance: string): InstanceHealth | undefined {
    return this.#watches.get(instance)?.state.health;
  }

  /** Unwatch everything. The Prober stays usable. */
  stop(): void {
    for (const instance of [...this.#watches.keys()]) this.unwatch(instance);
  }

  /** Start the chain of every probe that exists, is active in the current state, and is idle. */
  #scheduleActive(watch: Watch): void {
    for (const kind of KINDS) {
      const spec = watch.probes[kind];
      if (spec === undefined || watch.timers.has(kind) || !shouldRun(kind, watch.state)) continue;
      const firstRunAt = watch.startedAt + spec.initialDelayMs;
      this.#schedule(watch, kind, Math.max(0, firstRunAt - this.#now()));
    }
  }

  #schedule(watch: Watch, kind: ProbeKind, delayMs: number): void {
    watch.timers.set(
      kind,
      this.#scheduler.setTimer(delayMs, () => void this.#run(watch, kind)),
    );
  }

  async #run(watch: Watch, kind: ProbeKind): Promise<void> {
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
      this.#schedule(watch, kind, due - at);
      return;
    }
    const outcome = await this.#probe(watch.instance, spec.check, watch.target, spec.timeoutMs);
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
    if (shouldRun(kind, watch.state)) {
      this.#schedule(watch, kind, Math.max(0, spec.intervalMs - outcome.durationMs));
    }
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
