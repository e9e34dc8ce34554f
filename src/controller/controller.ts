/**
 * The controller: the one impure loop. It observes (driver exits, probe results), asks the pure
 * decision core what to do, acts through the driver with a journal, and verifies recovery through
 * the incident rules. Everything it learns goes to the store first; the API and CLI read from there.
 */

import { createHash } from "node:crypto";
import { journaled } from "../act/journaled.ts";
import { launchFor } from "../act/launchFor.ts";
import type { Action } from "../decide/actions.ts";
import type { AutomatedProposal, BrakeHold } from "../decide/brakes/types.ts";
import type { Reason, ReasonCode } from "../decide/reasons.ts";
import { decide, describeExit } from "../decide/reconcile.ts";
import {
  freshSlot,
  recordFailure,
  recordStable,
  resetForNewRelease,
  type SlotState,
} from "../decide/slotState.ts";
import type { BankTarget, ObservedInstance, Snapshot } from "../decide/snapshot.ts";
import type { Driver, ExitInfo } from "../drivers/driver.ts";
import { HomeostatError } from "../errors.ts";
import { realScheduler, type Scheduler, sleep, type Timer } from "../lib/scheduler.ts";
import type { InstanceHealth } from "../observe/health.ts";
import {
  canCheckPortIdentity,
  describeHolders,
  type PortIdentityChecker,
  servesOnItsPort,
} from "../observe/portIdentity.ts";
import { type ProbeFn, Prober } from "../observe/prober.ts";
import type { StatusRecoveryInputs } from "../server/statusView.ts";
import { type FleetSpec, instanceName, type ReleaseSpec, type ServiceSpec } from "../spec/model.ts";
import { startupBudgetMs } from "../spec/probes.ts";
import type { JournalRecord, StateStore } from "../store/index.ts";
import type { Endpoint } from "../traffic/contracts.ts";
import type { DataPlaneControl } from "../traffic/dataPlaneControl.ts";
import { endpointOf } from "../traffic/endpointOf.ts";
import { type Drift, driftOf, type LaunchFacts, launchFactsOf } from "../verify/convergence.ts";
import {
  type FailureObservation,
  type IncidentChange,
  onActionStarted,
  onAutomationHeld,
  onFailure,
  onHealth,
  onRollbackDone,
  onRollbackFailed,
  onRollbackStarted,
  onStable,
  type RollbackProgress,
} from "../verify/incidentRules.ts";
import { type InvariantVerdict, type InvariantVerdicts, NO_INVARIANTS } from "../verify/invariants.ts";
import { VERIFIED_DISPLAY_MS } from "../verify/recoveryState.ts";
import { evaluateGate, type GateInstance, type GateVerdict, sloDataGap } from "../verify/verificationGate.ts";
import type { AutomationBrakes } from "./brakes.ts";
import type { ControllerEvents } from "./controllerEvents.ts";
import type { ControllerMetricHooks } from "./controllerMetrics.ts";
import { crashPoint } from "./crashPoints.ts";
import { recoverInterrupted } from "./crashRecovery.ts";
import type { FailoverManager } from "./failoverManager.ts";
import type { ReleaseManager } from "./releaseManager.ts";

/**
 * A quiet fleet is re-decided at least this often (and at once on any change): four full passes
 * a second over 10,000 simulated instances with nothing to do cost 3.6 % of a core, one a second
 * 0.9 % (issue 15, docs/benchmarks.md; at 60 real instances the saving did not show in the probe
 * bench). The timer still fires every `tickMs`, to check that the fleet is still quiet — a check
 * of a few fields, not a pass.
 */
export const QUIET_PASS_EVERY_MS = 1_000;

/**
 * A pass stops dispatching starts and stops once it has run this long (wall ms), after at least
 * {@link MIN_ACTIONS_PER_PASS} of them; the rest go to a pass in a turn of its own right after.
 * Each action costs the pass its journal intent and store reads: a cold start of 10,000 instances
 * in one pass took 3.3 s on a loaded VM (401 ms on a quiet one), 100 restarts at once 219 ms (issue
 * 15's target: a pass under 100 ms), while probes, data-plane reports and the API waited.
 */
export const PASS_DISPATCH_BUDGET_MS = 30;
/** Dispatched by every pass whatever its time, so a slow machine still makes progress. */
export const MIN_ACTIONS_PER_PASS = 8;

export interface ControllerOptions {
  fleet: FleetSpec;
  store: StateStore;
  driver: Driver;
  events: ControllerEvents;
  /** The traffic layer, when any service has a front port. */
  dataPlane?: DataPlaneControl;
  /** Active releases, deploys and rollbacks; without it each service runs its spec release. */
  releases?: ReleaseManager;
  /** Zone failover: health of zones, evacuation, failback, survivor protection. */
  failover?: FailoverManager;
  /**
   * How often the loop re-decides even when nothing was reported (level-triggered safety net).
   * A quiet fleet (see `quietPassEveryMs`) is re-decided less often.
   */
  tickMs?: number;
  /**
   * How often a quiet fleet is re-decided: every instance running and ready, the last pass
   * dispatched nothing, and nothing under way anywhere (actions, incidents, deploys, rollbacks,
   * zone failover, fault rules). Default {@link QUIET_PASS_EVERY_MS}; a change (a health verdict,
   * an exit, an applied spec, a finished action) is re-decided at once whatever this says.
   */
  quietPassEveryMs?: number;
  /** How long a pass dispatches before leaving the rest to a follow-up pass (default {@link PASS_DISPATCH_BUDGET_MS}). */
  passBudgetMs?: number;
  /** Where reconcile passes and action outcomes are counted (Prometheus, see controllerMetrics.ts). */
  metrics?: ControllerMetricHooks;
  /** The security-invariant verdicts the verification gate reads; absent: no service declares any. */
  invariants?: InvariantVerdicts;
  now?: () => number;
  random?: () => number;
  /**
   * The loop's, the prober's and the drain's timers (default: real ones). With a scheduler and no
   * `now`, the clock is the scheduler's: the simulation runs everything in virtual time.
   */
  scheduler?: Scheduler;
  /** What runs an instance's probe checks (default: over the network; the simulation's in memory). */
  probe?: ProbeFn;
  /** Automation brakes, asked before every automated restart (absent: nothing is ever held). */
  brakes?: Pick<AutomationBrakes, "automated">;
}

interface Runtime {
  observed: ObservedInstance;
  /** Set while the controller itself is stopping it, so its exit is not a failure. */
  stopping: boolean;
  /** Its data-plane endpoint, kept while its service spec and release stay the same. */
  endpoint?: { of: ServiceSpec; release: string; endpoint: Endpoint };
  /**
   * What this run was launched with, from its store record, read once per run (a Runtime is made
   * anew for each start or adoption, and a run's launch facts do not change while it runs).
   */
  launched?: { release: string; configHash: string | null; secretVersions: Record<string, string> | null };
}

