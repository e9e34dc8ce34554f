/**
 * `homeostat apply`: take a new fleet file while the controller runs. Validates it (any error
 * changes nothing), diffs it against the applied spec, refuses what is unsafe now (a deploy,
 * rollback or failover holding an affected service; a release definition edited under the same
 * name, unless allowed in place), records the revision, then converges: the new spec goes to
 * every component at once (live settings, the data plane's feed, scale, added and removed
 * services, which reconcile then works towards, draining before it stops), a changed `release:`
 * goes through the progressive deploy exactly like `homeostat deploy`, and in-place changes roll
 * one instance at a time behind readiness, each within the service's deploy.stepDeadline (else
 * the revision fails and what it rolled goes back, one at a time behind readiness). The revision
 * is marked applied once converged; a controller that finds one still applying resumes it.
 */

import { launchFor } from "../act/launchFor.ts";
import { thisMachine } from "../dataplane/haproxy/machineChecks.ts";
import { type ReasonCode, reason } from "../decide/reasons.ts";
import { describeExit } from "../decide/reconcile.ts";
import type { ObservedInstance } from "../decide/snapshot.ts";
import { HomeostatError } from "../errors.ts";
import { diffFleets, type FleetDiff, type SpecChange } from "../spec/diff.ts";
import { parseFleet } from "../spec/loadFleet.ts";
import type { FleetSpec, ReleaseSpec, ServiceSpec } from "../spec/model.ts";
import type { StateStore } from "../store/index.ts";
import type { SpecRevision } from "../store/specRevisions.ts";
import { driftOf, launchFactsOf } from "../verify/convergence.ts";
import type { Controller } from "./controller.ts";
import { crashPoint } from "./crashPoints.ts";
import type { FailoverManager } from "./failoverManager.ts";
import type { FleetHolder } from "./fleetHolder.ts";
import { hashOf, type ReleaseManager } from "./releaseManager.ts";

/** What the operator asks (`POST /v1/apply`). */
export interface ApplyRequest {
  /** The fleet file's full text (ignored with `revision`). */
  text?: string;
  /** Where the text comes from: names it in errors and anchors relative paths. */
  file?: string;
  reason?: string;
  dryRun?: boolean;
  allowInPlace?: boolean;
  /** Re-apply this earlier revision's text instead. */
  revision?: number;
}

/** The plan (and, unless a dry run, the revision being converged to). */
export interface ApplyAnswer {
  dryRun: boolean;
  /** The revision recorded; null on a dry run or when there is nothing to change. */
  revision: number | null;
  state: "planned" | "applying" | "applied" | "unchanged";
  changes: SpecChange[];
  /** One line per step, in the order it is carried out. */
  steps: string[];
}

/** How far the last apply got (`GET /v1/apply`). */
export interface ApplyProgress {
  revision: number | null;
  state: "idle" | "applying" | "applied" | "failed";
  /**
   * What it still waits for; empty once converged. On a failed revision: the instances it rolled
   * in place still going back to the previous definition (empty once none runs the failed one).
   */
  waiting: string[];
  error: string | null;
}

export interface ApplyManagerOptions {
  holder: FleetHolder;
  store: StateStore;
  controller: Controller;
  releases: ReleaseManager;
  failover: FailoverManager;
  /** Closes a removed service's listener once its instances are gone. */
  retireListener?: (service: string) => void;
  /** Whether a data plane runs (a first traffic port needs a restart). */
  hasDataPlane: boolean;
  now?: () => number;
  /** How often convergence is checked. Default 250 ms. */
  checkMs?: number;
}

interface Converging {
  revision: number;
  fleet: FleetSpec;
  /** Services switched to a new release by this apply (deploy or rollback under way or done). */
  switches: Map<string, string>;
  /** Instances still to be rolled in place, in order. */
  roll: string[];
  /** The instance being rolled now, its service, and since when (its deadline counts from then). */
  rolling: { name: string; service: string; since: number } | null;
  /** Instances already rolled in place (the one rolling now included), in roll order. */
  rolled: { name: string; service: string }[];
  /** The ledger's definitions this revision's in-place edits replaced: put back if it fails. */
  recordedBefore: { service: string; spec: ReleaseSpec; contentHash: string }[];
  retiring: Set<string>;
  /**
   * The spec in force before this revision: put back if it fails, so the spec components read
   * is the applied revision's again (null: keep the current one).
   */
  previous: FleetSpec | null;
}

