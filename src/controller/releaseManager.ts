/**
 * Releases at run time: which release each service runs and in which bank, progressive deploys
 * (driving the pure rollout machine and applying its effects), manual rollbacks behind the safety
 * checks, and proving the active release by soaking it within its SLO. Everything it decides is
 * written to the ledger first, so a restarted controller resumes a deploy where it stood.
 */

import { createHash } from "node:crypto";
import semver from "semver";
import { type Reason, type ReasonCode, reason } from "../decide/reasons.ts";
import { planRollback } from "../decide/rollback/planRollback.ts";
import type { LiveFacts, ReleaseHistoryEntry, RollbackPlan } from "../decide/rollback/types.ts";
import { advanceRollout, startRollout } from "../decide/rollout/advanceRollout.ts";
import { desiredBanks } from "../decide/rollout/desiredBanks.ts";
import type { RolloutEffect, RolloutState, WindowStats } from "../decide/rollout/types.ts";
import type { BankTarget } from "../decide/snapshot.ts";
import { HomeostatError } from "../errors.ts";
import type { FleetSpec, ReleaseSpec, ServiceSpec } from "../spec/model.ts";
import type { StateStore } from "../store/index.ts";
import type { RolloutRecord, ServiceState } from "../store/releaseLedger.ts";
import type { DataPlaneControl } from "../traffic/dataPlaneControl.ts";
import { judgeAgainstSlo } from "../verify/canaryAnalysis.ts";
import type { RollbackProgress } from "../verify/incidentRules.ts";
import type { AutomationBrakes } from "./brakes.ts";
import { type CrashBoundary, crashPoint, crashPointAfter } from "./crashPoints.ts";
import { liveSchemaVersion } from "./liveSchema.ts";

/** A manual rollback: start the target beside the current release, switch traffic, stop the current. */
export interface ManualRollbackState {
  id: number;
  service: string;
  from: string;
  to: string;
  fromBank: 0 | 1;
  toBank: 0 | 1;
  phase: "starting" | "done" | "failed";
  startedAt: number;
  endedAt: number | null;
  forced: boolean;
  operatorReason: string | null;
  plan: RollbackPlan;
  reason: string | null;
}

type AnyRollout = RolloutRecord<RolloutState> | RolloutRecord<ManualRollbackState>;

export interface ReadyCounter {
  /** Ready instances of `service` running `release` in `bank`. */
  ready(service: ServiceSpec, release: string, bank: 0 | 1): number;
}

export interface ReleaseManagerOptions {
  fleet: FleetSpec;
  store: StateStore;
  dataPlane: DataPlaneControl | undefined;
  note: (type: string, why: Reason, data: Record<string, unknown>) => void;
  now?: () => number;
  /** Why a service's spare bank is taken by something else (a zone failover's added instances), or null. */
  spareBankHeld?: (service: string) => string | null;
  /** Told when a rollback starts, completes or fails: a rollback is a recovery, verified by the controller. */
  onRollback?: (progress: RollbackProgress) => void;
  /** Automation brakes, asked before every automatic rollback (absent: nothing is ever held). */
  brakes?: Pick<AutomationBrakes, "automated">;
}

export class ReleaseManager {
  /** The applied spec: replaced by {@link setFleet} when a new revision is applied. */
  private fleet: FleetSpec;
  private readonly store: StateStore;
  private readonly dataPlane: DataPlaneControl | undefined;
  private readonly note: ReleaseManagerOptions["note"];
  private readonly now: () => number;
  private readonly spareBankHeld: (service: string) => string | null;
  private readonly onRollback: (progress: RollbackProgress) => void;
  private readonly brakes: Pick<AutomationBrakes, "automated"> | undefined;
  private readonly states = new Map<string, ServiceState>();
  private rollouts: AnyRollout[] = [];
  private readonly servingSince = new Map<string, number>();
  /**
   * Per `service@version`, not before when its proof is looked at again: a release that is proven,
   * failed or not yet passing is re-read every {@link PROOF_RECHECK_MS}, not every pass (a ledger
   * read per service per pass was most of the release manager's pass in a 1,000-service fleet).
   */
  private readonly proofDueAt = new Map<string, number>();

  constructor(options: ReleaseManagerOptions) {
    this.fleet = options.fleet;
    this.store = options.store;
    this.dataPlane = options.dataPlane;
    this.note = options.note;
    this.now = options.now ?? Date.now;
    this.spareBankHeld = options.spareBankHeld ?? (() => null);
    this.onRollback = options.onRollback ?? (() => {});
    this.brakes = options.brakes;
  }

