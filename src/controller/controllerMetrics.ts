/**
 * The controller's own Prometheus metrics, in a registry of their own (the data plane's
 * `homeostat_proxy_*` series live in the data-plane processes): how long a reconcile pass takes,
 * what it did and how that went, the open incidents, how long recoveries take phase by phase,
 * webhook deliveries and stream clients. Every name starts with `homeostat_controller_`, so the
 * two expositions concatenate on `/metrics` without a collision.
 */

import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ProbeCounts } from "../observe/prober.ts";
import type { StateStore, StoreChange } from "../store/index.ts";

/** Seconds: a reconcile pass is sub-millisecond idle and a few ms under load. */
const PASS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
/** Seconds: detection is immediate for an exit and a few probe intervals for a hang; stabilizing takes the window. */
const RECOVERY_BUCKETS = [0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600];

/** What the controller loop reports (see `Controller`). */
export interface ControllerMetricHooks {
  /** One reconcile pass (observe, decide, dispatch) took `seconds`. */
  reconcilePass(seconds: number): void;
  /**
   * Optional: the pass's steps, each as it ends (verify, bookkeeping, snapshot, decide, membership,
   * releases, failover), wall and CPU seconds, for the scale bench. Absent: the pass takes no
   * extra clock readings.
   */
  passPhase?(phase: string, seconds: number, cpuSeconds: number): void;
  /** Optional: a timer pass was left out because the fleet is quiet (see `Controller`). */
  passSkipped?(): void;
  /** An action the loop dispatched ended: `ok`, or `failed`. */
  action(type: string, outcome: "ok" | "failed"): void;
  /** Where to read the probes run so far (the prober's own counters, read at scrape time). */
  probeCounts?(source: () => ProbeCounts): void;
}

/** A webhook delivery's end: delivered, failed for good, or dropped because the queue was full. */
export type DeliveryOutcome = "delivered" | "failed" | "dropped" | "retried";

/** Incidents whose recovery phases were already observed, so a phase is counted once per incident. */
interface Observed {
  detected: boolean;
  mitigatedAt: number | null;
  stabilized: boolean;
  verified: boolean;
}

/**
 * Incidents tracked at most (the oldest are forgotten first): bounds memory on a long-running
 * controller. Closed ones are kept too: a closed incident's last timeline step is published after
 * its close, and must not count as a new incident.
 */
const MAX_TRACKED = 10_000;

export class ControllerMetrics implements ControllerMetricHooks {
  readonly registry = new Registry();
  readonly #pass: Histogram;
  readonly #actions: Counter;
  readonly #deliveries: Counter;
  readonly #streamClients: Gauge;
  readonly #passesSkipped: Counter;
  readonly #detect: Histogram;
  readonly #mitigate: Histogram;
  readonly #stabilize: Histogram;
  readonly #verify: Histogram;
  readonly #seen = new Map<number, Observed>();
  #probeCounts: (() => ProbeCounts) | null = null;
  #unsubscribe: (() => void) | null = null;

