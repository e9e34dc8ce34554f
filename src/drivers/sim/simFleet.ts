/**
 * The real controller on a simulated world: the real `Controller`, decision core, release
 * manager, failover manager and `StateStore` (SQLite in the given directory), with the driver, the
 * data plane and every probe simulated in memory and every timer on a {@link VirtualClock}. What it
 * measures: how long each reconcile pass takes (and each of its steps), what the store was asked
 * to write, what was pushed to the data plane. Used by `bench/scale` and the scale tests.
 */

import { Controller } from "../../controller/controller.ts";
import { FailoverManager } from "../../controller/failoverManager.ts";
import { ReleaseManager } from "../../controller/releaseManager.ts";
import type { Reason } from "../../decide/reasons.ts";
import type { FleetSpec } from "../../spec/model.ts";
import { type EventRecord, StateStore } from "../../store/index.ts";
import { SimDataPlane } from "./simDataPlane.ts";
import { SimDriver } from "./simDriver.ts";
import { VirtualClock } from "./virtualClock.ts";

export interface SimFleetOptions {
  fleet: FleetSpec;
  /** Where the SQLite store lives (a temporary directory). */
  stateDir: string;
  /** The loop's safety-net period (default 250 ms, as in production). */
  tickMs?: number;
  /** The controller's dispatch budget per pass (default: the controller's own). */
  passBudgetMs?: number;
  /** How long after its start an instance listens (default 0). */
  startupMs?: number;
  /** Seed of the controller's jitter (default 1): runs are repeatable. */
  seed?: number;
  /** Called with every stored event. */
  onEvent?: (event: EventRecord) => void;
  /** A counter read at each pass's first step and at its end: its growth is the pass's `counted`. */
  counter?: () => number;
}

/**
 * One reconcile pass as measured: when (virtual ms), how long (wall ms), the CPU time of the
 * controller's thread during it (ms: what it cost whatever else the machine was doing), and its
 * steps (wall ms and CPU ms each).
 */
export interface PassRecord {
  at: number;
  ms: number;
  cpuMs: number;
  phases: Record<string, number>;
  phasesCpu: Record<string, number>;
  /** Store writes made during the pass itself (from the end of its first step). */
  writes: number;
  /** Growth of the `counter` option over the pass (from the end of its first step), 0 without one. */
  counted: number;
}

/** Store calls by method name, writes apart. */
export interface StoreCounts {
  writes: number;
  reads: number;
  byMethod: Map<string, number>;
}

/** Method names of the store and the release ledger that change something. */
const WRITE_METHOD =
  /^(put|delete|open|update|add|append|journal|save|record|upsert|set|start|prune|acquire|release[A-Z])/;

export class SimFleet {
  readonly clock: VirtualClock;
  readonly driver: SimDriver;
  readonly dataPlane: SimDataPlane | undefined;
  readonly store: StateStore;
  readonly controller: Controller;
  readonly releases: ReleaseManager;
  readonly failover: FailoverManager;
  readonly passes: PassRecord[] = [];
  /** Timer passes the controller left out because the fleet was quiet. */
  skippedPasses = 0;
  readonly storeCounts: StoreCounts = { writes: 0, reads: 0, byMethod: new Map() };
  readonly #raw: StateStore;
  #phases: Record<string, number> = {};
  #phasesCpu: Record<string, number> = {};
  #writesAtPassStart = 0;
  #countedAtPassStart = 0;