  /** Load or create each service's active release; the fleet file wins when it changed. */
  init(): void {
    const now = this.now();
    const ledger = this.store.ledger;
    for (const datastore of this.fleet.datastores) {
      if (ledger.datastoreVersion(datastore.name) === null) {
        ledger.setDatastoreVersion(
          datastore.name,
          datastore.initialVersion,
          now,
          "initial version from the fleet file",
        );
      }
    }
    for (const service of this.fleet.services) {
      const stored = this.finishProvenSwitch(service, ledger.serviceState(service.name));
      let state: ServiceState;
      if (
        stored !== null &&
        stored.specRelease !== service.release &&
        service.releases[stored.activeRelease] !== undefined &&
        stored.activeRelease !== service.release
      ) {
        // The file names another release than the one running: one path for release changes,
        // the progressive deploy (started by `pendingSwitches`' caller), never a silent replace.
        state = stored;
        this.note(
          "release.switch-pending",
          reason(
            "release-changed",
            `${service.name}: the fleet file now says ${service.release} (${stored.activeRelease} runs): it is deployed progressively, with analysis`,
          ),
          { service: service.name, from: stored.activeRelease, to: service.release },
        );
      } else if (
        stored === null ||
        stored.specRelease !== service.release ||
        service.releases[stored.activeRelease] === undefined
      ) {
        state = {
          service: service.name,
          activeRelease: service.release,
          activeBank: stored?.activeBank ?? 0,
          specRelease: service.release,
          updatedAt: now,
        };
        if (stored !== null && stored.activeRelease !== service.release) {
          this.note(
            "release.changed",
            reason(
              "release-changed",
              `${service.name}: the fleet file now says ${service.release} (was ${stored.activeRelease})`,
            ),
            {
              service: service.name,
            },
          );
          if (ledger.release(service.name, stored.activeRelease))
            ledger.setReleaseStatus(service.name, stored.activeRelease, "superseded");
        }
        ledger.setServiceState(state);
      } else {
        state = stored;
        if (state.activeRelease !== service.release) {
          this.note(
            "release.kept",
            reason(
              "release-changed",
              `${service.name} keeps ${state.activeRelease} (deployed); the fleet file still says ${service.release}`,
            ),
            { service: service.name },
          );
        }
      }
      this.states.set(service.name, state);
      this.recordIfNew(service.name, service.releases[state.activeRelease]!, now);
    }
    this.rollouts = ledger.activeRollouts<RolloutState | ManualRollbackState>() as AnyRollout[];
    this.reopenRollbackIncidents();
    // A restarted controller's proxies start without a split: put back what the rollout stood at.
    for (const record of this.rollouts) {
      const service = this.fleet.services.find((s) => s.name === record.service);
      if (!service || !this.dataPlane?.hasProxy(service.name)) continue;
      this.dataPlane.setWeights(service.name, resumedWeights(record, service));
    }
  }

  activeRelease(service: string): string {
    return this.state(service).activeRelease;
  }

  /**
   * Crash recovery: a deploy saved proven (and finished) while the service's active release was
   * not switched yet — the controller died between the two writes — is switched now, before
   * anything decides on the old active release. Without it the next controller would start the
   * previous release again and stop the proven one: a rollback nobody asked for.
   */
  private finishProvenSwitch(service: ServiceSpec, stored: ServiceState | null): ServiceState | null {
    if (stored === null) return null;
    const ledger = this.store.ledger;
    const last = ledger.rollouts<RolloutState>(service.name, 1)[0];
    if (last === undefined || last.kind !== "deploy" || !last.finished) return stored;
    const s = last.state;
    if (s.phase !== "proven" || service.releases[s.to] === undefined) return stored;
    // Only the switch this very rollout left undone: nothing has changed the release since.
    if (stored.activeRelease !== s.from || stored.activeBank !== s.fromBank) return stored;
    if (last.updatedAt < stored.updatedAt) return stored;
    const now = this.now();
    const switched: ServiceState = { ...stored, activeRelease: s.to, activeBank: s.toBank, updatedAt: now };
    ledger.setServiceState(switched);
    ledger.prune(service.name, service.deploy.historyLimit, s.to);
    this.note(
      "deploy.resumed",
      reason(
        "release-changed",
        `${service.name}: the deploy of ${s.to} was proven when the last controller stopped; ${s.to} is the active release (bank ${s.toBank})`,
      ),
      { service: service.name, rollout: s.id },
    );
    return switched;
  }

  /**
   * Crash recovery: a rollback resumed by this controller (manual, or a deploy rolling back) has
   * its incident; the controller keeps an open one for the same rollback, and opens it if the last
   * controller died before it did.
   */
  private reopenRollbackIncidents(): void {
    for (const record of this.rollouts) {
      if (record.kind === "rollback") {
        const m = record.state as ManualRollbackState;
        if (m.phase !== "starting") continue;
        this.onRollback({
          type: "started",
          service: m.service,
          from: m.from,
          to: m.to,
          at: m.startedAt,
          detail: "rollback resumed after a controller restart",
        });
      } else {
        const d = record.state as RolloutState;
        if (d.phase !== "rolling-back") continue;
        this.onRollback({
          type: "started",
          service: d.service,
          from: d.to,
          to: d.from,
          at: d.failedAt ?? d.phaseStartedAt,
          detail: `automatic rollback resumed after a controller restart: ${d.reason ?? "analysis failed"}`,
        });
      }
    }
  }

  /**
   * Take a newly applied spec. A service new to the fleet starts on its spec release; a changed
   * `release:` is not switched here (see {@link switchRelease}); targets follow the new replicas.
   */
  setFleet(next: FleetSpec): void {
    this.fleet = next;
    const now = this.now();
    const ledger = this.store.ledger;
    for (const service of next.services) {
      const known = this.states.get(service.name) ?? ledger.serviceState(service.name);
      if (known !== null && service.releases[known.activeRelease] !== undefined) {
        this.states.set(service.name, known);
        continue;
      }
      const state: ServiceState = {
        service: service.name,
        activeRelease: service.release,
        activeBank: 0,
        specRelease: service.release,
        updatedAt: now,
      };
      this.setState(state);
      this.recordIfNew(service.name, service.releases[service.release]!, now);
    }
  }

  /**
   * Services whose spec names another release than the active one, with no deploy or rollback
   * under way: each is switched through {@link switchRelease}.
   */
  pendingSwitches(): { service: string; from: string; to: string }[] {
    const out: { service: string; from: string; to: string }[] = [];
    for (const service of this.fleet.services) {
      const state = this.states.get(service.name);
      if (state === undefined || state.activeRelease === service.release) continue;
      if (state.specRelease === service.release) continue; // the file did not move: a deploy did
      if (this.rollouts.some((r) => r.service === service.name)) continue;
      out.push({ service: service.name, from: state.activeRelease, to: service.release });
    }
    return out;
  }

  /** Whether a deploy or rollback of `service` is under way (apply is refused on it meanwhile). */
  inProgress(service: string): string | null {
    const rollout = this.rollouts.find((r) => r.service === service);
    if (rollout === undefined) return null;
    const s = rollout.state as { from: string; to: string };
    return `a ${rollout.kind} of ${service} (${s.from} → ${s.to}) is in progress`;
  }