  constructor(store: StateStore) {
    const registers = [this.registry];
    this.#pass = new Histogram({
      name: "homeostat_controller_reconcile_duration_seconds",
      help: "Time one reconcile pass takes (observe, decide, dispatch).",
      buckets: PASS_BUCKETS,
      registers,
    });
    this.#passesSkipped = new Counter({
      name: "homeostat_controller_reconcile_skipped_total",
      help: "Timer passes left out because the fleet was quiet (re-decided at least every second, and at once on any change).",
      registers,
    });
    this.#actions = new Counter({
      name: "homeostat_controller_actions_total",
      help: "Actions the controller loop dispatched, by type (start, stop) and outcome (ok, failed).",
      labelNames: ["type", "outcome"],
      registers,
    });
    new Gauge({
      name: "homeostat_controller_open_incidents",
      help: "Incidents open now, by service.",
      labelNames: ["service"],
      registers,
      collect() {
        // Read at scrape time from the store: the truth, whoever opened or closed them.
        this.reset();
        const counts = new Map<string, number>();
        for (const incident of store.listIncidents({ status: "open" })) {
          counts.set(incident.service, (counts.get(incident.service) ?? 0) + 1);
        }
        for (const [service, count] of counts) this.set({ service }, count);
      },
    });
    const recovery = (name: string, help: string) =>
      new Histogram({ name, help, labelNames: ["service"], buckets: RECOVERY_BUCKETS, registers });
    this.#detect = recovery(
      "homeostat_controller_time_to_detect_seconds",
      "Incident detection minus the last good observation (TTD), by service.",
    );
    this.#mitigate = recovery(
      "homeostat_controller_time_to_mitigate_seconds",
      "Incident mitigation (a ready replacement) minus detection (TTR), by service; again after a regression.",
    );
    this.#stabilize = recovery(
      "homeostat_controller_time_to_stabilize_seconds",
      "Incident stabilized (ready through the stabilization window) minus detection, by service.",
    );
    this.#verify = recovery(
      "homeostat_controller_time_to_verify_seconds",
      "Incident verified (stable, converged, within SLO, invariants hold; it closes then) minus detection (TTS), by service.",
    );
    this.#deliveries = new Counter({
      name: "homeostat_controller_webhook_deliveries_total",
      help: "Webhook delivery attempts' ends, by webhook and outcome (delivered, retried, failed, dropped).",
      labelNames: ["webhook", "outcome"],
      registers,
    });
    const metrics = this;
    new Counter({
      name: "homeostat_controller_probes_total",
      help: "Instance probes (startup, readiness, liveness) the controller ran, by kind and outcome (ok, failed).",
      labelNames: ["kind", "outcome"],
      registers,
      collect() {
        // Read at scrape time from the prober's plain counters: a probe itself touches no metric.
        const counts = metrics.#probeCounts?.();
        if (counts === undefined) return;
        this.reset();
        for (const [kind, c] of Object.entries(counts)) {
          this.inc({ kind, outcome: "ok" }, c.ok);
          this.inc({ kind, outcome: "failed" }, c.failed);
        }
      },
    });
    this.#streamClients = new Gauge({
      name: "homeostat_controller_stream_clients",
      help: "Clients connected to the event stream (GET /v1/stream).",
      registers,
    });
    this.#unsubscribe = store.subscribe((change) => this.#onChange(change));
  }

  reconcilePass(seconds: number): void {
    this.#pass.observe(seconds);
  }

  passSkipped(): void {
    this.#passesSkipped.inc();
  }

  action(type: string, outcome: "ok" | "failed"): void {
    this.#actions.inc({ type, outcome });
  }

  probeCounts(source: () => ProbeCounts): void {
    this.#probeCounts = source;
  }

  /** A webhook delivery attempt ended this way. */
  delivery(webhook: string, outcome: DeliveryOutcome): void {
    this.#deliveries.inc({ webhook, outcome });
  }

  /** A stream client connected (+1) or went away (−1). */
  streamClients(delta: 1 | -1): void {
    this.#streamClients.inc(delta);
  }

  /** The exposition text of every controller series. */
  async exposition(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }

  /** Stops following the store. */
  close(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
  }

  #onChange(change: StoreChange): void {
    if (change.kind !== "incident") return;
    const incident = change.incident;
    const labels = { service: incident.service };
    let seen = this.#seen.get(incident.id);
    if (seen === undefined) {
      seen = { detected: false, mitigatedAt: null, stabilized: false, verified: false };
      this.#seen.set(incident.id, seen);
      if (this.#seen.size > MAX_TRACKED) this.#seen.delete(this.#seen.keys().next().value!);
    }
    if (!seen.detected) {
      seen.detected = true;
      if (incident.ttdMs !== null) this.#detect.observe(labels, incident.ttdMs / 1000);
    }
    if (incident.mitigatedAt !== null && incident.mitigatedAt !== seen.mitigatedAt) {
      this.#mitigate.observe(labels, Math.max(0, incident.mitigatedAt - incident.detectedAt) / 1000);
    }
    seen.mitigatedAt = incident.mitigatedAt;
    // Stabilized: ready through the window (when the gate passes at once, at verification).
    if (!seen.stabilized && incident.stabilizedAt !== null) {
      seen.stabilized = true;
      this.#stabilize.observe(labels, Math.max(0, incident.stabilizedAt - incident.detectedAt) / 1000);
    }
    if (!seen.verified && incident.verifiedAt !== null) {
      seen.verified = true;
      this.#verify.observe(labels, Math.max(0, incident.verifiedAt - incident.detectedAt) / 1000);
    }
  }
}