  constructor(options: SimFleetOptions) {
    const fleet = options.fleet;
    this.clock = new VirtualClock();
    const now = () => this.clock.now();
    this.driver = new SimDriver({ clock: this.clock, startupMs: options.startupMs ?? 0 });
    this.dataPlane = fleet.services.some((s) => s.port !== undefined)
      ? new SimDataPlane(fleet, now)
      : undefined;
    this.#raw = StateStore.open(options.stateDir);
    this.store = countingStore(this.#raw, this.storeCounts);
    const note = (type: string, why: Reason, data: Record<string, unknown>) =>
      this.controller.note(type, why, data);
    this.releases = new ReleaseManager({
      fleet,
      store: this.store,
      dataPlane: this.dataPlane,
      note,
      now,
      spareBankHeld: (service) => this.failover.spareBankHeld(service),
      onRollback: (progress) => this.controller.onRollback(progress),
    });
    this.failover = new FailoverManager({
      fleet,
      store: this.store,
      ...(this.dataPlane ? { dataPlane: this.dataPlane } : {}),
      note,
      scheduler: this.clock,
      probe: this.driver.probe,
    });
    this.controller = new Controller({
      fleet,
      store: this.store,
      driver: this.driver,
      releases: this.releases,
      failover: this.failover,
      ...(this.dataPlane ? { dataPlane: this.dataPlane } : {}),
      tickMs: options.tickMs ?? 250,
      ...(options.passBudgetMs !== undefined ? { passBudgetMs: options.passBudgetMs } : {}),
      scheduler: this.clock,
      probe: this.driver.probe,
      random: seeded(options.seed ?? 1),
      events: { onEvent: (e) => options.onEvent?.(e) },
      metrics: {
        passPhase: (phase, seconds, cpuSeconds) => {
          if (Object.keys(this.#phases).length === 0) {
            this.#writesAtPassStart = this.storeCounts.writes;
            this.#countedAtPassStart = options.counter?.() ?? 0;
          }
          this.#phases[phase] = (this.#phases[phase] ?? 0) + seconds * 1000;
          this.#phasesCpu[phase] = (this.#phasesCpu[phase] ?? 0) + cpuSeconds * 1000;
        },
        reconcilePass: (seconds) => {
          this.passes.push({
            at: this.clock.now(),
            ms: seconds * 1000,
            cpuMs: Object.values(this.#phasesCpu).reduce((a, b) => a + b, 0),
            phases: this.#phases,
            phasesCpu: this.#phasesCpu,
            writes: this.storeCounts.writes - this.#writesAtPassStart,
            counted: (options.counter?.() ?? 0) - this.#countedAtPassStart,
          });
          this.#phases = {};
          this.#phasesCpu = {};
        },
        passSkipped: () => {
          this.skippedPasses++;
        },
        action: () => {},
      },
    });
  }

  /** Start the controller (it starts every instance on its first passes). */
  async start(): Promise<void> {
    await this.controller.start();
    await this.clock.settle();
  }

  /** Let `ms` of virtual time go by. */
  async run(ms: number): Promise<void> {
    await this.clock.advance(ms);
  }

  /**
   * Run in steps of `stepMs` until `condition` holds, at most `limitMs` of virtual time.
   * @throws Error when it does not hold by then
   */
  async runUntil(condition: () => boolean, limitMs: number, stepMs = 50): Promise<number> {
    const from = this.clock.now();
    while (!condition()) {
      if (this.clock.now() - from >= limitMs) {
        throw new Error(`sim: condition not met within ${limitMs} virtual ms`);
      }
      await this.clock.advance(stepMs);
    }
    return this.clock.now() - from;
  }

  /** Instances running and ready in the controller's view. */
  readyCount(): number {
    return this.controller
      .observed()
      .instances.filter((i) => i.runtime === "running" && i.health?.state === "ready").length;
  }

  /** Stop the controller (leaving the simulated instances) and close the store. */
  async close(): Promise<void> {
    await this.controller.detach();
    this.#raw.close();
  }
}

/**
 * The store, counting each call by method name (writes apart). Methods run on the store itself
 * (its private fields are not reachable through a proxy); the release ledger is counted too.
 */
function countingStore(store: StateStore, counts: StoreCounts): StateStore {
  let ledger: StateStore["ledger"] | null = null;
  const wrap = <T extends object>(target: T, prefix: string): T => {
    const cache = new Map<PropertyKey, unknown>();
    return new Proxy(target, {
      get(obj, prop) {
        if (prop === "ledger" && prefix === "") {
          ledger ??= wrap(store.ledger, "ledger.");
          return ledger;
        }
        const value = Reflect.get(obj, prop, obj) as unknown;
        if (typeof value !== "function" || typeof prop !== "string") return value;
        let bound = cache.get(prop);
        if (bound === undefined) {
          const name = `${prefix}${prop}`;
          const write = WRITE_METHOD.test(prop);
          bound = (...args: unknown[]) => {
            if (write) counts.writes++;
            else counts.reads++;
            counts.byMethod.set(name, (counts.byMethod.get(name) ?? 0) + 1);
            return (value as (...a: unknown[]) => unknown).apply(obj, args);
          };
          cache.set(prop, bound);
        }
        return bound;
      },
    });
  };
  return wrap(store, "");
}

/** A small deterministic generator (mulberry32): the same seed, the same jitter. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