export class Controller {
  /** The applied spec: replaced by {@link setFleet} when a new revision is applied. */
  fleet: FleetSpec;
  /**
   * Services removed by an apply whose instances still run: they are drained (no members in the
   * data plane) and stopped, with the settings they had, then forgotten.
   */
  private readonly retiring = new Map<string, ServiceSpec>();
  private readonly store: StateStore;
  private readonly driver: Driver;
  private readonly events: ControllerEvents;
  private readonly dataPlane: DataPlaneControl | undefined;
  private readonly releases: ReleaseManager | undefined;
  private readonly failover: FailoverManager | undefined;
  private readonly brakes: Pick<AutomationBrakes, "automated"> | undefined;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly tickMs: number;
  private readonly quietPassEveryMs: number;
  private readonly passBudgetMs: number;
  private readonly metrics: ControllerMetricHooks | undefined;
  private readonly invariants: InvariantVerdicts | undefined;
  private readonly prober: Prober;
  private readonly runtimes = new Map<string, Runtime>();
  private readonly slots = new Map<string, SlotState>();
  private readonly busy = new Set<string>();
  private readonly lastWait = new Map<string, string>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private timer: Timer | null = null;
  private readonly scheduler: Scheduler;
  /** The driver, when it can tell whose socket answers on an instance's port (the local driver). */
  private readonly identity: PortIdentityChecker | null;
  /**
   * Instances whose probes say ready while nothing of theirs listens on their port yet (a race
   * with a listener coming or going): epoch ms of their next identity check.
   */
  private readonly identityPending = new Map<string, number>();
  /**
   * Instances adopted from a previous controller that have no health verdict yet. While a service
   * has one, its membership is not pushed: the data plane keeps serving with what the previous
   * controller told it, instead of being told "no member" by a controller that has not looked yet.
   */
  private readonly adoptedUnjudged = new Set<string>();
  /** Epoch ms after which membership is pushed whatever the verdicts (a probe that never answers). */
  private membershipHoldUntil = 0;
  /** Whether the data plane was told that this controller has decided everything it serves. */
  private dataPlaneDecided = false;
  private tickQueued = false;
  /** A follow-up pass is queued (see {@link followUpPass}). */
  private followUpQueued = false;
  private stopped = false;
  /** When the last full pass ran (this controller's clock), for the quiet cadence. */
  private lastPassAt = Number.NEGATIVE_INFINITY;
  /**
   * Whether the last pass found the fleet converged: it dispatched nothing (no start, stop or
   * wait), and every instance was running, ready and not being stopped.
   */
  private lastPassConverged = false;
  /** `fleet.services` by name, for the fleet object it was built from (rebuilt when that changes). */
  private servicesByName: { of: FleetSpec; byName: Map<string, ServiceSpec> } | null = null;
  /**
   * The bank targets of this pass, computed once at its start instead of once per gate (a gate
   * per open incident used to recompute every service's targets): cleared before the release
   * manager moves them, and by a microtask whatever happens.
   */
  private passTargets: Map<string, BankTarget[]> | null = null;
  /**
   * The members last given to the data plane per service: an unchanged list is not given again
   * (the data plane would compare every endpoint of every service each pass to find no change).
   */
  private readonly pushedMembers = new Map<string, readonly Endpoint[]>();
  /** The membership sync the stops of this turn wait for (see membershipSynced). */
  private membershipSync: Promise<void> | null = null;
  /** Launch facts per release spec object (a new spec object, a new entry). */
  private readonly launchFacts = new WeakMap<ReleaseSpec, LaunchFacts>();
  /** When each instance's probing began (its start, or its adoption): its startup budget runs from there. */
  private readonly watchedAt = new Map<string, number>();
  /** The `watchedAt` of the run an instance's slow start was reported for (once per run). */
  private readonly slowStartNoted = new Map<string, number>();
  private readonly lastProbeFailure = new Map<string, string>();

  constructor(options: ControllerOptions) {
    this.fleet = options.fleet;
    this.store = options.store;
    this.driver = options.driver;
    this.identity = canCheckPortIdentity(options.driver) ? options.driver : null;
    this.events = options.events;
    this.dataPlane = options.dataPlane;
    this.releases = options.releases;
    this.failover = options.failover;
    this.brakes = options.brakes;
    this.scheduler = options.scheduler ?? realScheduler;
    this.now = options.now ?? (options.scheduler ? () => this.scheduler.now() : Date.now);
    this.random = options.random ?? Math.random;
    this.tickMs = options.tickMs ?? 250;
    this.quietPassEveryMs = options.quietPassEveryMs ?? QUIET_PASS_EVERY_MS;
    this.passBudgetMs = options.passBudgetMs ?? PASS_DISPATCH_BUDGET_MS;
    this.metrics = options.metrics;
    this.invariants = options.invariants;
    this.prober = new Prober({
      now: this.now,
      scheduler: this.scheduler,
      ...(options.probe ? { probe: options.probe } : {}),
      onChange: (instance, health, previous) => this.onHealthChange(instance, health, previous),
      // The last failed probe of each instance: what a report of a slow start says is wrong.
      onResult: (instance, result) => {
        this.failover?.noteInstanceProbe(instance, result);
        if (result.ok) this.lastProbeFailure.delete(instance);
        else this.lastProbeFailure.set(instance, `${result.kind} probe: ${result.detail ?? "failed"}`);
      },
    });
    this.driver.onExit((instance, exit) => this.onExit(instance, exit));
    this.metrics?.probeCounts?.(() => this.prober.counts());
  }

  /** Record the fleet, take back what an earlier controller left, then start the loop. */
  async start(): Promise<void> {
    const now = this.now();
    this.store.recordFleet(this.fleet.file, JSON.stringify(this.fleet), now);
    for (const service of this.fleet.services) {
      for (const release of Object.values(service.releases)) {
        const specJson = JSON.stringify(release);
        this.store.upsertRelease({
          service: service.name,
          version: release.version,
          specJson,
          contentHash: createHash("sha256").update(specJson).digest("hex"),
          at: now,
        });
      }
    }
    // What the last controller left half-done: spawned starts adopted, strays stopped, the rest
    // closed as interrupted; pending stops are settled by the adoption below.
    const interrupted = await recoverInterrupted({
      store: this.store,
      driver: this.driver,
      fleet: this.fleet,
      now: this.now,
      note: (type, why, data) => this.emit(type, why, data),
    });
    for (const slot of this.store.listSlots()) this.slots.set(slot.instance, slot);
    this.releases?.init();
    this.failover?.init();
    await this.adoptPrevious(interrupted.stops);
    this.loop();
  }

  /** Stop the loop, the prober and failover, and let actions under way finish; false when already stopped. */
  private async stopDeciding(): Promise<boolean> {
    if (this.stopped) return false;
    this.stopped = true;
    this.timer?.cancel();
    this.prober.stop();
    this.failover?.stop();
    await Promise.allSettled([...this.inFlight]);
    return true;
  }

  /** Stop deciding, stop every instance, and leave the store consistent. */
  async shutdown(graceMs?: number): Promise<void> {
    if (!(await this.stopDeciding())) return;
    const grace = graceMs ?? Math.max(0, ...this.fleet.services.map((s) => s.restart.stopGracePeriodMs));
    for (const runtime of this.runtimes.values()) runtime.stopping = true;
    this.emit("controller.stopping", { code: "shutdown", message: "stopping every instance" });
    // Stop taking traffic first and let in-flight requests finish, then stop the instances.
    await this.dataPlane?.close();
    await this.driver.stopAll(grace);
    for (const name of this.runtimes.keys()) this.store.deleteInstance(name);
    this.runtimes.clear();
    this.emit("controller.stopped", { code: "shutdown", message: "all instances stopped" });
  }

  /**
   * Take a newly applied spec: from the next pass on, reconcile works towards it (scale, added
   * services). A removed service is kept as retiring until its instances are drained and stopped.
   */
  setFleet(next: FleetSpec): void {
    const previous = this.fleet;
    this.fleet = next;
    // A new spec may re-create a service's listener: every service's members are given again.
    this.pushedMembers.clear();
    for (const service of previous.services) {
      if (!next.services.some((s) => s.name === service.name)) this.retiring.set(service.name, service);
    }
    for (const service of next.services) this.retiring.delete(service.name);
    this.poke();
  }

  /**
   * Replace one running instance: drained, stopped and started again from the spec in force (an
   * in-place roll of `homeostat apply --allow-in-place`). False when it is not running or busy.
   */
  replaceInstance(name: string, why: Reason): boolean {
    const runtime = this.runtimes.get(name);
    if (
      runtime === undefined ||
      runtime.stopping ||
      this.busy.has(name) ||
      runtime.observed.runtime !== "running"
    )
      return false;
    this.dispatch({
      type: "stop",
      instance: name,
      service: runtime.observed.service,
      afterStop: "restart",
      reason: why,
    });
    return true;
  }

  /**
   * A person's restart of one instance (`homeostat restart`; the API checked the brakes first): a
   * running one is drained, stopped and started again; one that is not running (held by a brake,
   * waiting out its backoff) is started now. Not counted as automated.
   *
   * @throws HomeostatError HS_NOT_FOUND when no slot of the fleet has that name; HS_CONFLICT
   *   while an action is under way on it.
   */
  restartByHand(name: string, why: Reason): "replacing" | "starting" {
    const runtime = this.runtimes.get(name);
    // The slot some bank wants under this name, with the release it should run.
    let wanted: { service: string; slot: number; release: string } | undefined;
    const releaseTargets = this.releaseTargets();
    for (const [service, banks] of this.failover?.extend(releaseTargets) ?? releaseTargets) {
      for (const bank of banks) {
        const slot = bank.slots.find((s) => instanceName(service, s) === name);
        if (slot !== undefined) wanted = { service, slot, release: bank.release };
      }
    }
    if (wanted === undefined && runtime === undefined) {
      throw new HomeostatError("HS_NOT_FOUND", `no instance ${name}`);
    }
    if (this.busy.has(name) || runtime?.stopping === true) {
      throw new HomeostatError(
        "HS_CONFLICT",
        `${name} is being started or stopped now; try again once it is done`,
      );
    }
    if (runtime?.observed.runtime === "running") {
      this.replaceInstance(name, why);
      return "replacing";
    }
    if (wanted === undefined) {
      throw new HomeostatError(
        "HS_CONFLICT",
        `${name} is not running and no longer wanted: nothing to start`,
      );
    }
    this.dispatch({ type: "start", instance: name, ...wanted, reason: why }, true);
    return "starting";
  }