/**
 * A failed in-place roll being undone: the instances it rolled are rolled back to the spec in
 * force again (the previous one), one at a time behind readiness, so none is left on the failed
 * definition.
 */
interface Undoing {
  revision: number;
  /** Still to roll back, in order (the one that did not get ready first). */
  queue: { name: string; service: string }[];
  /** The instance being rolled back now and since when. */
  current: { name: string; service: string; since: number } | null;
  error: string;
}

/** Refusals that mean "not now / not like this": nothing was applied. */
function refused(message: string, details: Record<string, unknown> = {}): HomeostatError {
  return new HomeostatError("HS_APPLY_REFUSED", message, { details });
}

export class ApplyManager {
  readonly #o: ApplyManagerOptions;
  readonly #now: () => number;
  #converging: Converging | null = null;
  #undoing: Undoing | null = null;
  #last: ApplyProgress = { revision: null, state: "idle", waiting: [], error: null };
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;

  constructor(options: ApplyManagerOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** Where the last apply stands. */
  progress(): ApplyProgress {
    return { ...this.#last, waiting: [...this.#last.waiting] };
  }

  /**
   * Plan and (unless `dryRun`) start applying. Throws HS_SPEC_INVALID (file:line:col problems),
   * HS_CONFLICT (a deploy, rollback, failover or apply holds an affected service) or
   * HS_APPLY_REFUSED; in each case nothing changed.
   */
  apply(request: ApplyRequest, who: string): ApplyAnswer {
    const { text, file, fromRevision } = this.#source(request);
    const parsed = parseFleet(text, file, thisMachine);
    if (!parsed.ok) {
      throw new HomeostatError(
        "HS_SPEC_INVALID",
        parsed.errors
          .map((e) => `${e.file}:${e.line}:${e.col}: ${e.path === "" ? "" : `${e.path}: `}${e.message}`)
          .join("\n"),
        { details: { errors: parsed.errors } },
      );
    }
    const next = parsed.fleet;
    const applied = this.#o.holder.current();
    const diff = diffFleets(applied, next);
    const steps = this.#check(applied, next, diff, request.allowInPlace === true, fromRevision);
    if (request.dryRun === true || diff.empty) {
      return {
        dryRun: request.dryRun === true,
        revision: null,
        state: diff.empty ? "unchanged" : "planned",
        changes: diff.changes,
        steps,
      };
    }
    // What to put back if this revision fails: the applied revision's spec (not that of one it
    // supersedes).
    const previous = this.#converging?.previous ?? this.#o.holder.current();
    if (this.#converging !== null) {
      // A newer revision takes over from one still converging (its deploys were checked above).
      this.#o.store.revisions.markFailed(
        this.#converging.revision,
        this.#now(),
        "superseded by a newer revision before it converged",
      );
    }
    const revision = this.#o.store.revisions.record({
      file: next.file,
      text,
      specJson: JSON.stringify(next),
      diffJson: JSON.stringify(diff),
      who,
      reason: request.reason ?? (fromRevision === null ? null : `back to revision ${fromRevision}`),
      at: this.#now(),
    });
    crashPoint("apply.recorded");
    this.#note(
      "apply.started",
      "spec-applied",
      `revision ${revision.number} by ${who}: ${diff.changes.length} change(s)${request.reason ? ` (${request.reason})` : ""}`,
      { revision: revision.number },
    );
    this.#begin(revision.number, next, diff, fromRevision !== null, previous);
    crashPoint("apply.begun");
    return { dryRun: false, revision: revision.number, state: "applying", changes: diff.changes, steps };
  }

  /** On start: a revision still `applying` (the last controller died converging) is resumed. */
  resume(): void {
    const pending = this.#o.store.revisions.pending();
    if (pending === null) {
      // Where the last apply stands survives a restart: one that finished just before the last
      // controller died (its `apply.done` unsaid) is applied, not "idle".
      const last = this.#o.store.revisions.list({ limit: 20 }).find((r) => r.who !== "homeostat up");
      if (last !== undefined && (last.state === "applied" || last.state === "failed"))
        this.#last = { revision: last.number, state: last.state, waiting: [], error: last.error };
      return;
    }
    const parsed = parseFleet(pending.text, pending.file);
    if (!parsed.ok) {
      this.#o.store.revisions.markFailed(pending.number, this.#now(), "its text no longer validates");
      return;
    }
    this.#note(
      "apply.resumed",
      "spec-applied",
      `revision ${pending.number} was being applied when the last controller stopped: converging to it`,
      { revision: pending.number },
    );
    // The spec in force already is the pending revision's (see startingFleet): if it fails, the
    // last applied revision's is put back.
    const applied = this.#o.store.revisions.latestApplied();
    const previous = applied === null ? null : parseFleet(applied.text, applied.file);
    const previousFleet = previous?.ok ? previous.fleet : null;
    // What the revision changes is its diff from the applied revision, not from the spec in force
    // (already the pending one, edited definitions recorded or not): against that, a roll in place
    // cut short by the crash would look done, and the apply would wait for ever for instances
    // nobody rolls.
    const diff = diffFleets(previousFleet ?? this.#o.holder.current(), parsed.fleet);
    this.#begin(pending.number, parsed.fleet, diff, false, previousFleet, true);
  }

  /** Stop checking convergence (the controller stops; the revision stays `applying` for the next). */
  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #source(request: ApplyRequest): { text: string; file: string; fromRevision: number | null } {
    if (request.revision !== undefined) {
      const revision: SpecRevision | null = this.#o.store.revisions.get(request.revision);
      if (revision === null) throw new HomeostatError("HS_NOT_FOUND", `no revision ${request.revision}`);
      return { text: revision.text, file: revision.file, fromRevision: revision.number };
    }
    if (request.text === undefined || request.file === undefined) {
      throw new HomeostatError(
        "HS_BAD_REQUEST",
        "give the fleet file's text and its file name, or a revision",
      );
    }
    return { text: request.text, file: request.file, fromRevision: null };
  }

  /** Every refusal, before anything changes; returns the steps the apply will take. */
  #check(
    applied: FleetSpec,
    next: FleetSpec,
    diff: FleetDiff,
    allowInPlace: boolean,
    fromRevision: number | null,
  ): string[] {
    const affected = new Set(diff.changes.map((c) => c.service).filter((s): s is string => s !== null));
    const fleetWide = diff.changes.some((c) => c.service === null);
    const undoing = this.#undoing;
    if (undoing !== null) {
      const held = [...new Set(undoing.queue.map((u) => u.service)), undoing.current?.service]
        .filter((s): s is string => s !== undefined)
        .filter((s) => fleetWide || affected.has(s));
      if (held.length > 0) {
        throw new HomeostatError(
          "HS_CONFLICT",
          `revision ${undoing.revision} failed and its in-place roll of ${held.join(", ")} is being rolled back: apply is refused until it is (homeostat apply shows it). Nothing was applied`,
          { details: { services: held, revision: undoing.revision } },
        );
      }
    }
    for (const service of affected) {
      if (!applied.services.some((s) => s.name === service)) continue;
      const busy = this.#o.releases.inProgress(service);
      if (busy !== null) {
        throw new HomeostatError(
          "HS_CONFLICT",
          `${busy}: apply is refused while it holds ${service}. Wait for it to finish (homeostat releases ${service}), then apply again. Nothing was applied`,
          { details: { service } },
        );
      }
    }
    const shifted = this.#o.failover
      .status()
      .zones.filter((z) => z.shift !== null)
      .map((z) => z.zone);
    if (shifted.length > 0 && (fleetWide || affected.size > 0)) {
      const held = applied.services
        .filter((s) => affected.has(s.name) && s.placement.some((p) => shifted.includes(p.zone)))
        .map((s) => s.name);
      if (fleetWide || held.length > 0) {
        throw new HomeostatError(
          "HS_CONFLICT",
          `a failover holds zone ${shifted.join(", ")}${held.length > 0 ? ` (services ${held.join(", ")})` : ""}: apply is refused until it is failed back. Nothing was applied`,
          { details: { zones: shifted, services: held } },
        );
      }
    }
    // Stores (docs/redis.md) are run as the fleet file said at `up`: a changed section would be
    // recorded as applied while nothing changed, so it is refused, with what to do instead.
    const stores = diff.changes.filter((c) => c.path === "stores" || c.path.startsWith("stores."));
    if (stores.length > 0) {
      throw refused(
        `${stores.map((c) => c.path).join(", ")}: stores are not changed by apply (yet); a planned primary change is \`homeostat switchover\`, anything else needs \`homeostat down\` and \`up\` with the new file. Nothing was applied`,
        { changes: stores },
      );
    }
    const edited = diff.changes.filter((c) => c.class === "release-edited");
    if (edited.length > 0 && !allowInPlace) {
      throw refused(
        `a release record is immutable: ${edited.map((c) => c.detail).join("; ")}. Name a new version (and switch \`release:\` to it: a progressive deploy), or pass --allow-in-place to roll it one instance at a time. Nothing was applied`,
        { changes: edited },
      );
    }
    const replaced = diff.changes.filter((c) => c.class === "replace");
    if (replaced.length > 0 && !allowInPlace) {
      throw refused(
        `${replaced.map((c) => c.detail).join("; ")}: every instance of the service must be started again; pass --allow-in-place to roll them one at a time. Nothing was applied`,
        { changes: replaced },
      );
    }
    if (!this.#o.hasDataPlane && next.services.some((s) => s.port !== undefined)) {
      throw refused(
        "this controller runs no data plane (no service had a port at `up`): a first traffic port needs `homeostat down` and `up`. Nothing was applied",
      );
    }
    for (const removed of diff.changes.filter((c) => c.class === "remove-service")) {
      const dependents = next.services
        .filter((s) => s.dependsOn.includes(removed.service ?? ""))
        .map((s) => s.name);
      if (dependents.length > 0) {
        throw refused(
          `${removed.service} cannot be removed: ${dependents.join(", ")} depend(s) on it. Nothing was applied`,
        );
      }
    }
    if (fromRevision !== null) {
      // Going back to an earlier revision: its release changes are rollbacks, behind their checks.
      for (const change of diff.changes.filter((c) => c.class === "release-switch")) {
        const service = change.service!;
        const to = String(change.after);
        if (this.#o.store.ledger.release(service, to) === null) continue; // never ran: a deploy
        const plan = this.#o.releases.planRollback(service, to);
        if (plan.decision === "refuse") {
          const blocking = plan.checks
            .filter((c) => c.severity === "blocking")
            .map((c) => `${c.name}: ${c.detail}`);
          throw new HomeostatError(
            "HS_ROLLBACK_REFUSED",
            `revision ${fromRevision} would take ${service} back to ${to}, which its rollback checks refuse — ${blocking.join("; ")}. Nothing was applied`,
            { details: plan },
          );
        }
      }
    }
    return planSteps(diff, fromRevision !== null);
  }

  /** Hand the new spec to every component and start watching convergence. */
  #begin(
    revision: number,
    next: FleetSpec,
    diff: FleetDiff,
    rollbacks: boolean,
    previous: FleetSpec | null,
    resumed = false,
  ): void {
    const before = this.#o.holder.current();
    this.#o.holder.set(next);
    const switches = new Map<string, string>();
    for (const change of diff.changes.filter((c) => c.class === "release-switch")) {
      const service = change.service!;
      const to = String(change.after);
      switches.set(service, to);
      if (this.#o.releases.activeRelease(service) === to || this.#o.releases.inProgress(service) !== null)
        continue;
      try {
        if (rollbacks && this.#o.store.ledger.release(service, to) !== null) {
          this.#o.releases.rollback(service, { to, reason: `apply of revision ${revision}` });
        } else {
          this.#o.releases.switchRelease(service, to);
        }
      } catch (error) {
        this.#fail(
          revision,
          `${service}: ${error instanceof Error ? error.message : String(error)}`,
          previous,
        );
        return;
      }
    }
    // In place: edited definitions and moved slots, one instance at a time.
    const roll: string[] = [];
    const rolled: Converging["rolled"] = [];
    const recordedBefore: Converging["recordedBefore"] = [];
    const records = new Map(this.#o.store.listInstances().map((r) => [r.name, r]));
    const inPlace = new Set(
      diff.changes
        .filter((c) => c.class === "release-edited" || c.class === "replace")
        .map((c) => c.service)
        .filter((s): s is string => s !== null),
    );
    for (const service of inPlace) {
      const spec = next.services.find((s) => s.name === service);
      if (spec === undefined) continue;
      for (const release of Object.values(spec.releases)) {
        // The edited definition is the record from now on (the operator allowed it).
        const entry = this.#o.store.ledger.release(service, release.version);
        if (entry !== null && entry.contentHash !== hashOf(release)) {
          recordedBefore.push({ service, spec: entry.spec, contentHash: entry.contentHash });
          this.#o.store.ledger.recordRelease({
            service,
            spec: release,
            contentHash: hashOf(release),
            status: entry.status,
            at: entry.deployedAt,
          });
        } else if (resumed && entry !== null) {
          // Recorded by the controller that died: what to put back if it fails is the applied
          // revision's definition.
          const was = previous?.services.find((s) => s.name === service)?.releases[release.version];
          if (was !== undefined && hashOf(was) !== entry.contentHash)
            recordedBefore.push({ service, spec: was, contentHash: hashOf(was) });
        }
      }
      const running = this.#o.controller
        .observed()
        .instances.filter((i) => i.service === service && i.runtime === "running")
        .map((i) => i.name)
        .sort();
      for (const name of running) {
        // Resumed: the instances the controller that died rolled already run the revision's
        // definition, in its place; rolling them again would replace each twice.
        const record = records.get(name);
        if (resumed && record !== undefined && launchesAs(record, spec)) rolled.push({ name, service });
        else roll.push(name);
      }
    }
    const retiring = new Set(
      before.services.filter((s) => !next.services.some((n) => n.name === s.name)).map((s) => s.name),
    );
    this.#converging = {
      revision,
      fleet: next,
      switches,
      roll,
      rolling: null,
      rolled,
      recordedBefore,
      retiring,
      previous,
    };
    this.#last = { revision, state: "applying", waiting: [], error: null };
    this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#step();
      this.#undoStep();
      if (this.#converging !== null || this.#undoing !== null) this.#schedule();
    }, this.#o.checkMs ?? 250);
  }

  /** One convergence check: roll the next in-place instance, close retired listeners, or finish. */
  #step(): void {
    const c = this.#converging;
    if (c === null || this.#stopped) return;
    const controller = this.#o.controller;
    const waiting: string[] = [];
    const instances = controller.observed().instances;
    for (const name of [...c.retiring]) {
      if (instances.some((i) => i.service === name)) {
        waiting.push(`${name}: draining and stopping its instances (service removed)`);
      } else {
        this.#o.retireListener?.(name);
        c.retiring.delete(name);
      }
    }
    for (const [service, to] of c.switches) {
      const busy = this.#o.releases.inProgress(service);
      if (busy !== null) {
        waiting.push(busy);
        continue;
      }
      if (this.#o.releases.activeRelease(service) !== to) {
        this.#fail(
          c.revision,
          `${service}: the deploy of ${to} did not complete (${this.#o.releases.activeRelease(service)} runs)`,
          c.previous,
        );
        return;
      }
    }
    if (c.rolling !== null) {
      const o = instances.find((i) => i.name === c.rolling!.name);
      if (readySince(o, c.rolling.since)) c.rolling = null;
      else {
        // Not ready within the service's step deadline (what a progressive deploy step gets): the
        // revision fails and what it rolled goes back, rather than the apply waiting for ever.
        const service = c.fleet.services.find((s) => s.name === c.rolling!.service);
        const deadlineMs = service?.deploy.stepDeadlineMs;
        const elapsed = this.#now() - c.rolling.since;
        if (deadlineMs !== undefined && elapsed >= deadlineMs) {
          this.#fail(
            c.revision,
            `${c.rolling.name} did not get ready within ${deadlineMs / 1000}s (the service's deploy.stepDeadline) after it was rolled in place: ${whyNotReady(o)}`,
            c.previous,
            { code: "apply-not-ready", undo: c },
          );
          return;
        }
        waiting.push(
          `${c.rolling.name}: rolling in place, waiting for it to be ready (${Math.floor(elapsed / 1000)}s of ${deadlineMs === undefined ? "?" : deadlineMs / 1000}s)`,
        );
      }
    }
    if (c.rolling === null && c.roll.length > 0) {
      const name = c.roll[0]!;
      const service = c.fleet.services.find((s) =>
        instances.some((i) => i.name === name && i.service === s.name),
      );
      const othersReady =
        service === undefined ||
        controller.gateOf(service.name).converged.ok ||
        instances
          .filter((i) => i.service === service.name && i.name !== name)
          .every((i) => i.health?.state === "ready");
      if (othersReady) {
        const since = this.#now();
        const started = controller.replaceInstance(
          name,
          reason("release-edited", `${name}: rolled in place to revision ${c.revision}`),
        );
        if (started || !instances.some((i) => i.name === name)) {
          c.roll.shift();
          const of = instances.find((i) => i.name === name)?.service;
          if (started && of !== undefined) {
            c.rolling = { name, service: of, since };
            c.rolled.push({ name, service: of });
            crashPoint("apply.rolled");
          }
        }
      }
      if (c.roll.length > 0 || c.rolling !== null)
        waiting.push(`${c.roll.length + (c.rolling ? 1 : 0)} instance(s) to roll in place`);
    }
    for (const service of c.fleet.services) {
      const converged = controller.gateOf(service.name).converged;
      if (!converged.ok) waiting.push(`${service.name}: ${converged.detail}`);
    }
    this.#last = { revision: c.revision, state: "applying", waiting, error: null };
    if (waiting.length > 0) return;
    this.#o.store.revisions.markApplied(c.revision, this.#now());
    crashPoint("apply.applied");
    this.#converging = null;
    this.#last = { revision: c.revision, state: "applied", waiting: [], error: null };
    this.#note(
      "apply.done",
      "spec-applied",
      `revision ${c.revision} applied: the fleet has converged to it`,
      {
        revision: c.revision,
      },
    );
  }

  /**
   * The revision failed: recorded so, and the spec in force goes back to the one before it — the
   * revision that stays applied — so components (and the next apply's diff) read what is applied,
   * not the failed spec (a failed release switch would otherwise still be "applied": its
   * revision could not even be tried again).
   */
  #fail(
    revision: number,
    error: string,
    previous: FleetSpec | null,
    o: { code?: ReasonCode; undo?: Converging } = {},
  ): void {
    this.#o.store.revisions.markFailed(revision, this.#now(), error);
    this.#converging = null;
    if (previous !== null) this.#o.holder.set(previous);
    this.#last = { revision, state: "failed", waiting: [], error };
    const undo = o.undo;
    // The instances it rolled run the failed definition: they go back to the previous one (the
    // spec in force again), one at a time. Without a previous spec (a resumed revision with no
    // applied one before it) there is nothing to go back to.
    let queue: Undoing["queue"] = [];
    if (undo !== undefined && previous !== null) {
      for (const before of undo.recordedBefore) {
        const now = this.#o.store.ledger.release(before.service, before.spec.version);
        if (now === null) continue;
        this.#o.store.ledger.recordRelease({
          service: before.service,
          spec: before.spec,
          contentHash: before.contentHash,
          status: now.status,
          at: now.deployedAt,
        });
      }
      // The one that did not get ready first (it serves nothing), then the others, last rolled first.
      queue = [...undo.rolled].reverse();
    }
    this.#note(
      "apply.failed",
      o.code ?? "apply-failed",
      `revision ${revision} failed: ${error}${queue.length > 0 ? `; rolling back ${queue.map((u) => u.name).join(", ")} to the previous definition, one at a time` : ""}`,
      { revision, ...(queue.length > 0 ? { rollingBack: queue.map((u) => u.name) } : {}) },
    );
    if (queue.length > 0) {
      this.#undoing = { revision, queue, current: null, error };
      this.#last.waiting = [`${queue.length} instance(s) to roll back to the previous definition`];
      this.#schedule();
    }
  }

  /**
   * One check of a failed in-place roll being undone: the next instance is rolled back once the
   * one before it is ready again (an instance that is not ready itself goes at once: it serves
   * nothing), until none runs the failed definition.
   */
  #undoStep(): void {
    const u = this.#undoing;
    if (u === null || this.#stopped) return;
    const controller = this.#o.controller;
    const instances = controller.observed().instances;
    if (u.current !== null) {
      if (
        readySince(
          instances.find((i) => i.name === u.current!.name),
          u.current.since,
        )
      )
        u.current = null;
    }
    if (u.current === null && u.queue.length > 0) {
      const next = u.queue[0]!;
      const self = instances.find((i) => i.name === next.name);
      const othersReady =
        self?.health?.state !== "ready" ||
        instances
          .filter((i) => i.service === next.service && i.name !== next.name)
          .every((i) => i.health?.state === "ready");
      if (othersReady) {
        const since = this.#now();
        const started = controller.replaceInstance(
          next.name,
          reason(
            "apply-rolled-back",
            `${next.name}: rolled back to the definition before revision ${u.revision} (it failed)`,
          ),
        );
        // Not running: reconcile starts it again, from the spec in force (the previous one).
        const restarts =
          self !== undefined && self.runtime !== "running" && !controller.observed().busy.has(next.name);
        if (started || restarts || self === undefined) {
          u.queue.shift();
          if (started || restarts) u.current = { ...next, since };
        }
      }
    }
    const waiting: string[] = [];
    if (u.current !== null)
      waiting.push(
        `${u.current.name}: rolling back to the previous definition, waiting for it to be ready (${Math.floor((this.#now() - u.current.since) / 1000)}s)`,
      );
    if (u.queue.length > 0)
      waiting.push(`${u.queue.length} more instance(s) to roll back to the previous definition`);
    if (waiting.length > 0) {
      if (this.#last.revision === u.revision) this.#last = { ...this.#last, waiting };
      return;
    }
    this.#undoing = null;
    if (this.#last.revision === u.revision) this.#last = { ...this.#last, waiting: [] };
    this.#note(
      "apply.rolled-back",
      "apply-rolled-back",
      `revision ${u.revision} failed and what it rolled in place is back on the previous definition: no instance runs the failed one`,
      { revision: u.revision },
    );
  }

  #note(type: string, code: ReasonCode, message: string, data: Record<string, unknown>): void {
    this.#o.controller.note(type, reason(code, message), data);
  }
}