  /**
   * Switch `service` to `version` as its spec now says: the progressive deploy with analysis when
   * it has a traffic listener (exactly `homeostat deploy`); without one, a rolling replace one
   * instance at a time behind readiness (reconcile's rule), announced. Records the spec's release.
   */
  switchRelease(serviceName: string, version: string): "deploy" | "rolling" {
    const service = this.service(serviceName);
    const state = this.state(serviceName);
    if (service.port !== undefined && this.dataPlane !== undefined) {
      this.deploy(serviceName, version);
      this.setState({ ...this.state(serviceName), specRelease: version, updatedAt: this.now() });
      return "deploy";
    }
    const now = this.now();
    const ledger = this.store.ledger;
    if (!this.recordIfNew(serviceName, service.releases[version]!, now))
      ledger.setReleaseStatus(serviceName, version, "active");
    if (ledger.release(serviceName, state.activeRelease))
      ledger.setReleaseStatus(serviceName, state.activeRelease, "superseded");
    this.setState({ ...state, activeRelease: version, specRelease: version, updatedAt: now });
    this.note(
      "release.rolling",
      reason(
        "release-changed",
        `${serviceName}: ${state.activeRelease} → ${version} one instance at a time behind readiness (no traffic listener: no canary analysis)`,
      ),
      { service: serviceName, from: state.activeRelease, to: version },
    );
    return "rolling";
  }

  /** Which slots run which release, per service: what reconcile works towards. */
  targets(): Map<string, BankTarget[]> {
    const out = new Map<string, BankTarget[]>();
    for (const service of this.fleet.services) {
      const state = this.state(service.name);
      const rollout = this.rollouts.find((r) => r.service === service.name);
      if (rollout?.kind === "rollback") {
        const m = rollout.state as ManualRollbackState;
        out.set(service.name, [bank(service, m.fromBank, m.from), bank(service, m.toBank, m.to)]);
      } else {
        const deploy = rollout ? (rollout.state as RolloutState) : null;
        out.set(
          service.name,
          desiredBanks(service, state.activeRelease, state.activeBank, deploy).map((b) => ({
            bank: b.bank,
            release: b.release,
            slots: b.slots,
          })),
        );
      }
    }
    return out;
  }

  /**
   * True when no deploy or rollback is under way: nothing here needs a pass soon (a soaked
   * release's proof waits for the controller's quiet cadence, at most a second).
   */
  quiet(): boolean {
    return this.rollouts.length === 0;
  }

  /** Advance deploys and rollbacks, and prove active releases that have soaked long enough. */
  tick(counter: ReadyCounter): void {
    const now = this.now();
    for (const record of [...this.rollouts]) {
      const service = this.service(record.service);
      if (record.kind === "rollback")
        this.advanceManual(record as RolloutRecord<ManualRollbackState>, service, counter, now);
      else this.advanceDeploy(record as RolloutRecord<RolloutState>, service, counter, now);
    }
    this.proveActive(now);
  }

  /** Start a progressive deploy of `version`. */
  deploy(serviceName: string, version: string): RolloutState {
    const service = this.service(serviceName);
    const release = service.releases[version];
    if (release === undefined)
      throw new HomeostatError("HS_NOT_FOUND", `${serviceName} has no release ${version} in the fleet file`);
    if (service.port === undefined || this.dataPlane === undefined) {
      throw new HomeostatError(
        "HS_BAD_REQUEST",
        `${serviceName} has no traffic listener: progressive deploys move traffic through the data plane (set \`port\`). For a rolling restart, change \`release\` in the fleet file.`,
      );
    }
    const state = this.state(serviceName);
    if (state.activeRelease === version)
      throw new HomeostatError("HS_BAD_REQUEST", `${serviceName} already runs ${version}`);
    this.assertSpareBankFree(serviceName);
    const denied = this.fleet.security.deniedReleases.find(
      (d) => d.service === serviceName && d.version === version,
    );
    if (denied)
      throw new HomeostatError("HS_BAD_REQUEST", `${serviceName} ${version} is denied: ${denied.reason}`);
    const revoked = release.secrets.find((s) =>
      this.fleet.security.revokedSecrets.some((r) => r.name === s.name && r.version === s.version),
    );
    if (revoked)
      throw new HomeostatError(
        "HS_BAD_REQUEST",
        `${version} uses revoked secret ${revoked.name}@${revoked.version}`,
      );
    const incompatible = this.unmetRequirements(release);
    if (incompatible.length > 0) {
      throw new HomeostatError(
        "HS_BAD_REQUEST",
        `${serviceName} ${version} cannot run in today's world: ${incompatible.join("; ")}`,
      );
    }
    const now = this.now();
    const ledger = this.store.ledger;
    // The rollout, the release's record and its migrations are written in the rollout's own
    // transaction (startRollout runs its callback inside it): a controller killed in between
    // would leave a deploy whose migrations the rollback checks never see.
    const record = ledger.startRollout<RolloutState>(
      serviceName,
      "deploy",
      (id) => {
        const started = startRollout({
          id,
          service,
          from: state.activeRelease,
          to: version,
          fromBank: state.activeBank,
          toBank: state.activeBank === 0 ? 1 : 0,
          now,
        });
        ledger.recordRelease({
          service: serviceName,
          spec: release,
          contentHash: hashOf(release),
          status: "deploying",
          at: now,
        });
        // The new code migrates its datastores as it starts: from now on the world has moved.
        for (const migration of release.migrations)
          ledger.recordMigration(serviceName, version, migration, now);
        return started;
      },
      now,
    );
    crashPoint("deploy.recorded");
    // Until step 1 the new instances take no traffic: without a split, ready instances of both
    // releases would form one pool the moment the canary is ready.
    this.dataPlane.setWeights(serviceName, { [state.activeRelease]: 100, [version]: 0 });
    this.rollouts.push(record);
    this.note(
      "deploy.started",
      reason(
        "operator",
        `${serviceName}: deploying ${version} (from ${state.activeRelease}) in steps ${service.deploy.steps.join("/")} %`,
      ),
      {
        service: serviceName,
        rollout: record.id,
      },
    );
    crashPoint("deploy.started");
    return record.state;
  }