  /**
   * An automated action was held by a brake: the open incidents it concerns escalate (a restart:
   * the instance's; a rollback: the service's; a failover: those of the zone's instances).
   */
  escalateHeld(proposal: AutomatedProposal, hold: BrakeHold): void {
    const now = this.now();
    const open =
      proposal.kind === "restart"
        ? [this.store.openIncidentFor(proposal.target)].filter((i) => i !== null)
        : proposal.kind === "rollback"
          ? this.store.listIncidents({ status: "open", service: proposal.target })
          : (() => {
              const inZone = new Set(
                this.store
                  .listInstances()
                  .filter((r) => r.zone === proposal.target)
                  .map((r) => r.name),
              );
              return this.store.listIncidents({ status: "open" }).filter((i) => inZone.has(i.instance));
            })();
    for (const incident of open) this.applyIncident(onAutomationHeld(incident, now, hold.reason.message));
  }

  /** Services removed from the spec whose instances are still being drained and stopped. */
  retiringServices(): string[] {
    return [...this.retiring.keys()];
  }

  /**
   * Stop deciding and let go of every instance, leaving it running (`homeostat down --keep-fleet`,
   * SIGQUIT): actions under way finish, then nothing more is started, stopped or probed. The
   * store keeps each instance's record (pid, start time), so the next controller adopts them.
   */
  async detach(): Promise<void> {
    if (!(await this.stopDeciding())) return;
    const running = [...this.runtimes.values()].filter((r) => r.observed.runtime === "running").length;
    this.emit("controller.detached", {
      code: "controller-detached",
      message: `the controller stops and leaves ${running} instance(s) running for the next \`homeostat up\` to adopt`,
    });
  }

  /** Record an event that happened outside the loop (API-driven changes, the data plane). */
  note(type: string, why: Reason, data: Record<string, unknown> = {}): void {
    this.emit(type, why, data);
  }

  /** Instances as observed now, and those with an action under way. */
  observed(): { instances: ObservedInstance[]; busy: ReadonlySet<string> } {
    return { instances: [...this.runtimes.values()].map((r) => r.observed), busy: this.busy };
  }

  /** The current view, for the API. */
  view(): { instances: ObservedInstance[]; slots: SlotState[]; busy: string[] } {
    return {
      instances: [...this.runtimes.values()].map((r) => r.observed),
      slots: [...this.slots.values()],
      busy: [...this.busy],
    };
  }

  /** Re-decide soon (coalesces bursts of reports into one pass). */
  poke(): void {
    if (this.stopped || this.tickQueued) return;
    this.tickQueued = true;
    queueMicrotask(() => {
      this.tickQueued = false;
      this.tick();
    });
  }

  /** A pass in a turn of its own, soon: what a pass left undispatched over its budget. */
  private followUpPass(): void {
    if (this.followUpQueued) return;
    this.followUpQueued = true;
    this.scheduler.setTimer(0, () => {
      this.followUpQueued = false;
      this.tick();
    });
  }

  private loop(): void {
    if (this.stopped) return;
    if (this.quiet()) this.metrics?.passSkipped?.();
    else this.tick();
    this.timer = this.scheduler.setTimer(this.tickMs, () => this.loop(), { keepAlive: true });
  }

  private tick(): void {
    if (this.stopped) return;
    const passStarted = performance.now();
    const now = this.now();
    const phase = this.metrics?.passPhase ? phaseTimer(this.metrics.passPhase) : null;
    this.holdPassTargets();
    this.verifyOpenIncidents(now);
    phase?.("verify");
    this.resetStableSlots(now);
    this.noteSlowStarts(now);
    this.recheckIdentity(now);
    phase?.("bookkeeping");
    const releaseTargets = this.releaseTargets();
    const snapshot: Snapshot = {
      now,
      fleet: this.fleet,
      instances: [...this.runtimes.values()].map((r) => r.observed),
      slots: this.slots,
      busy: this.busy,
      targets: this.failover?.extend(releaseTargets) ?? releaseTargets,
    };
    phase?.("snapshot");
    const held = this.heldServices();
    const actions = decide(snapshot);
    let dispatched = 0;
    for (const action of actions) {
      // A planned stop (old bank, scale-down, roll) of a service whose membership is held waits
      // for the adopted instances' verdicts: stopped now, it leaves the data plane with what it
      // served minus the stopped ones — nothing, when a new bank had not been added to it yet
      // (the crash tests saw every request 503 after a restart right after a rollback).
      if (action.type === "stop" && held.has(action.service) && !isFailureStop(action.reason)) continue;
      if (
        action.type !== "wait" &&
        dispatched >= MIN_ACTIONS_PER_PASS &&
        performance.now() - passStarted >= this.passBudgetMs
      ) {
        // The rest is decided again by a pass of its own right after (decide is level-triggered:
        // nothing is carried over), so probes, reports and the API get their turn in between.
        this.followUpPass();
        break;
      }
      this.dispatch(action);
      if (action.type !== "wait") dispatched++;
    }
    phase?.("decide");
    this.syncMembership();
    phase?.("membership");
    this.passTargets = null;
    const settling = this.settling();
    // Deploys and rollbacks resumed after a restart wait for the adopted instances' first
    // verdicts: counted before, a ready previous bank reads as 0 ready and a rollback keeps the
    // bad canary's traffic until it "is ready again" (seen in the crash tests).
    if (!settling)
      this.releases?.tick({ ready: (service, release, bank) => this.readyIn(service, release, bank) });
    phase?.("releases");
    this.failover?.tick({
      instances: snapshot.instances,
      busy: this.busy,
      targets: releaseTargets,
      settling,
    });
    phase?.("failover");
    if (!settling && !this.dataPlaneDecided) {
      this.dataPlaneDecided = true;
      this.dataPlane?.decided();
    }
    this.lastPassAt = now;
    this.lastPassConverged = actions.length === 0 && this.everyInstanceReady();
    this.metrics?.reconcilePass((performance.now() - passStarted) / 1000);
  }

  /**
   * True when a timer pass can be left out: the last pass found the fleet converged, it is less
   * than `quietPassEveryMs` old, and nothing is under way that a pass would move on or must
   * notice in time — an action, an instance waiting for an identity check or a first verdict, a
   * retiring service, an open incident (verified by time), a deploy or rollback (advanced by
   * time), anything of zone failover (a zone not healthy, a shift, added capacity, an ejection, a
   * failing zone probe, a fault rule). What changes outside these (a verdict, an exit, a spec, a
   * finished action, a brake) pokes a pass at once.
   */
  private quiet(): boolean {
    if (!this.lastPassConverged || this.now() - this.lastPassAt >= this.quietPassEveryMs) return false;
    if (
      this.busy.size > 0 ||
      this.inFlight.size > 0 ||
      this.identityPending.size > 0 ||
      this.adoptedUnjudged.size > 0 ||
      this.retiring.size > 0 ||
      (this.dataPlane !== undefined && !this.dataPlaneDecided)
    )
      return false;
    if (this.store.listOpenIncidentsWrittenHere().length > 0) return false;
    return (this.releases?.quiet() ?? true) && (this.failover?.quiet() ?? true);
  }

  /** Every instance running, ready and not being stopped. */
  private everyInstanceReady(): boolean {
    for (const runtime of this.runtimes.values()) {
      const o = runtime.observed;
      if (runtime.stopping || o.runtime !== "running" || o.health?.state !== "ready") return false;
    }
    return true;
  }

