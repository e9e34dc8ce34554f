/**
 * Zone probes: the domain-level probe of failover. The controller probes each instance behind the
 * data plane with the service's readiness check, but first applies the fault rules injected into
 * the data plane for that instance's endpoint (blackhole, reset, error, latency; `POST
 * /v1/faults`): a blackhole fails the probe after its timeout without touching the network, a
 * reset or error fails it at its rate, latency uses up part of its budget. Otherwise (and after
 * any latency) the probe makes a real network connection from the controller to the instance's
 * port, so a real network fault between the controller and the instance (a partition) fails it
 * too. It does not go through the data plane process itself: a fault of the data plane's own
 * network path that the controller's path does not share is not seen. This lets a zone cut off be
 * seen even when nothing sends it traffic (an evacuated zone waiting to fail back). The instance
 * probes (prober.ts) ignore injected faults.
 *
 * With no injected fault on its endpoint, the zone probe of an instance would be a second copy of
 * the instance's own readiness probe: the same check, over the same path (the controller to the
 * instance's port), with the same timeout and interval. It then sends nothing and takes that
 * probe's results instead ({@link ZoneProber.noteInstanceProbe}): a third of the controller's
 * probe traffic in a fleet with front ports, for the same verdicts (issue 15). It probes on its
 * own again the moment a fault rule applies to the endpoint, and always when the readiness check
 * is an exec check (no network path of its own: a partition would not fail it).
 */

import { realScheduler, type Scheduler, sleep } from "../lib/scheduler.ts";
import type { ProbeCheck } from "../spec/model.ts";
import type { Endpoint } from "../traffic/contracts.ts";
import type { FaultRegistry } from "../traffic/faults.ts";
import type { ProbeKind } from "./health.ts";
import { ProbeConnections } from "./probeConnections.ts";
import { type ProbeFn, runNetworkProbe } from "./prober.ts";

export interface ZoneProbeTarget {
  endpoint: Endpoint;
  /** The service's readiness check (an exec check is run as a TCP connect: it has no network path). */
  check: ProbeCheck;
  intervalMs: number;
  timeoutMs: number;
  /** Consecutive failures before the instance counts against its zone. */
  failureThreshold: number;
  /**
   * The instance probe whose results stand for this zone probe while no injected fault applies to
   * the endpoint (the probe `check` was taken from, on the instance's own port), or null to
   * always probe over the network (an exec check, turned into a TCP connect here).
   */
  reuses: ProbeKind | null;
}

interface ProbeRecord {
  /** The `run` that last had this instance among its targets. */
  seen: number;
  consecutiveFailures: number;
  lastStartedAt: number;
  running: boolean;
  lastDetail: string | null;
  /**
   * Connections kept between this instance's zone probes, closed when the record is forgotten
   * (the instance stopped being a ready target). A partition still fails a probe on a kept
   * connection: its request is never answered, and the probe times out.
   */
  connections: ProbeConnections;
  /** The port the connections go to: another one (a new endpoint) starts a new set. */
  port: number;
  /**
   * The instance probe whose results are taken as of the last run, or null while this prober
   * probes on its own (a fault rule applies, or the check has no network path). A result of the
   * other source that lands afterwards (a network probe still running when a fault was cleared, an
   * instance probe while a fault applies) is not counted.
   */
  reusing: ProbeKind | null;
}

export class ZoneProber {
  readonly #faults: FaultRegistry;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #scheduler: Scheduler;
  readonly #runProbe: ProbeFn;
  readonly #records = new Map<string, ProbeRecord>();
  #round = 0;
  #stopped = false;

  /** `scheduler` times the injected latency and blackholes, `probe` runs the check (defaults: real ones). */
  constructor(options: {
    faults: FaultRegistry;
    now?: () => number;
    random?: () => number;
    scheduler?: Scheduler;
    probe?: ProbeFn;
  }) {
    this.#faults = options.faults;
    this.#scheduler = options.scheduler ?? realScheduler;
    this.#now = options.now ?? (options.scheduler ? () => this.#scheduler.now() : Date.now);
    this.#random = options.random ?? Math.random;
    this.#runProbe = options.probe ?? runNetworkProbe;
  }