  /** The dry run of a rollback: every check, the decision, the alternative. */
  planRollback(serviceName: string, to?: string): RollbackPlan {
    const service = this.service(serviceName);
    const history = this.store.ledger.history(serviceName, service.deploy.historyLimit);
    const held = this.rollouts.find(
      (r) => r.service === serviceName && r.kind === "deploy" && (r.state as RolloutState).held,
    );
    if (held) {
      const h = held.state as RolloutState;
      return planRollback({
        service,
        history,
        facts: this.facts(service, h.to),
        fleet: this.fleet,
        to: to ?? h.from,
      });
    }
    return planRollback({
      service,
      history,
      facts: this.facts(service),
      fleet: this.fleet,
      ...(to === undefined ? {} : { to }),
    });
  }

  /** Roll back when the checks allow it (or when forced, audited with the operator's reason). */
  private assertSpareBankFree(serviceName: string): void {
    const held = this.spareBankHeld(serviceName);
    if (held !== null) throw new HomeostatError("HS_CONFLICT", held, { details: { service: serviceName } });
  }

  rollback(
    serviceName: string,
    options: { to?: string; force?: boolean; reason?: string },
  ): { plan: RollbackPlan; rollout: ManualRollbackState } {
    const service = this.service(serviceName);
    const inProgress = this.rollouts.find((r) => r.service === serviceName);
    if (inProgress?.kind === "deploy" && (inProgress.state as RolloutState).held?.brake !== undefined) {
      // A person rolls back what a brake held (the API checked the pause first): not automated.
      const record = inProgress as RolloutRecord<RolloutState>;
      const released = this.releaseBrakeHold(record, service, this.now(), options.reason ?? "");
      if (released !== null) return released;
    }
    if (inProgress?.kind === "deploy" && (inProgress.state as RolloutState).held && options.force === true) {
      return this.forceHeldRollback(inProgress as RolloutRecord<RolloutState>, service, options.reason);
    }
    if (inProgress) {
      const held = inProgress.kind === "deploy" ? (inProgress.state as RolloutState).held : undefined;
      throw new HomeostatError(
        "HS_CONFLICT",
        held
          ? `the deploy of ${serviceName} is held: its automatic rollback was refused (${held.refusal}). Force that rollback with \`homeostat rollback ${serviceName} --force --reason …\`.`
          : `a deploy or rollback of ${serviceName} is in progress; it rolls back on its own if its analysis fails`,
      );
    }
    this.assertSpareBankFree(serviceName);
    const plan = this.planRollback(serviceName, options.to);
    // Not a safety check that --force overrides: what the service never ran is a deploy.
    this.assertRanBefore(serviceName, plan.to, options.to);
    if (plan.decision === "refuse" && options.force !== true) {
      const blocking = plan.checks
        .filter((c) => c.severity === "blocking")
        .map((c) => `${c.name}: ${c.detail}`);
      const alternative = plan.alternative ? ` Alternative: ${plan.alternative.description}` : "";
      throw new HomeostatError(
        "HS_ROLLBACK_REFUSED",
        `rollback of ${serviceName} to ${plan.to} refused — ${blocking.join("; ")}.${alternative}`,
        {
          details: plan,
        },
      );
    }
    if (options.force === true && (options.reason === undefined || options.reason.trim() === "")) {
      throw new HomeostatError("HS_BAD_REQUEST", "--force needs --reason: forced rollbacks are audited");
    }
    const target = service.releases[plan.to] ?? this.store.ledger.release(serviceName, plan.to)?.spec;
    if (target === undefined)
      throw new HomeostatError("HS_NOT_FOUND", `${serviceName} has no release ${plan.to}`);
    if (service.releases[plan.to] === undefined) {
      throw new HomeostatError(
        "HS_BAD_REQUEST",
        `${plan.to} is in the history but no longer in the fleet file: add it back to roll back to it`,
      );
    }
    const state = this.state(serviceName);
    const now = this.now();
    const record = this.store.ledger.startRollout<ManualRollbackState>(
      serviceName,
      "rollback",
      (id) => ({
        id,
        service: serviceName,
        from: state.activeRelease,
        to: plan.to,
        fromBank: state.activeBank,
        toBank: state.activeBank === 0 ? 1 : 0,
        phase: "starting",
        startedAt: now,
        endedAt: null,
        forced: options.force === true,
        operatorReason: options.reason ?? null,
        plan,
        reason: null,
      }),
      now,
    );
    crashPoint("rollback.recorded");
    this.rollouts.push(record);
    const forced = options.force === true ? ` FORCED despite "${plan.decision}" (${options.reason})` : "";
    this.note(
      "rollback.started",
      reason(
        "operator",
        `${serviceName}: rolling back ${state.activeRelease} → ${plan.to} (${plan.decision})${forced}`,
      ),
      {
        service: serviceName,
        rollout: record.id,
        decision: plan.decision,
        forced: options.force === true,
      },
    );
    this.onRollback({
      type: "started",
      service: serviceName,
      from: state.activeRelease,
      to: plan.to,
      at: now,
      detail: `rollback asked${options.reason ? `: ${options.reason}` : ""} (${plan.decision})${forced}`,
    });
    crashPoint("rollback.started");
    return { plan, rollout: record.state };
  }