  /** The targets reconcile works towards now, failover's spare slots included. */
  private currentTargets(): Map<string, BankTarget[]> {
    if (this.passTargets !== null) return this.passTargets;
    const releaseTargets = this.releaseTargets();
    return this.failover?.extend(releaseTargets) ?? releaseTargets;
  }

  /** Compute the targets once for what runs synchronously from here (see `passTargets`). */
  private holdPassTargets(): void {
    this.passTargets = null;
    this.passTargets = this.currentTargets();
    queueMicrotask(() => {
      this.passTargets = null;
    });
  }

  /** The service of the applied spec named `name`, by index (a pass looks one up per instance). */
  private serviceNamed(name: string): ServiceSpec | undefined {
    if (this.servicesByName?.of !== this.fleet) {
      this.servicesByName = { of: this.fleet, byName: new Map(this.fleet.services.map((s) => [s.name, s])) };
    }
    return this.servicesByName.byName.get(name);
  }

  /** Each service's banks as the release manager wants them, or its spec release in bank 0. */
  private releaseTargets(): Map<string, BankTarget[]> {
    const fromReleases = this.releases?.targets();
    if (fromReleases) return fromReleases;
    return new Map(
      this.fleet.services.map((service) => [
        service.name,
        [{ bank: 0, release: service.release, slots: Array.from({ length: service.replicas }, (_, i) => i) }],
      ]),
    );
  }

  /** Ready instances of `service` running `release` in slots of `bank`. */
  private readyIn(service: ServiceSpec, release: string, bank: 0 | 1): number {
    let count = 0;
    const first = bank * service.replicas;
    for (const runtime of this.runtimes.values()) {
      const o = runtime.observed;
      if (o.service !== service.name || o.release !== release || runtime.stopping || this.busy.has(o.name))
        continue;
      if (o.slot < first || o.slot >= first + service.replicas) continue;
      if (o.runtime === "running" && o.health?.state === "ready") count++;
    }
    return count;
  }

  /** Every instance name some bank of some service wants now. */
  private wantedInstances(): Set<string> {
    const wanted = new Set<string>();
    const releaseTargets = this.releaseTargets();
    const targets = this.failover?.extend(releaseTargets) ?? releaseTargets;
    for (const [service, banks] of targets) {
      for (const b of banks) for (const slot of b.slots) wanted.add(instanceName(service, slot));
    }
    return wanted;
  }

  /**
   * True while instances adopted from a previous controller have no health verdict yet (bounded
   * by their startup probe's budget): what depends on their capacity waits for it.
   */
  private settling(): boolean {
    for (const name of this.adoptedUnjudged) {
      const o = this.runtimes.get(name)?.observed;
      if (
        o === undefined ||
        o.runtime !== "running" ||
        (o.health !== undefined && o.health !== null && o.health.state !== "starting")
      ) {
        this.adoptedUnjudged.delete(name);
      }
    }
    return this.adoptedUnjudged.size > 0 && this.now() < this.membershipHoldUntil;
  }

  /**
   * Services whose data-plane membership is held: instances adopted from the last controller
   * have no verdict yet (see {@link settling}), so the data plane keeps serving what it serves.
   */
  private heldServices(): Set<string> {
    const held = new Set<string>();
    if (!this.settling()) return held;
    for (const name of this.adoptedUnjudged) {
      const service = this.runtimes.get(name)?.observed.service;
      if (service !== undefined) held.add(service);
    }
    return held;
  }

  /** Push each service's ready instances to the data plane (instances being stopped are out). */
  /** {@link syncMembership} once, after what runs synchronously now (every stop dispatched in it). */
  private membershipSynced(): Promise<void> {
    this.membershipSync ??= Promise.resolve().then(() => {
      this.membershipSync = null;
      this.syncMembership();
    });
    return this.membershipSync;
  }

  private syncMembership(): void {
    const dataPlane = this.dataPlane;
    for (const [name] of this.retiring) {
      // A removed service takes no new request: its instances finish what they have, then stop.
      if ([...this.runtimes.values()].some((r) => r.observed.service === name)) {
        if (dataPlane?.hasProxy(name)) dataPlane.setMembers(name, []);
        this.pushedMembers.delete(name);
      } else {
        this.retiring.delete(name);
      }
    }
    if (dataPlane === undefined) return;
    const held = this.heldServices();
    // One walk over the instances, grouped by service (not one walk per service: 1,000 services
    // × 10,000 instances was 10 million steps a pass).
    const byService = new Map<string, Runtime[]>();
    for (const runtime of this.runtimes.values()) {
      const list = byService.get(runtime.observed.service);
      if (list === undefined) byService.set(runtime.observed.service, [runtime]);
      else list.push(runtime);
    }
    for (const service of this.fleet.services) {
      if (!dataPlane.hasProxy(service.name)) continue;
      const runtimes = byService.get(service.name) ?? [];
      // Held, the data plane keeps serving what it serves until the adopted instances are judged —
      // unless one of them is being stopped (or replaced): it must leave the data plane before it
      // goes, or it is killed while it still takes requests (its drain waits for the removal).
      // Then what the data plane serves is pushed back, minus what is being stopped (before its
      // first report says what it serves: every adopted instance, as the last controller had them).
      let served: ReadonlySet<string> | null = null;
      if (held.has(service.name)) {
        if (!runtimes.some((r) => r.stopping || this.busy.has(r.observed.name))) continue;
        served = servedInstances(dataPlane, service.name);
      }
      const members: Endpoint[] = [];
      for (const runtime of runtimes) {
        const o = runtime.observed;
        if (runtime.stopping || o.runtime !== "running" || this.busy.has(o.name)) continue;
        const keep =
          served !== null && this.adoptedUnjudged.has(o.name) && (served.size === 0 || served.has(o.name));
        if (o.health?.state !== "ready" && !keep) continue;
        if (runtime.endpoint?.of !== service || runtime.endpoint.release !== o.release) {
          runtime.endpoint = {
            of: service,
            release: o.release,
            endpoint: endpointOf(service, o.name, o.slot, o.release),
          };
        }
        members.push(runtime.endpoint.endpoint);
      }
      const last = this.pushedMembers.get(service.name);
      if (last?.length === members.length && last.every((e, i) => e === members[i])) continue;
      this.pushedMembers.set(service.name, members);
      dataPlane.setMembers(service.name, members);
    }
  }

  /**
   * Before a planned stop (new release, scale-down), wait until the instance's in-flight requests
   * are done, up to the service's drain timeout. A failed instance is not waited for.
   */
  private async drain(instance: string, service: ServiceSpec | undefined, planned: boolean): Promise<void> {
    const dataPlane = this.dataPlane;
    if (!planned || !dataPlane || !service || !dataPlane.hasProxy(service.name)) return;
    const deadline = this.now() + service.traffic.drainTimeoutMs;
    while (dataPlane.inFlight(service.name, instance) > 0 && this.now() < deadline) {
      await sleep(this.scheduler, 25);
    }
  }

  /**
   * An automated restart the brakes hold (a person's action, `manual`, never is): a start in a slot
   * whose process died, or the stop of a failed instance to replace it. The start that completes a
   * replacement the brakes already allowed is not asked again (it is the same restart).
   */
  private heldByBrake(action: Exclude<Action, { type: "wait" }>): boolean {
    if (this.brakes === undefined) return false;
    const o = this.runtimes.get(action.instance)?.observed;
    const failed = (code: string | undefined) => code === "liveness-failed" || code === "startup-failed";
    let disrupts: { instance: string; service: string }[];
    if (action.type === "start") {
      // A process that died: seen exiting, or (after a controller restart) recorded as run and gone.
      const record = o === undefined ? this.store.getInstance(action.instance) : null;
      const died =
        o === undefined
          ? record !== null &&
            record.pid === null &&
            record.lastExit !== null &&
            record.release === action.release
          : o.runtime === "exited" && !failed(o.replacing?.code);
      if (!died) return false;
      disrupts = [];
    } else {
      if (action.afterStop !== "restart" || !failed(action.reason.code)) return false;
      disrupts = o?.runtime === "running" ? [{ instance: action.instance, service: action.service }] : [];
    }
    const verdict = this.brakes.automated({
      kind: "restart",
      service: action.service,
      target: action.instance,
      disrupts,
    });
    return !verdict.allowed;
  }