/**
 * Whether the instance `record` describes was started exactly as `service` (the revision's spec)
 * would start it now: same definition of its release (launch facts), same port and placement.
 */
function launchesAs(
  record: {
    slot: number;
    port: number;
    release: string;
    zone: string;
    host: string;
    configHash?: string | null;
    secretVersions?: Record<string, string> | null;
  },
  service: ServiceSpec,
): boolean {
  const release = service.releases[record.release];
  if (release === undefined) return false;
  const launch = launchFor(service, record.slot, record.release);
  const drift = driftOf(
    {
      release: record.release,
      configHash: record.configHash ?? null,
      secretVersions: record.secretVersions ?? null,
    },
    launchFactsOf(release),
  );
  return (
    drift.length === 0 &&
    record.port === launch.port &&
    record.zone === launch.placement.zone &&
    record.host === launch.placement.host
  );
}

/** Why an instance rolled in place is not ready, for the error: its health reason, or how it ended. */
/** True when `o` runs, is ready, and was started at or after `since` (its roll has taken). */
function readySince(o: ObservedInstance | undefined, since: number): boolean {
  return (
    o !== undefined && o.runtime === "running" && o.health?.state === "ready" && (o.startedAt ?? 0) >= since
  );
}

function whyNotReady(o: ObservedInstance | undefined): string {
  if (o === undefined) return "it is gone";
  if (o.runtime !== "running") return `it is not running (it ${describeExit(o)})`;
  if (o.health === null) return "no health observed yet";
  return `${o.health.state}: ${o.health.reason}`;
}

