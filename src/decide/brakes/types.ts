/**
 * Automation brakes, as plain data: whether automation is paused (by whom, why, since when), the
 * limits it runs under, what it did recently and what it is acting on now, and the verdict on one
 * proposed action. The rules in this folder are pure: time and state come in as arguments.
 */

import type { RateLimitSpec } from "../../spec/model.ts";
import type { Reason } from "../reasons.ts";

/** Automation is paused: who paused it, why, and since when (epoch ms). */
export interface PauseState {
  by: string;
  reason: string;
  since: number;
}

/** What automation does on its own, each with limits of its own. */
export type AutomatedKind = "restart" | "rollback" | "failover";

/** An automated action carried out (kept for the rate limits' windows). */
export interface AutomatedRecord {
  kind: AutomatedKind;
  at: number;
  /** The service it acted on; null for a zone failover (it acts on every service of the zone). */
  service: string | null;
  /** The instance, service or zone, by name. */
  target: string;
}

/**
 * An instance automation is acting on now: it stopped the instance's live process and the slot has
 * not been ready again since. It counts against the blast radius until then, so a replacement that
 * never comes up keeps the next one from being taken too.
 */
export interface ActedOn {
  instance: string;
  service: string;
  since: number;
}

/** One service's limits, and how many instances it should run (the share's denominator). */
export interface ServiceLimits {
  restarts: RateLimitSpec;
  /** Share of `size` automation may act on at once, (0..1]. */
  blastRadius: number;
  size: number;
}

/** Every limit automation runs under. */
export interface BrakeLimits {
  services: ReadonlyMap<string, ServiceLimits>;
  fleet: {
    /** Share of the fleet's instances (every service's `size` together) acted on at once, (0..1]. */
    blastRadius: number;
    rollbacks: RateLimitSpec;
    failovers: RateLimitSpec;
  };
}

/** An action automation wants to take. */
export interface AutomatedProposal {
  kind: AutomatedKind;
  /** The service it acts on; null for a zone failover. */
  service: string | null;
  /** The instance, service or zone, by name (for the record and the messages). */
  target: string;
  /**
   * The instances it would make worse: each live process it stops, each instance whose traffic it
   * takes away while it still serves. Empty when it only adds — starting a process in a slot whose
   * process is gone — and such an action is never held by the blast radius.
   */
  disrupts: readonly { instance: string; service: string }[];
}

/** Everything a verdict depends on, at one instant. */
export interface BrakeInputs {
  now: number;
  pause: PauseState | null;
  limits: BrakeLimits;
  /** Automated actions carried out, at least those inside the longest window (older ones are ignored). */
  recent: readonly AutomatedRecord[];
  /** Instances automation is acting on now. */
  actedOn: readonly ActedOn[];
}

/** Which brake held an action. */
export type BrakeRule =
  | "paused"
  | "restart-rate"
  | "rollback-rate"
  | "failover-rate"
  | "blast-radius-service"
  | "blast-radius-fleet";

/** Why an automated action was not taken, and what would let it go. */
export interface BrakeHold {
  rule: BrakeRule;
  /** The typed reason: `automation-paused`, `brake-rate-limit` or `brake-blast-radius`. */
  reason: Reason;
  /** The figure the rule compared: actions in the window or instances acted on, and the limit. */
  used: number;
  limit: number;
  /**
   * When the hold lifts by itself (the oldest counted action leaves its window); null when it takes
   * something else: a resume, a replacement becoming ready.
   */
  until: number | null;
}

export type BrakeVerdict = { allowed: true } | { allowed: false; hold: BrakeHold };

/** A person's action (deploy, rollback, failover, restart, apply…) asked while automation may be paused. */
export interface ManualRequest {
  /** What it is, in words: "deploy of api v2". */
  what: string;
  override: boolean;
  /** The person's reason; an override needs one (it is audited). */
  reason: string;
}

export type ManualVerdict =
  | { allowed: true; overrode: PauseState | null }
  | { allowed: false; why: "paused" | "override-needs-reason"; message: string };