  private dispatch(action: Action, manual = false): void {
    if (action.type === "wait") {
      const key = `${action.reason.code}:${action.until ?? ""}`;
      if (this.lastWait.get(action.instance) === key) return;
      this.lastWait.set(action.instance, key);
      this.emit("decision.wait", action.reason, {
        instance: action.instance,
        service: action.service,
        until: action.until,
      });
      return;
    }
    if (!manual && this.heldByBrake(action)) return;
    this.lastWait.delete(action.instance);
    this.busy.add(action.instance);
    const work = (action.type === "start" ? this.startInstance(action) : this.stopInstance(action))
      .then(() => this.metrics?.action(action.type, "ok"))
      .catch((error: unknown) => {
        this.metrics?.action(action.type, "failed");
        if (error instanceof HomeostatError && error.code === "HS_INSTANCE_PORT_HELD") {
          // Nothing was spawned: a foreign process holds the port. The start counts as failed
          // (backoff, incident), and is tried again once the backoff allows.
          this.emit(
            "instance.port-held",
            { code: "port-held", message: error.message },
            {
              ...(error.details as Record<string, unknown>),
              instance: action.instance,
              service: action.service,
            },
          );
        } else {
          this.emit(
            "action.failed",
            { code: "action-failed", message: error instanceof Error ? error.message : String(error) },
            { instance: action.instance, service: action.service },
          );
        }
        if (action.type === "start") this.onStartFailed(action, error);
      })
      .finally(() => {
        this.busy.delete(action.instance);
        this.inFlight.delete(work);
        this.poke();
      });
    this.inFlight.add(work);
  }

  private async startInstance(action: Extract<Action, { type: "start" }>): Promise<void> {
    const service = this.service(action.service);
    const launch = launchFor(service, action.slot, action.release);
    this.noteActionStarted(action.instance, `starting ${action.release} (${action.reason.code})`);
    const previous = this.store.getInstance(action.instance);
    if (previous !== null && previous.release !== action.release) {
      this.slots.set(action.instance, resetForNewRelease(this.slotOf(action.instance), this.now()));
    }
    let startedAt = 0;
    const handle = await journaled(
      this.store,
      this.now,
      {
        action: "start",
        target: action.instance,
        reason: action.reason,
        // Service and slot too: a start the controller died in is adopted from them (crashRecovery.ts).
        data: { release: action.release, port: launch.port, service: action.service, slot: action.slot },
      },
      async () => {
        crashPoint("instance.start-intent");
        if (this.identity !== null && servesOnItsPort(service)) {
          await this.identity.ensurePortFree(action.instance, launch.port);
        }
        const started = await this.driver.start(launch);
        crashPoint("instance.spawned");
        startedAt = this.now();
        // Recorded before the journal's result: once the journal says "started", the store must
        // know the pid, or a controller killed in between leaves a process nobody records (an
        // orphan, started again by the next controller).
        this.store.putInstance({
          name: action.instance,
          service: action.service,
          slot: action.slot,
          port: launch.port,
          release: action.release,
          zone: launch.placement.zone,
          host: launch.placement.host,
          pid: started.pid,
          startTime: started.startTime,
          logPath: started.logPath,
          startedAt,
          generation: (previous?.generation ?? 0) + 1,
          desired: "running",
          lastExit: null,
          // What this process runs with, so an instance on an old config is seen (convergence.ts).
          configHash: launchFactsOf(launch.release).configHash,
          secretVersions: launchFactsOf(launch.release).secretVersions,
        });
        crashPoint("instance.recorded");
        return started;
      },
      (h) => `pid ${h.pid}`,
    );
    this.runtimes.set(
      action.instance,
      observation(
        { name: action.instance, service: action.service, slot: action.slot, release: action.release },
        { runtime: "running", startedAt, lastExit: null },
      ),
    );
    this.watch(service, action.instance, launch.port, startedAt, action.release);
    this.emit("instance.started", action.reason, {
      instance: action.instance,
      service: action.service,
      pid: handle.pid,
      port: launch.port,
      release: action.release,
    });
    // The process may have died between spawn and now; the driver knows.
    const status = this.driver.status(action.instance);
    if (status.state === "exited") this.onExit(action.instance, status.exit);
  }

  private async stopInstance(action: Extract<Action, { type: "stop" }>): Promise<void> {
    const runtime = this.runtimes.get(action.instance);
    const service = this.serviceNamed(action.service) ?? this.retiring.get(action.service);
    const grace = service?.restart.stopGracePeriodMs ?? 5000;
    if (runtime) runtime.stopping = true;
    // Out of membership before it is drained and stopped: one sync for every stop of this turn
    // (one per stop walked every instance once per stop: 1,000 hung at once cost 2 s of a pass).
    await this.membershipSynced();
    const failed = isFailureStop(action.reason);
    await this.drain(action.instance, service, !failed);
    this.prober.unwatch(action.instance);
    this.noteActionStarted(action.instance, `stopping (${action.reason.code})`);
    const exit = await journaled(
      this.store,
      this.now,
      {
        action: "stop",
        target: action.instance,
        reason: action.reason,
        data: { graceMs: grace, afterStop: action.afterStop },
      },
      async () => {
        crashPoint("instance.stop-intent");
        const stopped = await this.driver.stop(action.instance, grace);
        crashPoint("instance.stopped");
        return stopped;
      },
      (e) => (e === null ? "already gone" : describeExit({ lastExit: e })),
    );
    this.emit("instance.stopped", action.reason, {
      instance: action.instance,
      service: action.service,
      exit,
    });
    if (action.afterStop === "leave-stopped") {
      this.runtimes.delete(action.instance);
      this.store.deleteInstance(action.instance);
      crashPoint("instance.stop-recorded");
      return;
    }
    if (runtime) {
      // A deliberate stop. Replacing a failed instance leaves the slot "exited" so its backoff
      // applies (a release that hangs again and again must not be restarted in a tight loop);
      // replacing a healthy one (new release) leaves it empty, to start at once.
      runtime.observed = {
        ...runtime.observed,
        runtime: failed ? "exited" : "absent",
        health: null,
        lastExit: exit,
        replacing: action.reason,
      };
      runtime.stopping = false;
    }
    const record = this.store.getInstance(action.instance);
    if (record) this.store.putInstance({ ...record, pid: null, startTime: null, lastExit: exit });
    crashPoint("instance.stop-recorded");
  }

  private onStartFailed(action: Extract<Action, { type: "start" }>, error: unknown): void {
    const now = this.now();
    const detail = `could not start: ${error instanceof Error ? error.message : String(error)}`;
    const exit: ExitInfo = { code: null, signal: null, at: now, detail };
    this.runtimes.set(
      action.instance,
      observation(
        { name: action.instance, service: action.service, slot: action.slot, release: action.release },
        { runtime: "exited", startedAt: null, lastExit: exit },
      ),
    );
    this.recordInstanceFailure(action.instance, action.service, "exited", detail, null);
  }

  private onExit(instance: string, exit: ExitInfo): void {
    const runtime = this.runtimes.get(instance);
    if (runtime === undefined || runtime.stopping || this.stopped) return;
    if (runtime.observed.runtime !== "running") return;
    const lastGoodAt =
      this.prober.health(instance)?.lastGoodAt ?? runtime.observed.health?.lastGoodAt ?? null;
    this.prober.unwatch(instance);
    runtime.observed = { ...runtime.observed, runtime: "exited", health: null, lastExit: exit };
    const record = this.store.getInstance(instance);
    if (record) this.store.putInstance({ ...record, pid: null, startTime: null, lastExit: exit });
    this.recordInstanceFailure(
      instance,
      runtime.observed.service,
      "exited",
      describeExit({ lastExit: exit }),
      lastGoodAt,
    );
  }

  private onHealthChange(instance: string, reported: InstanceHealth, previous: InstanceHealth): void {
    const runtime = this.runtimes.get(instance);
    if (runtime === undefined || runtime.stopping || this.stopped) return;
    this.identityPending.delete(instance);
    const health = reported.state === "ready" ? this.checkIdentity(runtime, reported, previous) : reported;
    if (health === null) return;
    runtime.observed = { ...runtime.observed, health };
    this.emit(
      "instance.health",
      { code: "health-changed", message: `${previous.state} → ${health.state}: ${health.reason}` },
      { instance, service: runtime.observed.service, from: previous.state, to: health.state },
    );
    if (health.state === "unhealthy") {
      const kind = health.reason.startsWith("startup") ? "startup-failed" : "liveness-failed";
      // `health` carries the last good probe time, whichever probe it came from.
      this.recordInstanceFailure(
        instance,
        runtime.observed.service,
        kind,
        health.reason,
        health.lastGoodAt ?? previous.lastGoodAt,
      );
    }
    if (health.state === "ready") {
      const open = this.store.openIncidentFor(instance);
      if (open)
        this.applyIncident(
          onHealth(
            open,
            health,
            this.now(),
            this.stabilizeMs(runtime.observed.service),
            this.gateOf(runtime.observed.service),
          ),
        );
    }
    this.poke();
  }

