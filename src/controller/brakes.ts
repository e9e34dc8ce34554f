/**
 * Automation brakes, wired to the world: the pause (durable, in the store), the automated actions
 * the rate limits count (durable too), the instances automation is acting on now, and the actions
 * held right now. The controller, the release manager and the failover manager ask it before each
 * automated action; the API asks it before each person's action. The verdicts themselves are the
 * pure rules of `src/decide/brakes/`.
 */

import { judgeAutomated, judgeManual } from "../decide/brakes/judge.ts";
import { limitsOf, longestWindowMs } from "../decide/brakes/limits.ts";
import type {
  ActedOn,
  AutomatedProposal,
  AutomatedRecord,
  BrakeHold,
  BrakeVerdict,
  PauseState,
} from "../decide/brakes/types.ts";
import { type BrakeUsage, brakeUsage } from "../decide/brakes/usage.ts";
import { duration } from "../decide/failover/words.ts";
import { type Reason, reason } from "../decide/reasons.ts";
import type { ObservedInstance } from "../decide/snapshot.ts";
import { HomeostatError } from "../errors.ts";
import type { FleetSpec } from "../spec/model.ts";
import type { BrakeStore } from "../store/brakeStore.ts";

/** A hold is shown until its action has not been asked for again for this long (it was dropped). */
const HOLD_STALE_MS = 5_000;
/** Automated actions are pruned from the store at most this often. */
const PRUNE_EVERY_MS = 60_000;

export interface AutomationBrakesOptions {
  store: BrakeStore;
  /** The applied spec (its limits are read at every verdict: `apply` changes them live). */
  fleet: () => FleetSpec;
  /** Records an event (through the controller, so it is stored and streamed). */
  note: (type: string, why: Reason, data: Record<string, unknown>) => void;
  /** An action was held (once per hold): the incidents it concerns escalate. */
  escalate?: (proposal: AutomatedProposal, hold: BrakeHold) => void;
  /** Automation may act again (a resume): re-decide now rather than at the next tick. */
  poke?: () => void;
  /** The instances as observed now: an acted-on instance counts until its slot is ready again. */
  instances?: () => readonly ObservedInstance[];
  now?: () => number;
}

/** An action held right now, as `status` shows it. */
export interface HeldAction {
  kind: AutomatedProposal["kind"];
  target: string;
  service: string | null;
  rule: BrakeHold["rule"];
  reason: Reason;
  used: number;
  limit: number;
  until: number | null;
  /** Since when it has been held (the first verdict that held it). */
  since: number;
}

/** What `status` shows of the brakes. */
export interface BrakesStatus {
  paused: PauseState | null;
  usage: BrakeUsage;
  held: HeldAction[];
}

/** A person's action while automation may be paused. */
export interface ManualAction {
  /** What it is, in words: "deploy of api v2", "restart of api-1". */
  what: string;
  override: boolean;
  reason: string;
  /** Who asks (the API token's name). */
  who: string;
}

interface Hold extends HeldAction {
  proposal: AutomatedProposal;
  lastAt: number;
}

export class AutomationBrakes {
  readonly #store: BrakeStore;
  readonly #fleet: () => FleetSpec;
  readonly #note: AutomationBrakesOptions["note"];
  readonly #escalate: NonNullable<AutomationBrakesOptions["escalate"]>;
  readonly #poke: () => void;
  readonly #instances: () => readonly ObservedInstance[];
  readonly #now: () => number;
  readonly #actedOn = new Map<string, ActedOn>();
  readonly #holds = new Map<string, Hold>();
  #prunedAt = Number.NEGATIVE_INFINITY;

  constructor(options: AutomationBrakesOptions) {
    this.#store = options.store;
    this.#fleet = options.fleet;
    this.#note = options.note;
    this.#escalate = options.escalate ?? (() => {});
    this.#poke = options.poke ?? (() => {});
    this.#instances = options.instances ?? (() => []);
    this.#now = options.now ?? Date.now;
  }