  /**
   * A rollback goes back only to a release this service has run (one in its ledger history other
   * than the one running now), forced or not: anything else is a deploy, with its canary steps and
   * analysis. `to` is the version the operator asked for, `target` the plan's ("" when none).
   */
  private assertRanBefore(serviceName: string, target: string, to: string | undefined): void {
    const running = this.activeRelease(serviceName);
    const asked = to ?? target;
    if (asked !== "" && asked !== running && this.store.ledger.release(serviceName, asked) !== null) return;
    const ran = this.store.ledger
      .history(serviceName, Number.MAX_SAFE_INTEGER)
      .map((entry) => entry.version)
      .filter((version) => version !== running);
    const others =
      ran.length === 0 ? "it has run no other release" : `releases it has run: ${ran.join(", ")}`;
    const message =
      asked === ""
        ? `${serviceName} has no release to roll back to: ${running} is the only one it has run`
        : asked === running
          ? `${serviceName} ${asked} is what runs now: there is nothing to roll back to (${others})`
          : `${serviceName} has never run ${asked}: a rollback goes back only to a release this service has run (${others}), even when forced. To run ${asked}, deploy it: \`homeostat deploy ${serviceName} ${asked}\``;
    throw new HomeostatError("HS_ROLLBACK_NOT_RUN", message, {
      details: { service: serviceName, to: asked, running, ran },
    });
  }

  /** Asks the brake again about a rollback it held; carries it out once allowed. */
  private retryBrakeHold(record: RolloutRecord<RolloutState>, service: ServiceSpec, now: number): void {
    const verdict = this.brakes?.automated({
      kind: "rollback",
      service: service.name,
      target: service.name,
      disrupts: [],
    });
    if (verdict === undefined || verdict.allowed) this.releaseBrakeHold(record, service, now, null);
  }

  /**
   * Carries out the rollback a brake held, as the machine decided it then, by the brake's leave
   * (`operatorReason` null) or by a person's hand. The safety checks are passed again first: the
   * world may have moved while it was held; if they refuse now, it stays held for an operator like
   * any refused rollback (null is returned).
   */
  private releaseBrakeHold(
    record: RolloutRecord<RolloutState>,
    service: ServiceSpec,
    now: number,
    operatorReason: string | null,
  ): { plan: RollbackPlan; rollout: ManualRollbackState } | null {
    const held = record.state.held!;
    const plan = planRollback({
      service,
      history: this.store.ledger.history(service.name, service.deploy.historyLimit),
      facts: this.facts(service, record.state.to),
      fleet: this.fleet,
      to: record.state.from,
    });
    if (plan.decision === "refuse") {
      const refusal = plan.checks
        .filter((c) => c.severity === "blocking")
        .map((c) => `${c.name}: ${c.detail}`)
        .join("; ");
      const { brake: _, ...bySafety } = held;
      record.state = { ...record.state, held: { ...bySafety, refusal } };
      this.store.ledger.saveRollout(record.id, record.state, false, now);
      this.note(
        "deploy.rollback-refused",
        reason(
          "rollback-refused",
          `${service.name}: the rollback to ${record.state.from} the brake held is now refused: ${refusal}. Traffic stays as it is until an operator forces it: \`homeostat rollback ${service.name} --force --reason …\`.`,
        ),
        { service: service.name, rollout: record.id, plan },
      );
      return null;
    }
    for (const effect of held.pending.effects) this.apply(service, held.pending.state, effect);
    record.state = { ...held.pending.state };
    this.store.ledger.saveRollout(record.id, record.state, false, now);
    const s = record.state;
    const how =
      operatorReason === null
        ? `automatic rollback (${held.cause}), held ${Math.round((now - held.at) / 1000)}s by the brake`
        : `rollback by hand of what the brake held (${held.cause})${operatorReason === "" ? "" : `: ${operatorReason}`}`;
    if (operatorReason !== null) {
      this.note("rollback.started", reason("operator", `${service.name}: ${how}, ${s.to} → ${s.from}`), {
        service: service.name,
        rollout: record.id,
        decision: plan.decision,
        forced: false,
      });
    }
    this.onRollback({ type: "started", service: service.name, from: s.to, to: s.from, at: now, detail: how });
    return { plan, rollout: heldRollbackState(s, service.name, now, false, operatorReason, plan) };
  }

  /** An operator forces the rollback a held deploy wanted: apply exactly what the machine decided. */
  private forceHeldRollback(
    record: RolloutRecord<RolloutState>,
    service: ServiceSpec,
    operatorReason: string | undefined,
  ): { plan: RollbackPlan; rollout: ManualRollbackState } {
    if (operatorReason === undefined || operatorReason.trim() === "") {
      throw new HomeostatError("HS_BAD_REQUEST", "--force needs --reason: forced rollbacks are audited");
    }
    const held = record.state.held!;
    const now = this.now();
    const plan = planRollback({
      service,
      history: this.store.ledger.history(service.name, service.deploy.historyLimit),
      facts: this.facts(service, record.state.to),
      fleet: this.fleet,
      to: record.state.from,
    });
    for (const effect of held.pending.effects) this.apply(service, held.pending.state, effect);
    record.state = { ...held.pending.state };
    this.store.ledger.saveRollout(record.id, record.state, false, now);
    const s = record.state;
    this.note(
      "rollback.started",
      reason(
        "operator",
        `${service.name}: rolling back ${s.to} → ${s.from} FORCED despite "refuse" (${operatorReason})`,
      ),
      { service: service.name, rollout: record.id, decision: plan.decision, forced: true },
    );
    this.onRollback({
      type: "started",
      service: service.name,
      from: s.to,
      to: s.from,
      at: now,
      detail: `forced rollback of a held deploy: ${operatorReason}`,
    });
    return { plan, rollout: heldRollbackState(s, service.name, now, true, operatorReason, plan) };
  }

  releases(serviceName: string): { active: string; history: ReleaseHistoryEntry[]; rollouts: unknown[] } {
    const service = this.service(serviceName);
    return {
      active: this.activeRelease(serviceName),
      history: this.store.ledger.history(serviceName, service.deploy.historyLimit),
      rollouts: this.store.ledger
        .rollouts(serviceName, 10)
        .map((r) => ({ id: r.id, kind: r.kind, finished: r.finished, state: r.state })),
    };
  }