  /** Probe every target whose interval has passed (never two runs at once per instance); forget the others. */
  run(targets: readonly ZoneProbeTarget[]): void {
    if (this.#stopped) return;
    const now = this.#now();
    // Records are marked with the run that saw them, and swept only when some were not seen: a
    // set of every target's name per run was most of this method's time at 10,000 instances.
    const round = ++this.#round;
    let seen = 0;
    for (const target of targets) {
      const name = target.endpoint.instance;
      let record = this.#records.get(name);
      if (record === undefined) {
        record = {
          seen: 0,
          consecutiveFailures: 0,
          lastStartedAt: -Infinity,
          running: false,
          lastDetail: null,
          connections: new ProbeConnections(),
          port: target.endpoint.port,
          reusing: null,
        };
        this.#records.set(name, record);
      } else if (record.port !== target.endpoint.port) {
        record.connections.close();
        record.connections = new ProbeConnections();
        record.port = target.endpoint.port;
      }
      if (record.seen !== round) {
        record.seen = round;
        seen++;
      }
      if (target.reuses !== null && this.#faults.match(target.endpoint).length === 0) {
        record.reusing = target.reuses;
        continue;
      }
      record.reusing = null;
      if (record.running || now - record.lastStartedAt < target.intervalMs) continue;
      record.running = true;
      record.lastStartedAt = now;
      const owned = record;
      void this.#probe(target, owned.connections).then((detail) => {
        owned.running = false;
        if (this.#records.get(name) !== owned || owned.reusing !== null) return;
        owned.consecutiveFailures = detail === null ? 0 : owned.consecutiveFailures + 1;
        owned.lastDetail = detail;
      });
    }
    if (this.#records.size > seen) {
      for (const [instance, record] of this.#records) {
        if (record.seen !== round) {
          record.connections.close();
          this.#records.delete(instance);
        }
      }
    }
  }

  /**
   * A result of `instance`'s own probe of `kind` (the instance prober's): counted as this zone
   * probe's result when the last run found that the zone probe reuses that probe. Results of an
   * instance that is not a target (yet) are not kept: its first run starts it from 0 failures,
   * as a probe of its own would.
   */
  noteInstanceProbe(instance: string, kind: ProbeKind, ok: boolean, detail: string | undefined): void {
    const record = this.#records.get(instance);
    if (record === undefined || record.reusing !== kind) return;
    record.consecutiveFailures = ok ? 0 : record.consecutiveFailures + 1;
    record.lastDetail = ok ? null : (detail ?? "failed");
  }

  /**
   * True when no zone probe runs on its own (each takes its instance probe's results), none is
   * running, and none has failed since it last passed: nothing here needs a pass to be started
   * or judged.
   */
  quiet(): boolean {
    for (const record of this.#records.values()) {
      if (record.reusing === null || record.running || record.consecutiveFailures > 0) return false;
    }
    return true;
  }

  /** Why `instance` fails its zone probe (after the threshold), or null. */
  failing(instance: string, failureThreshold: number): string | null {
    const record = this.#records.get(instance);
    if (record === undefined || record.consecutiveFailures < failureThreshold) return null;
    return `zone probe failed ${record.consecutiveFailures}× (${record.lastDetail})`;
  }

  stop(): void {
    this.#stopped = true;
    for (const record of this.#records.values()) record.connections.close();
    this.#records.clear();
  }

  /** null when the probe passed, else why it failed. */
  async #probe(target: ZoneProbeTarget, connections: ProbeConnections): Promise<string | null> {
    const { endpoint, timeoutMs } = target;
    let budget = timeoutMs;
    for (const rule of this.#faults.match(endpoint)) {
      const fault = rule.fault;
      switch (fault.kind) {
        case "blackhole":
          await sleep(this.#scheduler, timeoutMs);
          return `timeout after ${timeoutMs}ms (${rule.id}: blackhole)`;
        case "reset":
          if (this.#random() < (fault.rate ?? 1)) return `connection reset (${rule.id})`;
          break;
        case "error":
          if (this.#random() < (fault.rate ?? 1)) return `status ${fault.status} (${rule.id})`;
          break;
        case "latency":
          if (fault.ms >= budget) {
            await sleep(this.#scheduler, budget);
            return `timeout after ${timeoutMs}ms (${rule.id}: +${fault.ms}ms)`;
          }
          await sleep(this.#scheduler, fault.ms);
          budget -= fault.ms;
          break;
      }
    }
    const check: ProbeCheck = target.check.kind === "exec" ? { kind: "tcp" } : target.check;
    const outcome = await this.#runProbe(
      endpoint.instance,
      check,
      { host: "127.0.0.1", port: endpoint.port, cwd: ".", env: {} },
      budget,
      connections,
    );
    return outcome.ok ? null : (outcome.detail ?? "failed");
  }
}