/** The order an apply carries its changes out in, one line per class present. */
function planSteps(diff: FleetDiff, rollbacks: boolean): string[] {
  const of = (cls: SpecChange["class"]) => diff.changes.filter((c) => c.class === cls);
  const names = (changes: SpecChange[]) => [...new Set(changes.map((c) => c.service ?? "fleet"))].join(", ");
  const steps: string[] = [];
  if (of("live").length > 0)
    steps.push(`live settings at once (data plane fed at once): ${names(of("live"))}`);
  if (of("release-added").length + of("release-removed").length > 0)
    steps.push(`release definitions recorded: ${names([...of("release-added"), ...of("release-removed")])}`);
  if (of("scale").length > 0)
    steps.push(
      `scale: ${of("scale")
        .map((c) => `${c.service} ${String(c.before)} → ${String(c.after)}`)
        .join(", ")} (scale-down drains first)`,
    );
  if (of("add-service").length > 0)
    steps.push(`add ${names(of("add-service"))} (after their dependencies are ready)`);
  if (of("remove-service").length > 0)
    steps.push(`remove ${names(of("remove-service"))}: drained, then stopped`);
  for (const c of of("release-switch")) {
    steps.push(
      `${c.service}: ${String(c.before)} → ${String(c.after)} ${rollbacks ? "as a rollback (behind its safety checks) when it ran before, else " : ""}through the progressive deploy with analysis`,
    );
  }
  if (of("release-edited").length + of("replace").length > 0)
    steps.push(
      `in place, one instance at a time behind readiness: ${names([...of("release-edited"), ...of("replace")])}`,
    );
  return steps;
}