  /** The world as it is: live schema versions, served APIs, dependents, applied migrations. */
  facts(service: ServiceSpec, currentVersion?: string): LiveFacts {
    const ledger = this.store.ledger;
    const schemas: Record<string, number> = {};
    for (const d of this.fleet.datastores) schemas[d.name] = liveSchemaVersion(d, ledger, this.now()).version;
    const servedApis: Record<string, string | undefined> = {};
    for (const s of this.fleet.services)
      servedApis[s.name] = s.releases[this.activeRelease(s.name)]?.provides.api;
    const dependents: LiveFacts["dependents"] = [];
    for (const s of this.fleet.services) {
      const running = s.releases[this.activeRelease(s.name)];
      const needs = running?.requires.apis[service.name];
      if (running && needs !== undefined)
        dependents.push({ service: s.name, version: running.version, requires: needs });
    }
    const activeVersion = currentVersion ?? this.activeRelease(service.name);
    const current =
      ledger.release(service.name, activeVersion) ??
      ({
        service: service.name,
        version: activeVersion,
        spec: service.releases[activeVersion]!,
        contentHash: hashOf(service.releases[activeVersion]!),
        status: "active",
        deployedAt: this.now(),
        provenAt: null,
        evidence: null,
      } satisfies ReleaseHistoryEntry);
    return {
      now: this.now(),
      current,
      schemas,
      servedApis,
      dependents,
      appliedMigrations: ledger.appliedMigrations(),
      security: this.fleet.security,
    };
  }

  private advanceDeploy(
    record: RolloutRecord<RolloutState>,
    service: ServiceSpec,
    counter: ReadyCounter,
    now: number,
  ): void {
    const s = record.state;
    if (s.held) {
      // Held by a brake: it goes ahead once the brake lets it (a resume, the hour sliding on).
      if (s.held.brake !== undefined) this.retryBrakeHold(record, service, now);
      return; // held by the safety checks: an operator decides
    }
    const stats = (release: string, windowMs: number): WindowStats =>
      this.dataPlane?.stats.window({
        service: service.name,
        release,
        windowMs: Math.max(1000, Math.min(windowMs, 300_000)),
      }) ?? EMPTY_WINDOW;
    const { state, effects } = advanceRollout(s, service, {
      now,
      canaryReady: counter.ready(service, s.to, s.toBank),
      canaryWanted: service.replicas,
      stableReady: counter.ready(service, s.from, s.fromBank),
      stats,
      statsLagMs: this.statsLagMs(now),
    });
    if (state.phase === "rolling-back" && s.phase !== "rolling-back") {
      // Automatic rollbacks pass the same safety checks as manual ones.
      const plan = planRollback({
        service,
        history: this.store.ledger.history(service.name, service.deploy.historyLimit),
        facts: this.facts(service, s.to),
        fleet: this.fleet,
        to: s.from,
      });
      if (plan.decision === "refuse") {
        const refusal = plan.checks
          .filter((c) => c.severity === "blocking")
          .map((c) => `${c.name}: ${c.detail}`)
          .join("; ");
        const held: RolloutState = {
          ...s,
          held: { at: now, cause: state.reason ?? "analysis failed", refusal, pending: { state, effects } },
        };
        record.state = held;
        this.store.ledger.saveRollout(record.id, held, false, now);
        const alternative = plan.alternative ? ` Alternative: ${plan.alternative.description}` : "";
        this.note(
          "deploy.rollback-refused",
          reason(
            "rollback-refused",
            `${service.name}: wanted to roll back to ${s.from} (${state.reason ?? "analysis failed"}) but ${refusal}. Traffic stays as it is until an operator forces the rollback: \`homeostat rollback ${service.name} --force --reason …\`.${alternative}`,
          ),
          { service: service.name, rollout: s.id, plan },
        );
        return;
      }
      const braked = this.brakes?.automated({
        kind: "rollback",
        service: service.name,
        target: service.name,
        disrupts: [],
      });
      if (braked !== undefined && !braked.allowed) {
        // Held like a refused rollback (nothing moves, the deploy stays where it is), but only
        // until the brake lets go; the brakes recorded the hold as an event and escalated.
        const held: RolloutState = {
          ...s,
          held: {
            at: now,
            cause: state.reason ?? "analysis failed",
            refusal: braked.hold.reason.message,
            pending: { state, effects },
            brake: braked.hold.rule,
          },
        };
        record.state = held;
        this.store.ledger.saveRollout(record.id, held, false, now);
        return;
      }
      if (plan.decision === "rollback-with-warnings") {
        const warnings = plan.checks.filter((c) => c.severity === "warning").map((c) => c.detail);
        this.note(
          "deploy.rollback-warnings",
          reason(
            "rollback-warnings",
            `${service.name}: rolling back to ${s.from} with warnings: ${warnings.join("; ")}`,
          ),
          { service: service.name, rollout: s.id, plan },
        );
      }
      this.onRollback({
        type: "started",
        service: service.name,
        from: s.to,
        to: s.from,
        at: now,
        detail: `automatic rollback: ${state.reason ?? "analysis failed"}`,
      });
    }
    for (const effect of effects) this.apply(service, state, effect);
    const transition = transitionOf(s, state);
    if (transition?.applied) crashPoint(transition.applied);
    const finished = state.phase === "proven" || state.phase === "rolled-back";
    if (state === s && effects.length === 0) return;
    record.state = state;
    this.store.ledger.saveRollout(record.id, state, finished, now);
    if (transition !== null) {
      crashPoint(transition.saved);
      if (transition.pushed !== undefined && this.dataPlane !== undefined) {
        const dataPlane = this.dataPlane;
        crashPointAfter(transition.pushed, () => dataPlane.settled());
      }
    }
    if (!finished) return;
    if (state.phase === "rolled-back") {
      this.onRollback({
        type: "done",
        service: service.name,
        from: state.to,
        to: state.from,
        at: now,
        detail: `${state.from} serves all traffic again`,
      });
    }
    this.rollouts = this.rollouts.filter((r) => r !== record);
    const ledger = this.store.ledger;
    const current = this.state(service.name);
    if (state.phase === "proven") {
      this.setState({ ...current, activeRelease: state.to, activeBank: state.toBank, updatedAt: now });
    }
    ledger.prune(service.name, service.deploy.historyLimit, this.activeRelease(service.name));
  }