  /**
   * Instance identity: probes passing only prove that something answers on the port. The
   * instance is ready only if the listener belongs to its own process group. A foreign holder
   * makes it unhealthy (a startup failure: it is replaced, and its replacement's start is blocked
   * while the port stays held); no listener at all holds the verdict back until a later check.
   * Returns the health to record, or null to keep the current one for now.
   */
  private checkIdentity(
    runtime: Runtime,
    health: InstanceHealth,
    previous: InstanceHealth,
  ): InstanceHealth | null {
    if (this.identity === null) return health;
    const o = runtime.observed;
    const service = this.serviceNamed(o.service);
    if (service === undefined || !servesOnItsPort(service)) return health;
    const port = service.basePort + o.slot;
    const found = this.identity.portIdentity(o.name, port);
    switch (found.verdict) {
      case "ours":
      case "unverifiable":
        return health;
      case "no-listener":
        this.identityPending.set(o.name, this.now() + IDENTITY_RECHECK_MS);
        return null;
      case "foreign": {
        const holders = describeHolders(found.holders, found.unattributed);
        this.prober.unwatch(o.name);
        this.emit(
          "instance.port-held",
          {
            code: "port-held",
            message: `${o.name}: port ${port} is answered by ${holders}, not by the instance's process group; not ready, no traffic`,
          },
          {
            instance: o.name,
            service: o.service,
            port,
            holders: found.holders,
            unattributed: found.unattributed,
          },
        );
        return {
          state: "unhealthy",
          lastGoodAt: previous.lastGoodAt,
          since: health.since,
          reason: `startup: port ${port} is answered by ${holders}, not by ${o.name}`,
        };
      }
    }
  }

  /** Check again the instances whose probes pass while no listener of theirs was found. */
  private recheckIdentity(now: number): void {
    for (const [instance, at] of this.identityPending) {
      if (at > now) continue;
      this.identityPending.delete(instance);
      const runtime = this.runtimes.get(instance);
      const probed = this.prober.health(instance);
      if (runtime === undefined || runtime.observed.runtime !== "running" || probed?.state !== "ready")
        continue;
      this.onHealthChange(instance, probed, runtime.observed.health ?? probed);
    }
  }

  private recordInstanceFailure(
    instance: string,
    serviceName: string,
    kind: FailureObservation["kind"],
    detail: string,
    lastGoodAt: number | null,
  ): void {
    const now = this.now();
    const service = this.serviceNamed(serviceName);
    let slot = this.slotOf(instance);
    if (service) {
      slot = recordFailure(slot, service.restart, now, this.random());
      this.slots.set(instance, slot);
      this.store.putSlot(slot);
    }
    const open = this.store.openIncidentFor(instance);
    this.applyIncident(
      onFailure(open, {
        instance,
        service: serviceName,
        kind,
        reason: slot.crashLoop ? "crash-loop" : kind,
        detail,
        at: now,
        lastGoodAt,
      }),
    );
    this.emit(
      kind === "exited" ? "instance.exited" : "instance.unhealthy",
      {
        code: kind === "exited" ? "process-exited" : kind,
        message: `${instance}: ${detail}`,
      },
      {
        instance,
        service: serviceName,
        consecutiveFailures: slot.consecutiveFailures,
        crashLoop: slot.crashLoop,
      },
    );
    this.poke();
  }

  private noteActionStarted(instance: string, detail: string): void {
    const open = this.store.openIncidentFor(instance);
    if (open) this.applyIncident(onActionStarted(open, this.now(), detail));
  }

  /**
   * Mitigated incidents are verified (and closed) once their slot stayed ready for the
   * stabilization window and the verification gate passes for their service; rollbacks once
   * their target served for that window and the gate passes.
   */
  private verifyOpenIncidents(now: number): void {
    const gates = new Map<string, GateVerdict>();
    const gate = (service: string): GateVerdict => {
      let verdict = gates.get(service);
      if (verdict === undefined) {
        verdict = this.gateOf(service);
        gates.set(service, verdict);
      }
      return verdict;
    };
    // This controller leads: it alone writes the store, so the open incidents it last read stand
    // until it writes one (the query every pass was a third of an idle pass's CPU, issue 15).
    for (const open of this.store.listOpenIncidentsWrittenHere()) {
      if (open.mitigatedAt === null) continue;
      if (open.kind === "rollback") {
        const stabilizeMs = this.stabilizeMs(open.service);
        if (now - open.mitigatedAt < stabilizeMs) continue;
        const stable = `the rollback's target served for ${Math.round((now - open.mitigatedAt) / 1000)}s`;
        this.applyIncident(onStable(open, now, stable, gate(open.service)));
        continue;
      }
      const runtime = this.runtimes.get(open.instance);
      const health = runtime?.observed.health;
      if (!runtime || !health) continue;
      if (this.serviceNamed(open.service) === undefined) continue;
      this.applyIncident(onHealth(open, health, now, this.stabilizeMs(open.service), gate(open.service)));
    }
  }

  /**
   * The verification gate of `serviceName` now: every instance its banks want ready and on the
   * desired release, config hash and secret versions; the SLO over the stabilization window
   * (from the data plane, when the service has a front port); the security invariants.
   */
  gateOf(serviceName: string): GateVerdict {
    const service = this.serviceNamed(serviceName);
    const invariants = this.invariantsOf(serviceName);
    if (service === undefined) {
      const none = { ok: true, detail: "not a fleet service" };
      return { passed: invariants.ok, converged: none, slo: none, invariants: none, blocking: [] };
    }
    const drift = this.driftByInstance(service);
    const instances: GateInstance[] = [];
    let wanted = 0;
    for (const { name } of this.wantedSlots(service)) {
      wanted++;
      const runtime = this.runtimes.get(name);
      const o = runtime?.observed;
      if (o === undefined || o.runtime === "absent") continue;
      const ready =
        o.runtime === "running" && o.health?.state === "ready" && !runtime!.stopping && !this.busy.has(name);
      instances.push({
        name,
        ready,
        state: o.runtime === "running" ? (o.health?.state ?? "starting") : o.runtime,
        drift: drift.get(name) ?? [],
      });
    }
    const windowMs = Math.max(1000, Math.min(this.stabilizeMs(serviceName), 300_000));
    const window =
      this.dataPlane?.hasProxy(serviceName) === true
        ? this.dataPlane.stats.window({ service: serviceName, windowMs })
        : null;
    return evaluateGate({
      service: serviceName,
      instances,
      wanted,
      slo: service.slo,
      window,
      windowMs,
      invariants,
      sloDataGap: window === null ? null : sloDataGap(this.dataPlane?.status(), this.now()),
    });
  }

  /**
   * What the status document derives recovery states from: each service's gate, each running
   * instance's drift, invariant verdicts, incidents verified within the display window, zone shifts.
   */
  recoveryInputs(): StatusRecoveryInputs {
    const now = this.now();
    // Every service's gate below: the targets once, not once per service.
    this.holdPassTargets();
    const records = new Map(this.store.listInstances().map((r) => [r.name, r]));
    const gates = new Map<string, GateVerdict>();
    const drift = new Map<string, Drift[]>();
    const invariants = new Map<string, InvariantVerdict>();
    for (const service of this.fleet.services) {
      gates.set(service.name, this.gateOf(service.name));
      for (const [name, d] of this.driftByInstance(service, records)) drift.set(name, d);
      invariants.set(service.name, this.invariantsOf(service.name));
    }
    const recentlyVerified = this.store
      .listIncidents({ status: "closed", limit: 200 })
      .filter((i) => i.verifiedAt != null && now - i.verifiedAt <= VERIFIED_DISPLAY_MS);
    const zones = (this.failover?.status().zones ?? []).map((z) => ({
      zone: z.zone,
      share: z.share,
      phase: z.shift?.phase ?? null,
      reason: z.shift?.reason ?? null,
    }));
    return { gates, drift, invariants, recentlyVerified, zones };
  }