/** A release definition the fleet file edits under a name the ledger already records. */
export interface EditedRelease {
  service: string;
  version: string;
  /** The recorded definition's hash: what instances keep running. */
  recordedHash: string;
  /** Which fields differ, for the event. */
  fields: string;
}

/**
 * The spec a starting controller runs: a revision still `applying` (resumed), else the file's;
 * in either, a release definition edited under a recorded name is replaced by its recorded
 * definition (a release record is immutable: the edit is drift, reported, until applied).
 */
export function startingFleet(
  store: StateStore,
  fileFleet: FleetSpec,
): { fleet: FleetSpec; edited: EditedRelease[] } {
  let base = fileFleet;
  const pending = store.revisions.pending();
  if (pending !== null) {
    const parsed = parseFleet(pending.text, pending.file);
    if (parsed.ok) base = parsed.fleet;
  }
  const edited: EditedRelease[] = [];
  const services = base.services.map((service) => {
    const releases = { ...service.releases };
    for (const [version, release] of Object.entries(service.releases)) {
      const entry = store.ledger.release(service.name, version);
      if (entry === null || entry.contentHash === hashOf(release)) continue;
      const recorded = entry.spec as unknown as Record<string, unknown>;
      const now = release as unknown as Record<string, unknown>;
      const fields = Object.keys({ ...recorded, ...now }).filter(
        (k) => JSON.stringify(recorded[k]) !== JSON.stringify(now[k]),
      );
      if (fields.length === 0) continue; // the same definition, serialised in another key order
      releases[version] = entry.spec;
      edited.push({
        service: service.name,
        version,
        recordedHash: entry.contentHash,
        fields: fields.join(", "),
      });
    }
    return { ...service, releases };
  });
  return { fleet: edited.length === 0 ? base : { ...base, services }, edited };
}