  private apply(service: ServiceSpec, state: RolloutState, effect: RolloutEffect): void {
    const ledger = this.store.ledger;
    switch (effect.type) {
      case "set-weights":
        this.dataPlane?.setWeights(service.name, effect.weights);
        this.note(
          "traffic.weights",
          reason(
            "operator",
            `${service.name}: ${Object.entries(effect.weights)
              .map(([v, w]) => `${v}=${w}%`)
              .join(", ")}`,
          ),
          {
            service: service.name,
            weights: effect.weights,
            rollout: state.id,
          },
        );
        return;
      case "stop-bank":
        // Nothing to do here: the bank leaves the desired set, and reconcile drains and stops it.
        return;
      case "mark-release":
        if (ledger.release(service.name, effect.version) === null) {
          const spec = service.releases[effect.version];
          if (spec)
            ledger.recordRelease({
              service: service.name,
              spec,
              contentHash: hashOf(spec),
              status: effect.status,
              at: this.now(),
            });
        }
        ledger.setReleaseStatus(service.name, effect.version, effect.status, effect.evidence);
        return;
      case "event":
        this.note(
          `deploy.${effect.event.replace(/^rollout-/, "")}`,
          reason(effect.reason as ReasonCode, effect.message),
          {
            service: service.name,
            rollout: state.id,
          },
        );
        return;
    }
  }

  private advanceManual(
    record: RolloutRecord<ManualRollbackState>,
    service: ServiceSpec,
    counter: ReadyCounter,
    now: number,
  ): void {
    const s = record.state;
    if (s.phase !== "starting") return;
    const ready = counter.ready(service, s.to, s.toBank);
    const deadline = s.startedAt + service.deploy.stepDeadlineMs;
    let next: ManualRollbackState | null = null;
    if (ready >= service.replicas) {
      this.dataPlane?.setWeights(service.name, { [s.to]: 100, [s.from]: 0 });
      const ledger = this.store.ledger;
      ledger.setReleaseStatus(service.name, s.from, "rolled-back");
      const target = ledger.release(service.name, s.to);
      if (target === null) {
        const spec = service.releases[s.to]!;
        ledger.recordRelease({
          service: service.name,
          spec,
          contentHash: hashOf(spec),
          status: "active",
          at: now,
        });
      } else if (target.status !== "proven") {
        ledger.setReleaseStatus(service.name, s.to, "active");
      }
      this.setState({
        ...this.state(service.name),
        activeRelease: s.to,
        activeBank: s.toBank,
        updatedAt: now,
      });
      next = { ...s, phase: "done", endedAt: now, reason: `${s.to} is ready and serves all traffic` };
      this.onRollback({
        type: "done",
        service: service.name,
        from: s.from,
        to: s.to,
        at: now,
        detail: `${s.to} is ready and serves all traffic`,
      });
      this.note(
        "rollback.done",
        reason(
          "operator",
          `${service.name}: ${s.to} serves 100 % after ${Math.round((now - s.startedAt) / 100) / 10}s`,
        ),
        {
          service: service.name,
          rollout: s.id,
        },
      );
    } else if (now > deadline) {
      next = {
        ...s,
        phase: "failed",
        endedAt: now,
        reason: `${s.to} not ready within ${service.deploy.stepDeadlineMs / 1000}s (${ready} of ${service.replicas}); ${s.from} keeps serving`,
      };
      this.onRollback({
        type: "failed",
        service: service.name,
        from: s.from,
        to: s.to,
        at: now,
        detail: next.reason ?? "rollback failed",
      });
      this.note("rollback.failed", reason("action-failed", `${service.name}: ${next.reason}`), {
        service: service.name,
        rollout: s.id,
      });
    }
    if (next === null) return;
    if (next.phase === "done") crashPoint("rollback.switched");
    record.state = next;
    this.store.ledger.saveRollout(record.id, next, true, now);
    if (next.phase === "done") crashPoint("rollback.done-saved");
    this.rollouts = this.rollouts.filter((r) => r !== record);
  }

  /**
   * How far the data plane's traffic figures lag behind `now`: the age of its last report (a
   * process of its own reports every 250 ms; one that is not connected lags without bound), 0 for
   * a data plane counting in this process.
   */
  private statsLagMs(now: number): number {
    const status = this.dataPlane?.status();
    if (status === undefined || status.mode !== "process") return 0;
    if (!status.connected || status.lastReportAt === null) return Number.POSITIVE_INFINITY;
    return Math.max(0, now - status.lastReportAt);
  }

  /** An active, unproven release that has served within its SLO for the soak window becomes proven. */
  private proveActive(now: number): void {
    if (this.dataPlane === undefined) return;
    for (const service of this.fleet.services) {
      if (service.port === undefined || this.rollouts.some((r) => r.service === service.name)) continue;
      const version = this.activeRelease(service.name);
      const key = `${service.name}@${version}`;
      const known = this.servingSince.get(key);
      const soakMs = service.deploy.soakMs;
      // Within its soak window nothing is judged: its ledger entry need not be read.
      if (known !== undefined && now - known < soakMs) continue;
      if (now < (this.proofDueAt.get(key) ?? Number.NEGATIVE_INFINITY)) continue;
      this.proofDueAt.set(key, now + PROOF_RECHECK_MS);
      const entry = this.store.ledger.release(service.name, version);
      if (entry === null || entry.status === "proven" || entry.status === "failed") continue;
      const since = known ?? now;
      this.servingSince.set(key, since);
      if (now - since < soakMs) continue;
      const window = this.dataPlane.stats.window({
        service: service.name,
        release: version,
        windowMs: Math.min(soakMs, 300_000),
      });
      const judged = judgeAgainstSlo(window, service.slo, service.deploy.analysis.minRequests);
      if (judged.verdict !== "pass") continue;
      const evidence = {
        windowMs: Math.min(soakMs, 300_000),
        requests: window.requests,
        errorRate: window.errorRate ?? 0,
        p99Ms: window.p99Ms,
        at: now,
      };
      this.store.ledger.setReleaseStatus(service.name, version, "proven", evidence);
      this.note(
        "release.proven",
        reason("stabilized", `${service.name} ${version} proven: ${judged.reasons.join("; ")}`),
        { service: service.name, evidence },
      );
    }
  }