  /** The current invariant verdict of a service (a service that declares none has nothing to break). */
  invariantsOf(serviceName: string): InvariantVerdict {
    return this.invariants?.forService(serviceName) ?? NO_INVARIANTS;
  }

  /**
   * How each running instance of `service` differs from what its bank should run (empty:
   * converged), from the launch facts recorded when it started.
   */
  driftByInstance(
    service: ServiceSpec,
    records?: ReadonlyMap<
      string,
      { release: string; configHash?: string | null; secretVersions?: Record<string, string> | null }
    >,
  ): Map<string, Drift[]> {
    const out = new Map<string, Drift[]>();
    for (const { name, release } of this.wantedSlots(service)) {
      const runtime = this.runtimes.get(name);
      const o = runtime?.observed;
      if (runtime === undefined || o === undefined || o.runtime !== "running") continue;
      const spec = service.releases[release];
      if (spec === undefined) continue;
      // Without a map of every record: this run's own, read once (a gate per open incident per
      // pass read them every pass: 1,000 reads a pass with 100 services recovering at 10,000).
      const record = records === undefined ? this.launchedWith(runtime, name) : records.get(name);
      out.set(
        name,
        driftOf(
          record === undefined
            ? null
            : {
                release: record.release,
                configHash: record.configHash ?? null,
                secretVersions: record.secretVersions ?? null,
              },
          this.launchFactsOf(spec),
        ),
      );
    }
    return out;
  }

  /** The launch facts of `runtime`'s run, from its store record (read once per run). */
  private launchedWith(runtime: Runtime, name: string): Runtime["launched"] {
    if (runtime.launched === undefined) {
      const record = this.store.getInstance(name);
      // No record yet is not remembered: it is looked for again next time.
      if (record === null) return undefined;
      runtime.launched = {
        release: record.release,
        configHash: record.configHash ?? null,
        secretVersions: record.secretVersions ?? null,
      };
    }
    return runtime.launched;
  }

  /** `launchFactsOf` once per release spec (it hashes the release's config). */
  private launchFactsOf(spec: ReleaseSpec): LaunchFacts {
    let facts = this.launchFacts.get(spec);
    if (facts === undefined) {
      facts = launchFactsOf(spec);
      this.launchFacts.set(spec, facts);
    }
    return facts;
  }

  /** The slots some bank of `service` wants now, with the release each should run. */
  private wantedSlots(service: ServiceSpec): { name: string; release: string }[] {
    return (this.currentTargets().get(service.name) ?? []).flatMap((b) =>
      b.slots.map((slot) => ({ name: instanceName(service.name, slot), release: b.release })),
    );
  }

  /**
   * A rollback's progress (from the release manager): a rollback is a recovery, with an incident
   * of its own on the service, verified through the same gate as a restart.
   */
  onRollback(progress: RollbackProgress): void {
    const open = this.store
      .listIncidents({ status: "open", service: progress.service })
      .find((i) => i.kind === "rollback");
    if (progress.type === "started") {
      // The same rollback announced again by a controller that restarted — resumed (same start
      // time), or decided again before it was done — keeps the incident it has.
      if (
        open?.detail.startsWith(`rollback ${progress.from} → ${progress.to}:`) &&
        (open.mitigatedAt === null || open.detectedAt === progress.at)
      )
        return;
      if (open) this.applyIncident(onRollbackFailed(open, progress.at, "superseded by another rollback"));
      this.applyIncident(onRollbackStarted(progress));
      const opened = this.store
        .listIncidents({ status: "open", service: progress.service })
        .find((i) => i.kind === "rollback");
      if (opened) this.applyIncident(onActionStarted(opened, progress.at, `starting ${progress.to}`));
      return;
    }
    // Done once: a controller that restarted before saving the rollback done says it again.
    if (!open || (progress.type === "done" && open.mitigatedAt !== null)) return;
    this.applyIncident(
      progress.type === "done"
        ? onRollbackDone(open, progress.at, progress.detail)
        : onRollbackFailed(open, progress.at, progress.detail),
    );
  }

  /**
   * An instance still not ready once its startup budget (its startup and readiness probes'
   * thresholds: startupBudgetMs) has passed is reported, once per run, never left silent: an event
   * `instance.not-ready` (reason `not-ready-after-startup`) saying what its probes last found, and
   * the same words as its reason in `status`.
   */
  private noteSlowStarts(now: number): void {
    for (const runtime of this.runtimes.values()) {
      const o = runtime.observed;
      const since = this.watchedAt.get(o.name);
      if (o.runtime !== "running" || runtime.stopping || since === undefined || this.busy.has(o.name))
        continue;
      if (o.health === null || (o.health.state !== "starting" && o.health.state !== "unready")) continue;
      if (this.slowStartNoted.get(o.name) === since) continue;
      const service = this.serviceNamed(o.service);
      const budget = service === undefined ? null : startupBudgetMs(service.probes);
      if (budget === null || now - since < budget) continue;
      this.slowStartNoted.set(o.name, since);
      const last = this.lastProbeFailure.get(o.name);
      const why = `${o.health.reason}${last === undefined ? "" : `; last ${last}`}`;
      const message = `${o.name} is not ready ${Math.round((now - since) / 1000)}s after it started (startup budget ${Math.round(budget / 1000)}s): ${why}`;
      runtime.observed = {
        ...runtime.observed,
        health: { ...o.health, reason: `not ready after its startup budget: ${why}` },
      };
      this.emit(
        "instance.not-ready",
        { code: "not-ready-after-startup", message },
        { instance: o.name, service: o.service, budgetMs: budget, state: o.health.state },
      );
    }
  }

  /** A slot whose instance stayed ready past `resetAfterMs` forgets its failures (backoff and crash loop). */
  private resetStableSlots(now: number): void {
    for (const [instance, slot] of this.slots) {
      if (slot.consecutiveFailures === 0) continue;
      const observed = this.runtimes.get(instance)?.observed;
      const health = observed?.health;
      const service = observed === undefined ? undefined : this.serviceNamed(observed.service);
      if (health?.state !== "ready" || !service) continue;
      if (now - health.since >= service.restart.resetAfterMs) {
        const fresh = recordStable(slot, now);
        this.slots.set(instance, fresh);
        this.store.putSlot(fresh);
      }
    }
  }

  private applyIncident(change: IncidentChange | null): void {
    if (change === null) return;
    if (change.type === "open") {
      const incident = this.store.openIncident(change.incident);
      this.store.addIncidentEvent(incident.id, change.timeline);
      this.emit(
        "incident.opened",
        { code: "incident-opened", message: `${change.incident.instance}: ${change.timeline.detail}` },
        { incident: incident.id, instance: change.incident.instance, service: change.incident.service },
      );
      return;
    }
    const updated = this.store.updateIncident(change.id, change.patch);
    this.store.addIncidentEvent(change.id, change.timeline);
    // A verified incident is closed; a stabilized one waits for the gate (incident.stabilized).
    const type = `incident.${change.timeline.phase}`;
    this.emit(
      type,
      {
        code:
          // Verified: the recovery stayed stable and passed the gate (the event type tells which).
          change.timeline.phase === "verified" || change.timeline.phase === "stabilized"
            ? "stabilized"
            : change.timeline.phase === "mitigated"
              ? "mitigated"
              : change.timeline.phase === "crash-loop"
                ? "crash-loop"
                : "incident-updated",
        message: `${updated.instance}: ${change.timeline.detail}`,
      },
      {
        incident: updated.id,
        instance: updated.instance,
        service: updated.service,
        ttdMs: updated.ttdMs,
        ttrMs: updated.ttrMs,
      },
    );
  }