  /**
   * The pause in force, or null. Read from the store every time, never cached: a controller that
   * restarts, or a follower that takes over, is paused when its predecessor was.
   */
  paused(): PauseState | null {
    return this.#store.pause();
  }

  /** The automated actions inside the longest window, from the store: its windows outlive any controller. */
  #recent(now: number): AutomatedRecord[] {
    return this.#store.automatedSince(now - longestWindowMs(limitsOf(this.#fleet())));
  }

  /**
   * Whether automation may take `proposal` now. Allowed: it is recorded (it counts against the rate
   * limits from now on) and, when it stops live processes, they count against the blast radius
   * until their slots are ready again. Held: an event with the brake's reason, and the incidents it
   * concerns escalate — once per hold, not every pass it is asked again.
   */
  automated(proposal: AutomatedProposal): BrakeVerdict {
    const now = this.#now();
    this.#settle(now);
    const limits = limitsOf(this.#fleet());
    const verdict = judgeAutomated(proposal, {
      now,
      pause: this.paused(),
      limits,
      recent: this.#recent(now),
      actedOn: [...this.#actedOn.values()],
    });
    const key = `${proposal.kind}:${proposal.target}`;
    const before = this.#holds.get(key);
    if (verdict.allowed) {
      this.#record(proposal, now);
      if (before !== undefined) {
        this.#holds.delete(key);
        this.#note(
          "automation.released",
          reason(
            "brake-released",
            `${proposal.kind} of ${proposal.target} goes ahead after ${duration(now - before.since)} held (${before.reason.message})`,
          ),
          this.#scope(proposal, { kind: proposal.kind, rule: before.rule, heldMs: now - before.since }),
        );
      }
      return verdict;
    }
    const { hold } = verdict;
    if (before !== undefined && before.rule === hold.rule) {
      before.lastAt = now;
      before.used = hold.used;
      before.limit = hold.limit;
      before.until = hold.until;
      before.reason = hold.reason;
      return verdict;
    }
    this.#holds.set(key, {
      kind: proposal.kind,
      target: proposal.target,
      service: proposal.service,
      rule: hold.rule,
      reason: hold.reason,
      used: hold.used,
      limit: hold.limit,
      until: hold.until,
      since: before?.since ?? now,
      proposal,
      lastAt: now,
    });
    this.#note(
      "automation.held",
      hold.reason,
      this.#scope(proposal, {
        kind: proposal.kind,
        rule: hold.rule,
        used: hold.used,
        limit: hold.limit,
        until: hold.until,
      }),
    );
    this.#escalate(proposal, hold);
    return verdict;
  }

  /**
   * A person's action: allowed while automation runs; while it is paused only with `override` and
   * a reason, recorded as an event naming who overrode which pause.
   *
   * @throws HomeostatError HS_PAUSED when paused and not overridden; HS_BAD_REQUEST when an
   *   override has no reason.
   */
  assertManual(action: ManualAction): void {
    const pause = this.paused();
    const verdict = judgeManual(pause, action);
    if (!verdict.allowed) {
      throw new HomeostatError(verdict.why === "paused" ? "HS_PAUSED" : "HS_BAD_REQUEST", verdict.message, {
        details: { paused: pause },
      });
    }
    if (verdict.overrode === null) return;
    const p = verdict.overrode;
    this.#note(
      "automation.overridden",
      reason(
        "brake-overridden",
        `${action.who} overrode the pause (by ${p.by}: ${p.reason}) for the ${action.what}: ${action.reason}`,
      ),
      { who: action.who, what: action.what, overrideReason: action.reason, pausedBy: p.by },
    );
  }

  /**
   * Pauses automation. Nothing automated starts until a resume; actions under way finish.
   *
   * @throws HomeostatError HS_BAD_REQUEST without a reason; HS_CONFLICT when already paused
   *   (who paused it and why is not overwritten).
   */
  pause(by: string, why: string): PauseState {
    if (why.trim() === "") {
      throw new HomeostatError(
        "HS_BAD_REQUEST",
        "pause needs a reason (--reason TEXT): it is shown to everyone while automation is paused",
      );
    }
    const pause: PauseState = { by, reason: why.trim(), since: this.#now() };
    const change = this.#store.setPaused(pause);
    if (!change.changed) {
      const current = change.current!;
      throw new HomeostatError(
        "HS_CONFLICT",
        `automation is already paused by ${current.by} since ${new Date(current.since).toISOString()} (${current.reason}); \`homeostat resume\` ends that pause`,
        { details: { paused: current } },
      );
    }
    this.#note(
      "automation.paused",
      reason(
        "automation-paused",
        `automation paused by ${by}: ${pause.reason}. No automated restart, rollback or failover starts until \`homeostat resume\`; manual actions need --override`,
      ),
      { by, pauseReason: pause.reason },
    );
    return pause;
  }

  /**
   * Lets automation act again; held actions are decided again at once.
   *
   * @throws HomeostatError HS_CONFLICT when automation is not paused.
   */
  resume(by: string, why: string): PauseState {
    const change = this.#store.resume(by, this.#now());
    if (!change.changed) {
      throw new HomeostatError("HS_CONFLICT", "automation is not paused: there is nothing to resume");
    }
    const ended = change.previous!;
    this.#note(
      "automation.resumed",
      reason(
        "automation-resumed",
        `automation resumed by ${by}${why.trim() === "" ? "" : `: ${why.trim()}`} (paused by ${ended.by} for ${duration(this.#now() - ended.since)}: ${ended.reason})`,
      ),
      { by, resumeReason: why.trim(), pausedBy: ended.by, pausedForMs: this.#now() - ended.since },
    );
    this.#poke();
    return ended;
  }

  /** The pause, how close each limit is, and what is held now. */
  status(): BrakesStatus {
    const now = this.#now();
    this.#settle(now);
    return {
      paused: this.paused(),
      usage: brakeUsage({
        now,
        limits: limitsOf(this.#fleet()),
        recent: this.#recent(now),
        actedOn: [...this.#actedOn.values()],
      }),
      held: [...this.#holds.values()]
        .sort((a, b) => a.since - b.since)
        .map(({ proposal: _, lastAt: __, ...held }) => held),
    };
  }

  #record(proposal: AutomatedProposal, now: number): void {
    const record: AutomatedRecord = {
      kind: proposal.kind,
      at: now,
      service: proposal.service,
      target: proposal.target,
    };
    this.#store.recordAutomated(record);
    // Restarts are the only actions whose instances stay acted on (until their slot is ready
    // again); a failover's share is paced by its own safety rules (see docs/brakes.md).
    if (proposal.kind === "restart") {
      for (const d of proposal.disrupts) this.#actedOn.set(d.instance, { ...d, since: now });
    }
  }

  /** Drops what no longer counts: old actions, acted-on instances ready again, stale holds. */
  #settle(now: number): void {
    const horizon = now - longestWindowMs(limitsOf(this.#fleet()));
    if (now - this.#prunedAt >= PRUNE_EVERY_MS) {
      this.#prunedAt = now;
      this.#store.pruneAutomated(horizon);
    }
    if (this.#actedOn.size > 0) {
      const observed = new Map(this.#instances().map((o) => [o.name, o]));
      for (const [name, acted] of this.#actedOn) {
        const o = observed.get(name);
        const readyAgain =
          o?.runtime === "running" && o.health?.state === "ready" && o.health.since > acted.since;
        if (o === undefined || readyAgain) this.#actedOn.delete(name);
      }
    }
    for (const [key, hold] of this.#holds) {
      if (now - hold.lastAt > HOLD_STALE_MS) this.#holds.delete(key);
    }
  }

  #scope(proposal: AutomatedProposal, data: Record<string, unknown>): Record<string, unknown> {
    return {
      ...data,
      target: proposal.target,
      ...(proposal.service === null ? {} : { service: proposal.service }),
      ...(proposal.kind === "restart" ? { instance: proposal.target } : {}),
      ...(proposal.kind === "failover" ? { zone: proposal.target } : {}),
    };
  }
}