  private unmetRequirements(release: ReleaseSpec): string[] {
    const problems: string[] = [];
    const ledger = this.store.ledger;
    for (const [datastore, range] of Object.entries(release.requires.schemas)) {
      const declared = this.fleet.datastores.find((d) => d.name === datastore);
      const live = declared
        ? liveSchemaVersion(declared, ledger, this.now()).version
        : ledger.datastoreVersion(datastore)?.version;
      // A release that migrates this datastore brings its own schema: judge it after its migrations.
      const migrated = release.migrations.filter((m) => m.datastore === datastore).at(-1)?.to;
      const effective = migrated ?? live;
      if (effective === undefined || !satisfiesInt(effective, range)) {
        problems.push(`needs ${datastore} schema ${range}, which is at ${live ?? "an unknown version"}`);
      }
    }
    for (const [dependency, range] of Object.entries(release.requires.apis)) {
      const served = this.fleet.services.find((s) => s.name === dependency)?.releases[
        this.activeRelease(dependency)
      ]?.provides.api;
      if (served === undefined || !satisfiesVersion(served, range)) {
        problems.push(`needs ${dependency} API ${range}, which serves ${served ?? "no declared version"}`);
      }
    }
    return problems;
  }

  /** Records `release` in the ledger as active unless it is there already; false when it was. */
  private recordIfNew(serviceName: string, release: ReleaseSpec, at: number): boolean {
    const ledger = this.store.ledger;
    if (ledger.release(serviceName, release.version) !== null) return false;
    ledger.recordRelease({
      service: serviceName,
      spec: release,
      contentHash: hashOf(release),
      status: "active",
      at,
    });
    return true;
  }

  private setState(state: ServiceState): void {
    this.states.set(state.service, state);
    this.store.ledger.setServiceState(state);
  }

  private state(service: string): ServiceState {
    const state = this.states.get(service);
    if (!state) throw new HomeostatError("HS_NOT_FOUND", `no service ${service}`);
    return state;
  }

  private service(name: string): ServiceSpec {
    const service = this.fleet.services.find((s) => s.name === name);
    if (!service) throw new HomeostatError("HS_NOT_FOUND", `no service ${name}`);
    return service;
  }
}

/** How often a release's proof is looked at again once its soak window is over (see proofDueAt). */
const PROOF_RECHECK_MS = 5_000;

const EMPTY_WINDOW: WindowStats = {
  requests: 0,
  errors: 0,
  errorRate: null,
  p50Ms: null,
  p99Ms: null,
  rps: 0,
};

function bank(service: ServiceSpec, b: 0 | 1, release: string): BankTarget {
  return {
    bank: b,
    release,
    slots: Array.from({ length: service.replicas }, (_, i) => b * service.replicas + i),
  };
}

export function hashOf(release: ReleaseSpec): string {
  return createHash("sha256").update(JSON.stringify(release)).digest("hex");
}

function satisfiesInt(version: number, range: string): boolean {
  return semver.satisfies(`${version}.0.0`, range);
}

function satisfiesVersion(version: string, range: string): boolean {
  return semver.valid(version) !== null && semver.satisfies(version, range);
}

/** The crash points of a rollout's move from `before` to `after` (null: no phase or step change). */
function transitionOf(
  before: RolloutState,
  after: RolloutState,
): { applied?: CrashBoundary; saved: CrashBoundary; pushed?: CrashBoundary } | null {
  if (before.phase === after.phase && before.stepIndex === after.stepIndex) return null;
  switch (after.phase) {
    case "stepping":
      return { applied: "deploy.step-applied", saved: "deploy.step-saved", pushed: "deploy.step-pushed" };
    case "soaking":
      return { applied: "deploy.promoted-applied", saved: "deploy.promoted-saved" };
    case "proven":
      return { applied: "deploy.proven-applied", saved: "deploy.proven-saved" };
    case "rolling-back":
      return { applied: "deploy.rolling-back-applied", saved: "deploy.rolling-back-saved" };
    case "rolled-back":
      return { saved: "deploy.rolled-back-saved" };
    case "starting":
      return null;
  }
}

/** The traffic split a rollout in progress stood at, for a controller that restarts mid-way. */
function resumedWeights(record: AnyRollout, service: ServiceSpec): Record<string, number> {
  if (record.kind === "rollback") {
    const m = record.state as ManualRollbackState;
    return { [m.from]: 100, [m.to]: 0 };
  }
  const s = record.state as RolloutState;
  switch (s.phase) {
    case "stepping": {
      const weight = service.deploy.steps[s.stepIndex] ?? 0;
      return { [s.from]: 100 - weight, [s.to]: weight };
    }
    case "soaking":
    case "proven":
      return { [s.from]: 0, [s.to]: 100 };
    default:
      return { [s.from]: 100, [s.to]: 0 };
  }
}

/** The rollback a held deploy wanted, as it starts (by the brake's release or forced by an operator). */
function heldRollbackState(
  s: RolloutState,
  service: string,
  now: number,
  forced: boolean,
  operatorReason: ManualRollbackState["operatorReason"],
  plan: RollbackPlan,
): ManualRollbackState {
  return {
    id: s.id,
    service,
    from: s.to,
    to: s.from,
    fromBank: s.toBank,
    toBank: s.fromBank,
    phase: "starting",
    startedAt: now,
    endedAt: null,
    forced,
    operatorReason,
    plan,
    reason: null,
  };
}