  /**
   * Instances recorded by an earlier controller: adopt the live ones, reap the rest. `stops`: the
   * stops the last controller left without a result, by instance — a process found gone was ended
   * by that stop (done, no incident: the controller stopped it on purpose); one still running is
   * adopted and its stop carried on (a new journal entry), never put back in membership.
   */
  private async adoptPrevious(stops: ReadonlyMap<string, JournalRecord> = new Map()): Promise<void> {
    const wanted = this.wantedInstances();
    const resumed: Action[] = [];
    this.membershipHoldUntil =
      this.now() +
      Math.max(
        0,
        ...this.fleet.services.map((s) => {
          const startup = s.probes.startup ?? s.probes.readiness;
          return startup === undefined
            ? 0
            : startup.intervalMs * startup.failureThreshold + startup.timeoutMs;
        }),
      );
    for (const record of this.store.listInstances()) {
      if (record.pid === null || record.startTime === null || record.logPath === null) {
        if (!wanted.has(record.name)) this.store.deleteInstance(record.name);
        continue;
      }
      const outcome = await this.driver.adopt(record.name, {
        pid: record.pid,
        startTime: record.startTime,
        logPath: record.logPath,
      });
      const service = this.fleet.services.find((s) => s.name === record.service);
      const stop = stops.get(record.name);
      if (stop !== undefined) {
        this.store.journalResult(stop.id, {
          at: this.now(),
          ok: outcome === "gone",
          detail:
            outcome === "gone"
              ? "the process was gone when the next controller came back: this stop had ended it"
              : "interrupted: the process still ran when the next controller came back, which stops it again",
        });
      }
      if (outcome === "gone" && stop !== undefined) {
        // The stop the last controller was making has ended it: what it would have recorded.
        const exit: ExitInfo = { code: null, signal: null, at: this.now() };
        const afterStop = (stop.data as { afterStop?: string } | null)?.afterStop;
        if (afterStop === "leave-stopped" || !service || !wanted.has(record.name)) {
          this.store.deleteInstance(record.name);
          continue;
        }
        this.store.putInstance({ ...record, pid: null, startTime: null, lastExit: exit });
        this.runtimes.set(
          record.name,
          observation(record, { runtime: "absent", startedAt: record.startedAt, lastExit: exit }),
        );
        continue;
      }
      if (outcome === "adopted" && stop !== undefined && service !== undefined) {
        // Its stop was under way (drained, maybe signalled): carried on, never put back in
        // membership, where it would take requests while it dies.
        this.runtimes.set(
          record.name,
          observation(record, { runtime: "running", startedAt: record.startedAt, lastExit: null }),
        );
        const [code = "adopted", ...words] = stop.reason.split(": ");
        resumed.push({
          type: "stop",
          instance: record.name,
          service: record.service,
          afterStop:
            (stop.data as { afterStop?: string } | null)?.afterStop === "leave-stopped"
              ? "leave-stopped"
              : "restart",
          reason: {
            code: code as ReasonCode,
            message: `${words.join(": ")} (resumed after a controller restart)`,
          },
        });
        continue;
      }
      if (outcome === "adopted") {
        this.runtimes.set(
          record.name,
          observation(record, { runtime: "running", startedAt: record.startedAt, lastExit: null }),
        );
        this.adoptedUnjudged.add(record.name);
        this.emit(
          "instance.adopted",
          { code: "adopted", message: `${record.name} (pid ${record.pid}) was still running; adopted` },
          { instance: record.name, service: record.service, pid: record.pid },
        );
        if (service)
          this.watch(service, record.name, record.port, record.startedAt ?? this.now(), record.release);
        continue;
      }
      const lost: ExitInfo = { code: null, signal: null, at: this.now() };
      this.store.putInstance({ ...record, pid: null, startTime: null, lastExit: lost });
      this.emit(
        "instance.reaped",
        {
          code: "reaped",
          message: `${record.name} (pid ${record.pid}) died while no controller was running`,
        },
        { instance: record.name, service: record.service },
      );
      if (!service || !wanted.has(record.name)) {
        this.store.deleteInstance(record.name);
        continue;
      }
      this.runtimes.set(
        record.name,
        observation(record, { runtime: "exited", startedAt: record.startedAt, lastExit: lost }),
      );
      const open = this.store.openIncidentFor(record.name);
      this.applyIncident(
        onFailure(open, {
          instance: record.name,
          service: record.service,
          kind: "exited",
          reason: "lost-while-controller-down",
          detail: "the process was gone when the controller came back",
          at: this.now(),
          lastGoodAt: null,
        }),
      );
    }
    for (const action of resumed) this.dispatch(action);
  }

  private watch(
    service: ServiceSpec,
    instance: string,
    port: number,
    startedAt: number,
    version: string,
  ): void {
    const release = service.releases[version] ?? service.releases[service.release];
    this.watchedAt.set(instance, this.now());
    this.lastProbeFailure.delete(instance);
    this.prober.watch(
      instance,
      { host: "127.0.0.1", port, cwd: release?.cwd ?? process.cwd(), env: release?.env ?? {} },
      service.probes,
      startedAt,
    );
    // The prober's first verdict is never reported as a change: without this, an instance with
    // no readiness probe (judged by its process) would stay "no probe result yet" for ever. A
    // first "ready" goes the way of any other (event, identity check, its incident mitigated).
    const runtime = this.runtimes.get(instance);
    const initial = this.prober.health(instance);
    if (runtime === undefined || initial === undefined || runtime.observed.health !== null) return;
    if (initial.state === "ready") {
      this.onHealthChange(instance, initial, {
        state: "starting",
        lastGoodAt: null,
        since: startedAt,
        reason: "process started",
      });
    } else {
      runtime.observed = { ...runtime.observed, health: initial };
    }
  }

  private service(name: string): ServiceSpec {
    const service = this.serviceNamed(name);
    if (!service) throw new Error(`unknown service ${name}`);
    return service;
  }

  private slotOf(instance: string): SlotState {
    return this.slots.get(instance) ?? freshSlot(instance, this.now());
  }

  private stabilizeMs(serviceName: string): number {
    return this.serviceNamed(serviceName)?.restart.resetAfterMs ?? 10_000;
  }

  private emit(type: string, why: Reason, data: Record<string, unknown> = {}): void {
    const { instance, service, ...rest } = data;
    const event = this.store.appendEvent({
      at: this.now(),
      type,
      service: typeof service === "string" ? service : undefined,
      instance: typeof instance === "string" ? instance : undefined,
      reason: why.code,
      message: why.message,
      data: rest,
    });
    this.events.onEvent(event);
  }
}

/**
 * Reports the time since the previous mark (or since it was made) under each phase's name: wall
 * time, and this thread's CPU time (what the step cost, whatever else the machine was doing).
 */
function phaseTimer(
  report: (phase: string, seconds: number, cpuSeconds: number) => void,
): (phase: string) => void {
  let last = performance.now();
  let lastCpu = threadCpuMicros();
  return (phase) => {
    const at = performance.now();
    const cpu = threadCpuMicros();
    report(phase, (at - last) / 1000, (cpu - lastCpu) / 1e6);
    last = at;
    lastCpu = cpu;
  };
}

/** CPU time of this thread in µs (of the process where Node cannot tell the thread's). */
function threadCpuMicros(): number {
  const usage = process.threadCpuUsage?.() ?? process.cpuUsage();
  return usage.user + usage.system;
}

/** A stop that replaces a failed instance (not drained, not held back), not a planned one. */
function isFailureStop(why: Reason): boolean {
  return why.code === "liveness-failed" || why.code === "startup-failed";
}

/** The instances the data plane serves `service` with now, as it last reported (draining ones left out). */
function servedInstances(dataPlane: DataPlaneControl, service: string): Set<string> {
  const rows = (dataPlane.state()[service] as { endpoints?: unknown } | undefined)?.endpoints;
  const served = new Set<string>();
  if (!Array.isArray(rows)) return served;
  for (const row of rows as { instance?: unknown; draining?: unknown }[]) {
    if (typeof row.instance === "string" && row.draining !== true) served.add(row.instance);
  }
  return served;
}

/** How long an instance whose probes pass with no listener of its own waits for the next identity check. */
const IDENTITY_RECHECK_MS = 500;

/** A fresh observation of slot `slot` of `service`, running `release`. */
function observation(
  of: { name: string; service: string; slot: number; release: string },
  state: { runtime: ObservedInstance["runtime"]; startedAt: number | null; lastExit: ExitInfo | null },
): Runtime {
  return {
    stopping: false,
    observed: {
      name: of.name,
      service: of.service,
      slot: of.slot,
      release: of.release,
      runtime: state.runtime,
      health: null,
      startedAt: state.startedAt,
      lastExit: state.lastExit,
    },
  };
}
